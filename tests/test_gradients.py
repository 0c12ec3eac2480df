"""One training step gives every trainable parameter of every stage a finite, non-zero gradient.
A parameter that never gets one is a bug (an input the model never sees, as when a comment once
cut the Composer's block embedding short) and makes DDP fail on its second step."""
import numpy as np
import pytest
import torch

import ae
import composer
import decoder
from checkpoint import load_meta


def assert_every_parameter_learns(net, batch, allowed_without=()):
    torch.manual_seed(0)
    net.train()
    net(**batch).backward()
    missing = [name for name, p in net.named_parameters()
               if p.requires_grad and (p.grad is None or not p.grad.isfinite().all() or p.grad.abs().sum() == 0)]
    assert sorted(set(missing) - set(allowed_without)) == [], missing


@pytest.mark.parametrize('gan_weight', [0.0, 0.5])
def test_autoencoder(tiny_data, gan_weight):
    meta = load_meta(tiny_data)
    data = ae.load_data(tiny_data, meta, 'train')
    torch.manual_seed(0)
    net = ae.Model(ae.Config(**ae.data_args(meta, data), patch=8, width=32, n_res=1, context_rows=2,
                             gan_weight=gan_weight))
    # at the start every real and fake logit is inside both hinges: the logits' bias gets +1 and -1, exactly 0
    assert_every_parameter_learns(net, ae.get_batch(data, 4, np.random.default_rng(0)),
                                  allowed_without=['discriminator.logits.bias'])


def test_composer(tiny_data, tiny_bert):
    meta = load_meta(tiny_data)
    for entry in meta['songs'].values():
        entry['aligned_by'] = 'this test'  # songs with aligned syllables have a pulse, which the pulse head learns
    data = composer.load_data(tiny_data, meta, 'train', dict(style_model=tiny_bert, style_tokens=8))
    torch.manual_seed(0)
    net = composer.Model(composer.Config(**composer.data_args(meta, data), n_layer=2, n_head=2, n_embd=32))
    net.config.style_drop = 0.5  # the null style learns from the songs whose style is dropped, style_in from the rest
    assert_every_parameter_learns(net, composer.get_batch(data, 8, np.random.default_rng(0)))


def test_decoder():
    torch.manual_seed(0)
    config = decoder.Config(row_dim=12, latent_rows=4, composer_dim=16, vocab_size=50, style_dim=8, n_layer=2,
                            n_head=2, n_embd=32, block_size=16, head_width=32, head_layers=2,
                            cond_drop=0.5, input_noise=0.1)
    net = decoder.Model(config)
    B, T, P, S = 8, 16, 5, 3
    batch = dict(latents=torch.randn(B, T + 1, 12), mask=torch.ones(B, T, dtype=torch.bool),
                 row_block=torch.sort(torch.randint(0, P, (B, T))).values, row_time=torch.rand(B, T, 2),
                 row_syllable=torch.randint(0, 50, (B, T)), echo=torch.randn(B, T, 12), echo_mask=torch.rand(B, T) < 0.5,
                 plan=torch.randn(B, P, 16),
                 plan_mask=torch.ones(B, P, dtype=torch.bool), style=torch.randn(B, S, 8),
                 style_mask=torch.ones(B, S, dtype=torch.bool))
    assert_every_parameter_learns(net, batch)
