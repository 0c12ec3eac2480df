"""
Checkpoints and prepared caches, for every script: load and save them, and refuse one that was
made for other data, for another stage, or for models it does not fit, in one line that names
both sides. With them, what a training step needs besides its model (train.py and bench.py):
data and batches on the device, and the optimizer.
"""
import hashlib
import importlib
import json
import os

import torch

from lyrics import vocabulary_hash


def load_meta(data_dir):
    path = os.path.join(data_dir, 'meta.json')
    if not os.path.exists(path):
        raise SystemExit(f"{path} not found: make the cache first, e.g. `python prepare.py config/prepare_synth.py`")
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def check_settings(expected, found, expected_name, found_name):
    """Refuse data whose settings differ from those a model was made for, naming both sides."""
    diff = [f"{k} is {expected.get(k)} for {expected_name} but {found.get(k)} in {found_name}"
            for k in sorted(set(expected) | set(found)) if expected.get(k) != found.get(k)]
    if diff:
        raise SystemExit(f"{found_name} was made with other settings: " + '; '.join(diff)
                         + ". Re-run prepare.py with the model's settings, or train a new model.")


def load_checkpoint(path, device='cpu', stage=None):
    """-> (checkpoint dict, model in eval mode). A missing, corrupt or wrong-stage file is a one-line error."""
    if not os.path.exists(path):
        raise SystemExit(f"checkpoint {path} does not exist; train it with train.py (see the README)")
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=False)
        found = checkpoint['stage']
    except Exception as e:  # torch.load raises several kinds for a truncated or foreign file
        raise SystemExit(f"checkpoint {path} cannot be read ({type(e).__name__}); is it a train.py checkpoint?") from None
    if stage is not None and found != stage:
        raise SystemExit(f"checkpoint {path} holds the '{found}' stage where the '{stage}' stage is needed")
    module = importlib.import_module(found)
    net = module.Model(module.Config(**checkpoint['model_args']))
    net.load_state_dict(checkpoint.get('ema') or checkpoint['model'])  # the weights' moving average, where kept
    return checkpoint, net.to(device).eval()


def feed_tensor(x, device):
    """Data that a stage cuts its batches from, loaded once: on a GPU it lives in the GPU's memory when it
    takes at most a quarter of what is free there (batches are then cut where the model trains), else in
    pinned host memory, whose copies to the GPU overlap with compute; elsewhere it stays in host memory."""
    x = torch.as_tensor(x)
    if not str(device).startswith('cuda'):
        return x
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return x.to(device) if x.nbytes <= free // 4 else x.pin_memory()


def to_device(batch, device):
    """A batch (a dict of tensors) on the training device; from host memory through pinned memory, so that
    the copy overlaps with compute; tensors already there stay."""
    if not device.startswith('cuda'):
        return {k: x.to(device) for k, x in batch.items()}
    return {k: (x.pin_memory() if x.device.type == 'cpu' else x).to(device, non_blocking=True) for k, x in batch.items()}


def configure_optimizers(net, weight_decay, learning_rate, betas, device_type):
    """AdamW with weight decay on matrices, kernels and embeddings, not on biases and norms; fused on CUDA."""
    params = [p for p in net.parameters() if p.requires_grad]
    groups = [dict(params=[p for p in params if p.dim() >= 2], weight_decay=weight_decay),
              dict(params=[p for p in params if p.dim() < 2], weight_decay=0.0)]
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=device_type == 'cuda')


def save_checkpoint(checkpoint, path):
    """Write to a temporary file, then rename: a run killed mid-write leaves the last checkpoint whole."""
    torch.save(checkpoint, path + '.tmp')
    os.replace(path + '.tmp', path)


def checkpoint_key(path):
    """A short fingerprint of a checkpoint file's bytes: which model made a cache."""
    sha = hashlib.sha1()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 24), b''):
            sha.update(chunk)
    return sha.hexdigest()[:12]


def load_stages(ae_ckpt, composer_ckpt, settings, settings_name, device, decoder_model=None, decoder_ckpt=None):
    """The frozen autoencoder and Composer that the Decoder trains on (or, with decoder_model, samples
    with): refused unless they were made with `settings` (named settings_name), with this pypinyin's
    vocabulary, and fit the Decoder. -> (ae_model, composer_model, the Composer's training config)."""
    ae_checkpoint, ae_model = load_checkpoint(ae_ckpt, device, stage='ae')
    composer_checkpoint, composer_model = load_checkpoint(composer_ckpt, device, stage='composer')
    for path, checkpoint in ((ae_ckpt, ae_checkpoint), (composer_ckpt, composer_checkpoint)):
        check_settings(settings, checkpoint['data_settings'], settings_name, path)
    check_settings(dict(vocab_hash=composer_checkpoint['data_settings'].get('vocab_hash')),
                   dict(vocab_hash=vocabulary_hash()), composer_ckpt, "this pypinyin's vocabulary (lyrics.py)")
    if decoder_model is not None:
        C, h, w = ae_model.latent_shape
        d = decoder_model.config
        check_settings(dict(row_dim=d.row_dim, latent_rows=d.latent_rows), dict(row_dim=C * w, latent_rows=h),
                       decoder_ckpt, ae_ckpt)
        check_settings(dict(composer_dim=d.composer_dim, vocab_size=d.vocab_size),
                       dict(composer_dim=composer_model.config.n_embd, vocab_size=composer_model.config.vocab_size),
                       decoder_ckpt, composer_ckpt)
    return ae_model, composer_model, composer_checkpoint['config']
