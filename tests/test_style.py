"""The style text encoder, through a tiny randomly initialised BERT saved to a folder (offline)."""
import json

import torch

import style


def test_embeddings_are_matrices_with_a_mask(tiny_bert):
    emb, mask = style.embed_styles(['slow piano ballad, 72 bpm', '', 'fast rock, 144 bpm'], tiny_bert, max_tokens=8)
    assert emb.shape == (3, 8, 32) and mask.shape == (3, 8)
    assert mask.sum(1).tolist() == [8, 2, 7]  # truncated at 8; an empty text is [CLS] [SEP]
    assert (emb[~mask] == 0).all() and not torch.allclose(emb[0, :2], emb[2, :2])


def test_table_is_cached_per_model(tiny_bert, tmp_path):
    meta = dict(songs={'a': dict(status='ok', style='pop, 120 bpm'), 'b': dict(status='ok', style=''),
                       'c': dict(status='skipped')})
    table = style.style_table(str(tmp_path), meta, tiny_bert, max_tokens=8)
    assert table['texts'] == ['', 'pop, 120 bpm'] and table['embeddings'].shape == (2, 8, 32)
    assert len(list(tmp_path.glob('styles-*.pt'))) == 1
    again = style.style_table(str(tmp_path), meta, tiny_bert, max_tokens=8)
    assert torch.equal(again['embeddings'], table['embeddings'])


def test_default_model_path_points_at_the_package_or_says_how_to_get_it():
    try:
        path = style.model_path(style.DEFAULT_MODEL)
    except SystemExit as e:
        assert 'pip install' in str(e)
    else:
        assert json.load(open(f'{path}/config.json'))['hidden_size'] == 384
