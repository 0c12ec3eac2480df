"""The Decoder: the plan at every latent row, sampling with the key/value cache equals sampling
without it (also under guidance), a tiny decoder trained by train.py beats copying the last
latent (eval.py), its latent cache, and frozen stages that do not fit the data are refused."""
import json
import os
import shutil

import numpy as np
import pytest
import torch

import decoder
from conftest import TINY_TRAIN, run_script


def test_plan_rows():
    # blocks: a gap for 0-100 frames, a 3-syllable line for 100-250, the end at 250
    table = np.array([[1, 1, 0, 0, 0, 100, 0], [0, 2, 0, 1, 100, 250, 3], [2, 0, 0, 0, 250, 250, 0]])
    tokens = np.zeros((3, 24), np.int64)
    tokens[1, :3] = [7, 8, 9]
    block, seconds, syllable = decoder.plan_rows(table, tokens, n_steps=3, segment_frames=100, latent_rows=4,
                                                 frames_per_second=100.0)
    assert block.shape == seconds.shape == syllable.shape == (3, 4)
    assert block.tolist() == [[0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 2, 2]]  # row middles at 12, 37, 62, 87, 112, ...
    assert seconds[1, 0] == pytest.approx(0.12) and seconds[2, 2] == pytest.approx(0.12)
    assert syllable.tolist() == [[0, 0, 0, 0], [7, 7, 8, 8], [9, 9, 0, 0]]  # three syllables share 150 frames


@pytest.mark.parametrize('cfg_scale', [1.0, 2.0])
def test_cache_gives_the_same_latents(cfg_scale):
    torch.manual_seed(0)
    config = decoder.Config(latent_dim=32, latent_rows=4, composer_dim=16, vocab_size=50, style_dim=8, n_layer=2,
                            n_head=2, n_embd=32, max_steps=64)
    net = decoder.Model(config).eval()
    B, N, P, S = 2, 20, 5, 3
    conds = [torch.sort(torch.randint(0, P, (B, N * 4))).values.view(B, N, 4), torch.rand(B, N, 4),
             torch.randint(0, 50, (B, N, 4)), torch.randn(B, P, 16), torch.ones(B, P, dtype=torch.bool),
             torch.randn(B, S, 8), torch.ones(B, S, dtype=torch.bool)]
    first = torch.randn(B, 32)
    cached = net.generate(first, *conds, cfg_scale=cfg_scale)
    full = net.generate(first, *conds, cfg_scale=cfg_scale, use_cache=False)
    assert cached.shape == (B, N, 32)
    assert (cached - full).abs().max() < 1e-4
    # the teacher-forced forward agrees with the rollout it is fed
    latents = torch.cat([first[:, None], cached], 1)
    rows, contexts = net.conditions(*conds)
    residual = net.predict(latents[:, :-1], torch.arange(N).expand(B, -1), rows, contexts)
    if cfg_scale == 1.0:
        assert (latents[:, :-1] + residual - cached).abs().max() < 1e-4


def test_a_tiny_decoder_learns(tiny_stages, tiny_data):
    out = run_script('eval.py', f"--ckpt={tiny_stages['decoder']}", f'--data_dir={tiny_data}',
                     '--rollout_seconds=5').stdout
    figures = json.loads(out.strip().splitlines()[-1])
    assert set(figures) == {'tf_l1', 'copy_last_l1', 'swap_l1', 'rollout_spread_ratio'}
    assert figures['tf_l1'] < 0.9 * figures['copy_last_l1'], figures
    assert 0.0 < figures['rollout_spread_ratio'] < 10.0, figures
    # the latents were encoded once, beside the mels, keyed by the autoencoder checkpoint
    key = decoder.checkpoint_key(tiny_stages['ae'])
    songs = os.listdir(os.path.join(tiny_data, 'songs'))
    assert all(os.path.exists(os.path.join(tiny_data, 'songs', s, f'latents-{key}.npy')) for s in songs)


def test_frozen_stages_that_do_not_fit_are_refused(tiny_stages, tiny_data, tiny_bert, tmp_path):
    args = TINY_TRAIN + ['--model=decoder', f'--out_dir={tmp_path}/out', '--max_iters=1', f'--style_model={tiny_bert}']
    # the wrong stage in a key
    proc = run_script('train.py', *args, f'--data_dir={tiny_data}', f"--ae_ckpt={tiny_stages['composer']}",
                      f"--composer_ckpt={tiny_stages['composer']}", check=False)
    assert proc.returncode != 0 and "holds the 'composer' stage where the 'ae' stage is needed" in proc.stderr
    # a cache made with other audio settings: both sides named
    other = tmp_path / 'data'
    shutil.copytree(tiny_data, other)
    meta = json.loads((other / 'meta.json').read_text())
    meta['settings']['n_fft'] = 1024
    (other / 'meta.json').write_text(json.dumps(meta))
    proc = run_script('train.py', *args, f'--data_dir={other}', f"--ae_ckpt={tiny_stages['ae']}",
                      f"--composer_ckpt={tiny_stages['composer']}", check=False)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    assert f"n_fft is 512 for {tiny_stages['ae']} but 1024 in {other}/meta.json" in proc.stderr
