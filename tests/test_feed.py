"""The feed: each stage's get_batch cuts its batches from data loaded once, with no loop over the
examples' tensors, and gives bit for bit the batches that the per-example code before it gave
(kept here as the reference), so that exact resume and every earlier run's figures hold. The
autoencoder's and the recogniser's mels now come as cached, in float16: the same numbers, which
the models turn into float32 first."""
import numpy as np
import pytest
import torch

import ae
import composer
import decoder
import recogniser
from checkpoint import load_meta


def reference_ae(data, batch_size, rng):
    songs = [data['mels'][a:a + n].float().numpy() for a, n in zip(data['offsets'], data['lengths'])]
    F_ = data['segment_frames']
    lengths = np.array([len(mel) for mel in songs])
    picks = rng.choice(len(songs), size=batch_size, p=lengths / lengths.sum())
    window = np.zeros((batch_size, 3 * F_, songs[0].shape[1]), dtype=np.float32)
    for b, s in enumerate(picks):
        mel = songs[s]
        start = int(rng.integers(-F_ // 2, len(mel) - F_ // 2)) - F_
        lo, hi = max(start, 0), min(start + 3 * F_, len(mel))
        window[b, lo - start:hi - start] = mel[lo:hi]
    return dict(window=torch.from_numpy(window).half())  # float16 as cached: the model computes in float32


def reference_composer(data, batch_size, rng):
    picks = rng.choice(len(data['songs']), size=batch_size)
    return composer.collate([data['songs'][i] for i in picks], data['styles'])


def reference_decoder_collate(data, windows, plans=None):
    songs, styles = data['songs'], data['styles']
    rows = [torch.split(data['feed'][k][:-1], data['lengths'].tolist())
            for k in ('row_block', 'row_time', 'row_syllable', 'row_echo')]
    B, T = len(windows), max(n for _, _, n in windows)
    P = max(len(s['table']) for s in songs)
    silence = data['feed']['latents'][-1]
    batch = dict(latents=silence.repeat(B, T + 1, 1), mask=torch.zeros(B, T, dtype=torch.bool),
                 row_block=torch.zeros(B, T, dtype=torch.long), row_time=torch.zeros(B, T, 2),
                 row_syllable=torch.zeros(B, T, dtype=torch.long), echo=silence.repeat(B, T, 1),
                 echo_mask=torch.zeros(B, T, dtype=torch.bool),
                 plan=torch.zeros(B, P, data['composer_dim']), plan_mask=torch.zeros(B, P, dtype=torch.bool))
    style_rows = []
    for b, (i, start, n) in enumerate(windows):
        z, source = songs[i]['latents'], i if plans is None else plans[b]
        n_real = max(0, min(n, len(z) - start))
        batch['latents'][b, 1:n_real + 1] = z[start:start + n_real]
        if start > 0:
            batch['latents'][b, 0] = z[start - 1]
        batch['mask'][b, :n_real] = True
        for key, r in zip(('row_block', 'row_time', 'row_syllable', 'echo'), (r[source] for r in rows)):
            m = max(0, min(n, len(r) - start))
            plan_rows = torch.cat([r[start:start + m], r[-1:].expand(n - m, *r.shape[1:])])
            if key != 'echo':
                batch[key][b, :n] = plan_rows
                continue
            for t, e in enumerate(plan_rows.tolist()):  # a row of the window's own song, however far back
                if 0 <= e < len(z):
                    batch['echo'][b, t], batch['echo_mask'][b, t] = z[e], True
        p = len(songs[source]['table'])
        batch['plan'][b, :p], batch['plan_mask'][b, :p] = data['feed']['plan'][source, :p], True
        style_rows.append(songs[source]['style'])
    style_rows = torch.tensor(style_rows)
    return dict(batch, style=styles['embeddings'][style_rows], style_mask=styles['mask'][style_rows])


def reference_decoder(data, batch_size, rng):
    lengths = np.array([len(s['latents']) for s in data['songs']])
    picks = rng.choice(len(lengths), size=batch_size, p=lengths / lengths.sum())
    windows = []
    for i in picks:
        n = min(lengths[i], data['block_size'])
        windows.append((int(i), int(rng.integers(0, lengths[i] - n + 1)), int(n)))
    return reference_decoder_collate(data, windows)


def reference_recogniser(data, batch_size, rng):
    lines, gaps, order = data['lines'], data['gaps'], data['by_length']
    n_buckets = max(1, len(order) // recogniser.BUCKET_LINES)
    k = int(rng.integers(n_buckets))
    bucket = order[k * len(order) // n_buckets:(k + 1) * len(order) // n_buckets]
    mels, targets = [], []
    for _ in range(batch_size):
        song, lo, hi, start, end, target = lines[bucket[rng.integers(len(bucket))]]
        a, b = int(rng.integers(lo, start + 1)), int(rng.integers(end, hi + 1))
        if gaps and rng.random() < 0.1:
            song, lo, hi, *_ = gaps[rng.integers(len(gaps))]
            n = min(b - a, hi - lo)
            a = int(rng.integers(lo, hi - n + 1))
            b, target = a + n, []
        source = data['recons'] if data['recons'] and rng.random() < data['recon_share'] else data['mels']
        mels.append(torch.from_numpy(source[song][a:b]))
        targets.append(torch.tensor(target, dtype=torch.long))
    return dict(mel=recogniser.pad(mels).half(), mel_lengths=torch.tensor([len(m) for m in mels]),
                units=recogniser.pad(targets), unit_lengths=torch.tensor([len(t) for t in targets]))


def assert_same_batches(get_batch, reference, data, batch_size, seeds=range(6)):
    for seed in seeds:
        batch, expected = get_batch(data, batch_size, np.random.default_rng(seed)), reference(data, batch_size, np.random.default_rng(seed))
        assert batch.keys() == expected.keys()
        for k in expected:
            assert batch[k].dtype == expected[k].dtype and batch[k].shape == expected[k].shape, k
            assert torch.equal(batch[k], expected[k]), (seed, k)
            if batch[k].is_floating_point():  # bit for bit: no -0.0 where there was 0.0
                assert torch.equal(batch[k].view(torch.int32 if batch[k].dtype == torch.float32 else torch.int16),
                                   expected[k].view(torch.int32 if expected[k].dtype == torch.float32 else torch.int16)), k


def test_ae_batches(tiny_data):
    data = ae.load_data(tiny_data, load_meta(tiny_data), 'train')
    assert isinstance(data['mels'], torch.Tensor) and data['mels'].dtype == torch.float16
    assert_same_batches(ae.get_batch, reference_ae, data, 16)


def test_composer_batches(tiny_data, tiny_bert):
    data = composer.load_data(tiny_data, load_meta(tiny_data), 'train', dict(style_model=tiny_bert, style_tokens=8))
    assert_same_batches(composer.get_batch, reference_composer, data, 8)


def test_decoder_batches(tiny_data, tiny_stages):
    config = dict(device='cpu', ae_ckpt=tiny_stages['ae'], composer_ckpt=tiny_stages['composer'], block_size=64)
    data = decoder.load_data(tiny_data, load_meta(tiny_data), 'train', config)
    assert_same_batches(decoder.get_batch, reference_decoder, data, 6)
    assert_same_batches(decoder.get_batch, reference_decoder, dict(data, block_size=10_000), 3)  # whole songs, padded
    assert decoder.get_batch(dict(data, block_size=10_000), 3, np.random.default_rng(0))['echo_mask'].any()  # choruses come back
    windows, plans = [(0, 0, 500), (1, 30, 40), (2, 7, 900)], [2, 0, 1]  # another song's plan, past its end too
    for got, expected in zip(decoder.collate(data, windows, plans).values(),
                             reference_decoder_collate(data, windows, plans).values()):
        assert torch.equal(got, expected)


@pytest.mark.parametrize('with_recons', [False, True])
def test_recogniser_batches(tiny_data, tiny_stages, with_recons):
    config = dict(ae_ckpt=tiny_stages['ae'], device='cpu') if with_recons else None
    data = recogniser.load_data(tiny_data, load_meta(tiny_data), 'train', config)
    assert bool(data['recons']) == with_recons
    assert_same_batches(recogniser.get_batch, reference_recogniser, data, 16, seeds=range(12))
