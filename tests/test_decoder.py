"""The Decoder: the plan at every latent row, rows <-> segments, sampling with a fixed seed repeats,
the key/value cache equals recomputing (also under guidance, and the window holds), guidance 1.0
is the conditional path, a tiny decoder trained by train.py learns (its flow loss falls; eval.py's
rollout figures), its latent cache, and frozen stages that do not fit the data are refused."""
import json
import os
import re
import shutil

import numpy as np
import pytest
import torch

import decoder
from checkpoint import checkpoint_key
from lyrics import SPECIALS, even_onsets, syllable_parts, vocabulary
from conftest import TINY_TRAIN, run_script
from transformer import SyllableEmbedding


def test_plan_rows():
    # blocks: a gap for 0-100 frames, a 3-syllable line for 100-250, the end at 250
    table = np.array([[1, 1, 0, 0, 0, 100, 0], [0, 2, 0, 1, 100, 250, 3], [2, 0, 0, 0, 250, 250, 0]])
    tokens = np.zeros((3, 24), np.int64)
    tokens[1, :3] = [7, 8, 9]
    onsets = even_onsets(table, 24)
    assert onsets[1, :4].tolist() == [100, 150, 200, 0] and not onsets[[0, 2]].any()
    block, seconds, syllable, echo = decoder.plan_rows(table, tokens, onsets, n_rows=12, row_frames=25, frames_per_second=100.0)
    assert block.shape == syllable.shape == echo.shape == (12,) and seconds.shape == (12, 2)
    assert (echo == -1).all()  # no line comes back
    assert block.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2]  # row middles at 12, 37, 62, 87, 112, ...
    assert seconds[4, 0] == pytest.approx(0.12) and seconds[10, 0] == pytest.approx(0.12)
    assert syllable.tolist() == [0, 0, 0, 0, 7, 7, 8, 8, 9, 9, 0, 0]  # three syllables share 150 frames
    assert seconds[7, 1] == pytest.approx(0.37) and seconds[2, 1] == seconds[2, 0]  # since 8 began; in a gap: the block's

    onsets[1, :3] = [115, 120, 220]  # as aligned: the second syllable short, the last late
    _, seconds, syllable, _ = decoder.plan_rows(table, tokens, onsets, n_rows=12, row_frames=25, frames_per_second=100.0)
    assert syllable.tolist() == [0, 0, 0, 0, 7, 8, 8, 8, 8, 9, 0, 0]  # before its first onset a line sings its first
    assert seconds[4, 1] == 0.0 and seconds[8, 1] == pytest.approx(0.92)


def test_a_line_that_comes_back_echoes_its_first_instance():
    # the line 7 8 9 at 100-250 (evenly), a gap, the same words at 300-420 sung faster, another line, the end
    table = np.array([[1, 1, 0, 0, 0, 100, 0], [0, 4, 0, 1, 100, 250, 3], [1, 0, 0, 0, 250, 300, 0],
                      [0, 4, 0, 1, 300, 420, 3], [0, 2, 0, 1, 420, 500, 2], [2, 0, 0, 0, 500, 500, 0]])
    tokens = np.zeros((6, 24), np.int64)
    tokens[[1, 3], :3], tokens[4, :2] = [7, 8, 9], [7, 8]
    onsets = even_onsets(table, 24)
    assert onsets[3, :3].tolist() == [300, 340, 380]
    block, _, _, echo = decoder.plan_rows(table, tokens, onsets, n_rows=20, row_frames=25, frames_per_second=100.0)
    assert (echo[block != 3] == -1).all()  # the first instance, gaps, and a line of other words echo nothing
    # row 12 (its middle at 312) is 12 frames into the repeat's first syllable: frame 112 of the first instance, row 4;
    # row 15 (387) is 7 frames into the third: frame 207, row 8; row 13 (337) is the first syllable's last 3 frames,
    # which the first instance held longer: frame 137, row 5
    assert echo[12] == 4 and echo[15] == 8 and echo[13] == 5
    assert (echo < np.arange(20)).all()  # always an earlier row: sampling has made it


def test_rows_and_segments_round_trip():
    z = torch.randn(3, 4, 8, 16)  # (N, C, h, w)
    rows = decoder.to_rows(z)
    assert rows.shape == (24, 64)
    assert torch.equal(rows[9], z[1, :, 1].flatten())  # row 9 is segment 1's second row, every channel
    assert torch.equal(decoder.from_rows(rows, (4, 8, 16)), z)


def tiny_model(block_size=64):
    torch.manual_seed(0)
    config = decoder.Config(row_dim=12, latent_rows=4, composer_dim=16, vocab_size=50, style_dim=8, n_layer=2,
                            n_head=2, n_embd=32, block_size=block_size, head_width=32, head_layers=2)
    return decoder.Model(config).eval()


def plan_conditions(B=2, N=20, P=5, S=3):
    torch.manual_seed(1)
    echo = (torch.arange(N) - N // 2).clamp(min=-1).expand(B, -1)  # the second half echoes the first
    return [torch.sort(torch.randint(0, P, (B, N))).values, torch.rand(B, N, 2), torch.randint(0, 50, (B, N)), echo,
            torch.randn(B, P, 16), torch.ones(B, P, dtype=torch.bool), torch.randn(B, S, 8),
            torch.ones(B, S, dtype=torch.bool)], torch.randn(B, 12)


def seeded(fn, seed=0):
    torch.manual_seed(seed)
    return fn()


def test_sampling_with_a_fixed_seed_repeats():
    net = tiny_model()
    conds, first = plan_conditions()
    a = seeded(lambda: net.generate(first, *conds, flow_steps=4))
    assert a.shape == (2, 20, 12) and a.dtype == torch.float32
    assert torch.equal(a, seeded(lambda: net.generate(first, *conds, flow_steps=4)))
    assert not torch.allclose(a, seeded(lambda: net.generate(first, *conds, flow_steps=4), seed=1))
    # temperature scales the noise the head starts from: 0 gives one answer whatever the seed
    cold = [seeded(lambda: net.generate(first, *conds, flow_steps=4, temperature=0.0), seed) for seed in (0, 1)]
    assert torch.allclose(cold[0], cold[1])


@pytest.mark.parametrize('cfg_scale', [1.0, 2.0])
def test_cache_gives_the_same_rows(cfg_scale):
    net = tiny_model()
    conds, first = plan_conditions()
    cached = seeded(lambda: net.generate(first, *conds, flow_steps=3, cfg_scale=cfg_scale))
    full = seeded(lambda: net.generate(first, *conds, flow_steps=3, cfg_scale=cfg_scale, use_cache=False))
    assert (cached - full).abs().max() < 1e-4


def test_guidance_one_is_the_conditional_path():
    net = tiny_model()
    conds, first = plan_conditions()
    rows = seeded(lambda: net.generate(first, *conds, flow_steps=3))
    # the teacher-forced trunk over what was sampled, then the head from the same noise, gives it back
    made = torch.cat([first[:, None], rows], 1)
    row_echo = conds.pop(3)
    echo = made[torch.arange(len(made))[:, None], row_echo + 1]
    plan, contexts = net.conditions(*conds)
    h = net.hidden(made[:, :-1], echo, row_echo >= 0, plan, contexts)
    torch.manual_seed(0)
    again = torch.stack([net.head.sample(h[:, t], 3) for t in range(h.shape[1])], 1)
    assert (again - rows).abs().max() < 1e-4
    # guidance mixes the two halves' velocities: an unconditional half equal to the conditional one changes nothing
    guided = seeded(lambda: net.head.sample(torch.cat([h[:, 0], h[:, 0]]), 3, cfg_scale=3.0))
    assert (guided - seeded(lambda: net.head.sample(h[:, 0], 3))).abs().max() < 1e-5


def test_rollouts_keep_float32_under_bfloat16_autocast():
    # the running latent must not round each step's small change away over a long song
    net = tiny_model()
    conds, first = plan_conditions()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        rows = seeded(lambda: net.generate(first, *conds, flow_steps=4))
    assert rows.dtype == torch.float32
    assert (rows != rows.bfloat16().float()).float().mean() > 0.9


def test_a_step_attends_to_the_last_block_size_rows():
    net = tiny_model(block_size=8)
    conds, first = plan_conditions(N=30)
    cached = seeded(lambda: net.generate(first, *conds, flow_steps=2))
    full = seeded(lambda: net.generate(first, *conds, flow_steps=2, use_cache=False))
    assert torch.isfinite(cached).all() and cached.shape == (2, 30, 12)
    assert (cached - full).abs().max() < 1e-4  # the cache keeps the same last block_size rows


def test_no_state_depends_on_where_the_song_began():
    net = tiny_model(block_size=8)
    conds, first = plan_conditions(N=8)
    row_echo = conds.pop(3)
    rows, contexts = net.conditions(*conds)
    prev, echo = torch.randn(2, 8, 12), torch.randn(2, 8, 12)
    states = [net.hidden(prev, echo, row_echo >= 0, rows, contexts, start=start) for start in (0, 3750)]  # 4 minutes on
    assert (states[0] - states[1]).abs().max() < 1e-4


def test_a_repeat_reads_its_first_instance_beyond_the_window():
    net = tiny_model(block_size=8)
    conds, first = plan_conditions(N=30)  # rows 15-29 echo rows 0-14, further back than the window
    echoed = seeded(lambda: net.generate(first, *conds, flow_steps=2))
    conds[3] = torch.full_like(conds[3], -1)
    alone = seeded(lambda: net.generate(first, *conds, flow_steps=2))
    assert torch.equal(echoed[:, :15], alone[:, :15]) and (echoed[:, 15:] - alone[:, 15:]).abs().min() > 0


def test_the_head_learns_and_eval_reports(tiny_stages, tiny_data, tiny_recogniser):
    log = tiny_stages['decoder_log']
    losses = [float(v) for v in re.findall(r'^step \d+: train loss ([\d.]+)', log, re.M)]
    assert losses[-1] < 0.5 * losses[0], losses  # the flow loss at step 0 is about 2: noise against unit-spread rows
    # 30 s rollouts from plans of 12-16 s songs: each song is measured over its own length
    out = run_script('eval.py', f"--ckpt={tiny_stages['decoder']}", f'--data_dir={tiny_data}',
                     '--rollout_seconds=30', '--flow_steps=4', f'--recogniser_ckpt={tiny_recogniser}').stdout
    figures = json.loads(out.strip().splitlines()[-1])
    read = {f'{k}{suffix}' for k in ('syllable_error_rate', 'tone_free_error_rate') for suffix in ('', '_reconstructed', '_chance')}
    assert set(figures) == {'flow_loss', 'frechet', 'frechet_floor', 'sharpness', 'sharpness_reconstructed',
                            'sharpness_vs_autoencoder'} | read
    assert all(0 <= figures[k] < 5 for k in read), figures
    assert figures['flow_loss'] < 0.6 * losses[0], figures
    assert np.isfinite(figures['frechet']) and figures['sharpness'] > 0, figures
    # the latents were encoded once, beside the mels, keyed by the autoencoder checkpoint
    key = checkpoint_key(tiny_stages['ae'])
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
    assert f"n_fft is 1024 for {other}/meta.json but 512 in {tiny_stages['ae']}" in proc.stderr


def test_a_syllable_never_sung_is_embedded_by_its_parts():
    """The Decoder's and the Composer's syllables: training other syllables that share its initial,
    final and tone moves the embedding of one never seen, which is exactly its parts' rows."""
    torch.manual_seed(0)
    emb = SyllableEmbedding(16)
    ids = {t: i for i, t in enumerate(vocabulary())}
    seen, unseen = torch.tensor([ids['he2'], ids['bao1'], ids['ma3']]), torch.tensor([ids['hao3']])  # h, ao, 3
    before = emb(unseen).detach().clone()
    ((emb(seen) - torch.randn(3, 16)) ** 2).sum().backward()
    torch.optim.SGD(emb.parameters(), lr=0.1).step()
    after = emb(unseen)[0]
    assert (after - before).abs().max() > 0.01
    parts = syllable_parts()[ids['hao3']]
    assert torch.allclose(after, (emb.kinds.weight[len(SPECIALS)] + sum(e.weight[p] for e, p in zip(emb.part, parts))) / 2)
    table = emb.table()  # the special tokens are apart from each other and from the syllables
    assert torch.equal(table[ids['hao3']], after) and len({tuple(r.tolist()) for r in table[:len(SPECIALS) + 1]}) == 4
