"""The autoencoder: shapes at the prototype's size, whole-song encode/decode, the optional
discriminator, and that a tiny one trained by train.py beats the mean-frame baseline (eval.py)."""
import json

import torch

import ae
from conftest import run_script


def test_prototype_size_latents():
    net = ae.Model(ae.Config(segment_frames=256, n_mels=256, patch=8, width=64, n_res=1))
    z = net.encode(torch.rand(2, 256, 256))
    assert z.shape == (2, 4, 32, 32) and net.latent_shape == (4, 32, 32)
    assert net.decode(z, z, z).shape == (2, 256, 256)


def test_whole_song_encode_decode_uses_the_neighbours():
    torch.manual_seed(0)
    net = ae.Model(ae.Config(segment_frames=32, n_mels=64, patch=4, width=32, n_res=2, context_rows=2)).eval()
    mel = torch.rand(100, 64)  # 4 segments, the last one padded
    z = net.encode_song(mel, batch_size=3)
    assert z.shape == (4, 4, 8, 16)
    out = net.decode_song(z, batch_size=3)
    assert out.shape == (128, 64)
    # decoding in one batch or several gives the same; changing a neighbour changes a segment
    assert torch.allclose(out, net.decode_song(z, batch_size=64), atol=1e-5)
    z2 = z.clone()
    z2[2] += 1.0
    out2 = net.decode_song(z2)
    assert not torch.allclose(out2[32:64], out[32:64]) and torch.allclose(out2[:32], out[:32], atol=1e-6)


def test_decoded_mels_stay_within_the_training_songs_range():
    # the autoencoder models log(mel + floor): a latent far off what it learnt must not decode to a
    # bin thousands of times louder than any song (sample.py scales the whole WAV by its peak)
    torch.manual_seed(0)
    net = ae.Model(ae.Config(segment_frames=32, n_mels=64, patch=4, width=32, n_res=1, mel_mean=-5.0, mel_std=2.0,
                             mel_max=2.5)).eval()
    z = net.encode(torch.rand(1, 32, 64))
    mel = net.decode(z, 100 * z, z)
    assert mel.min() >= 0 and mel.max() <= 2.5 and torch.isfinite(mel).all()


def test_discriminator_trains_in_the_same_backward():
    torch.manual_seed(0)
    net = ae.Model(ae.Config(segment_frames=32, n_mels=64, patch=4, width=32, n_res=1, gan_weight=0.1))
    loss = net(torch.rand(3, 96, 64))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in net.discriminator.parameters())
    assert all(p.grad is not None for p in net.encoder.parameters())


def test_a_tiny_autoencoder_learns(tiny_data, tmp_path):
    run_script('train.py', '--model=ae', f'--data_dir={tiny_data}', f'--out_dir={tmp_path}', '--device=cpu',
               '--compile=False', '--dtype=float32', '--batch_size=16', '--patch=4', '--width=64', '--n_res=2',
               '--context_rows=2', '--max_iters=1200', '--lr_decay_iters=1200', '--warmup_iters=20',
               '--learning_rate=2e-3', '--eval_interval=1200', '--eval_iters=2', '--log_interval=100')
    out = run_script('eval.py', f'--ckpt={tmp_path}/ckpt.pt', f'--data_dir={tiny_data}').stdout
    figures = json.loads(out.strip().splitlines()[-1])
    assert set(figures) == {'val_l1', 'mean_frame_l1', 'seam_ratio', 'sharpness'}
    # 1200 steps: 0.578 of the mean frame's on songs of 113 syllables, 0.606 on songs that sing the whole language
    assert figures['val_l1'] < 0.65 * figures['mean_frame_l1'], figures
    assert figures['seam_ratio'] < 1.5, figures
