"""The Composer: plans sing the lyrics in order whatever the model samples, plans round-trip
through JSON, odd lyrics, and a tiny composer trained by train.py (eval.py's figures)."""
import json
import shutil

import numpy as np
import pytest
import torch

import composer
import planner
from checkpoint import load_checkpoint, load_meta
from conftest import run_script
from lyrics import N_TOKENS, rhythm_onsets

SETTINGS = dict(sample_rate=48000, hop_length=192, max_block_seconds=8.0, max_block_tokens=24, n_length_classes=8)  # the Config's


@pytest.fixture(scope='module')
def untrained():
    torch.manual_seed(0)
    return composer.Model(composer.Config(n_layer=2, n_head=2, n_embd=32, style_dim=16, max_blocks=600,
                                          pulses=(0.25, 0.4167))).eval()


def make_plan(net, text, temperature=1.0, seed=0, **kw):
    pieces = planner.lyric_lines(text, net.config.max_block_tokens)
    style = torch.randn(5, 16), torch.ones(5, dtype=torch.bool)
    return pieces, planner.plan(net, pieces, *style, SETTINGS, temperature=temperature, seed=seed, **kw)[0]


def sung(blocks):
    return [b['pinyin'] for b in blocks if b['kind'] == 'line']


@pytest.mark.parametrize('temperature', [1.0, 5.0, 100.0])
def test_every_line_is_sung_once_in_order(untrained, temperature):
    text = '[verse]\n我爱你\n你爱我\n[chorus]\n蜜雪冰城甜蜜蜜\n'
    for seed in range(3):
        pieces, blocks = make_plan(untrained, text, temperature, seed)
        assert sung(blocks) == [' '.join(p['tokens']) for p in pieces]
        assert blocks[-1]['kind'] == 'end' and sum(b['kind'] == 'end' for b in blocks) == 1
        starts = [b['start'] for b in blocks]
        assert starts == sorted(starts)


def test_a_gap_may_follow_the_last_line(untrained):
    # songs end with an outro: after the last line the choices are a gap or the end
    endings = [make_plan(untrained, '我爱你\n', temperature=5.0, seed=seed)[1][-2]['kind'] for seed in range(20)]
    assert 'gap' in endings and 'line' in endings


def test_roles_fit_where_the_block_stands(untrained):
    # a line takes its header's role; 'intro' is a gap before the first line, 'outro' one after the last
    text = '[verse]\n我爱你\n你爱我\n[chorus]\n蜜雪冰城甜蜜蜜\n好好学习\n'
    for seed in range(5):
        _, blocks = make_plan(untrained, text, temperature=100.0, seed=seed)
        lines = [i for i, b in enumerate(blocks) if b['kind'] == 'line']
        assert [blocks[i]['role'] for i in lines] == ['verse', 'verse', 'chorus', 'chorus']
        for i, b in enumerate(blocks[:-1]):
            assert b['role'] != 'intro' or i < lines[0]
            assert b['role'] != 'outro' or i > lines[-1]


def test_classifier_free_guidance_keeps_the_order(untrained):
    pieces, blocks = make_plan(untrained, '我爱你\n你爱我\n', cfg_scale=3.0)
    assert sung(blocks) == [' '.join(p['tokens']) for p in pieces]


def test_one_line_and_a_hundred_lines(untrained):
    _, blocks = make_plan(untrained, '[verse]\n我爱你\n')
    assert sung(blocks) == ['wo3 ai4 ni3']
    text = '\n'.join(['[verse]'] + ['我爱你中国'] * 100)
    pieces, blocks = make_plan(untrained, text, temperature=0.0)
    assert len(sung(blocks)) == 100 == len(pieces)


def test_long_line_is_cut_into_pieces(untrained):
    pieces = planner.lyric_lines('一二三四五六七八九十' * 3, 24)
    assert [len(p['tokens']) for p in pieces] == [24, 6]


@pytest.mark.parametrize('text', ['[chorus]\n', '', '!!! 😀\n'])
def test_lyrics_without_a_singable_line_are_refused(text):
    with pytest.raises(ValueError, match='no singable line'):
        planner.lyric_lines(text, 24)


@pytest.mark.parametrize('pulse', [0.25, 0.4167, -1.0])
def test_plans_are_put_on_the_pulse(untrained, pulse):
    # every block ends, and every syllable starts, a whole number of pulses from the song's start
    pieces = planner.lyric_lines('[verse]\n我爱你\n你爱我\n[chorus]\n蜜雪冰城甜蜜蜜\n', 24)
    style = torch.randn(5, 16), torch.ones(5, dtype=torch.bool)
    for seed in range(3):
        blocks, used = planner.plan(untrained, pieces, *style, SETTINGS, temperature=5.0, seed=seed, pulse=pulse)
        assert used == pulse or (pulse < 0 and used in untrained.config.pulses)  # -1: the Composer's pick
        on_grid = lambda t: abs(t / used - round(t / used)) * used < 4e-3  # a frame: the JSON rounds shares
        assert all(on_grid(b['start']) for b in blocks)
        for b in (b for b in blocks if b['kind'] == 'line'):
            onsets = b['start'] + (np.cumsum(b['rhythm']) - b['rhythm']) * b['seconds']
            assert all(on_grid(t) for t in onsets) and min(b['rhythm']) * b['seconds'] > used - 4e-3, b
            assert b['length_class'] == planner.length_class_of(b['seconds'], 8, 8.0)
    # no grid: the Composer's seconds as they come
    blocks, used = planner.plan(untrained, pieces, *style, SETTINGS, temperature=5.0, seed=0, pulse=0)
    assert used == 0 and not all(abs(b['start'] / 0.25 - round(b['start'] / 0.25)) < 1e-3 for b in blocks)


def test_on_pulse_rounds_steps_and_keeps_the_last_syllable():
    seconds, shares = planner.on_pulse(1.0, 1.1, np.array([0.26, 0.24, 0.1]), 0.25)
    # steps of 1, 1 and (at least) 1 pulse; the end at 2.1 s is 4.4 pulses on: 4 is too short for
    # a last syllable at 3 pulses plus one, so 4 it stays
    assert seconds == 1.0 and np.allclose(shares * 4, [1, 1, 1, 1])
    assert planner.on_pulse(0.5, 0.05, None, 0.25) == (0.25, None)  # at least one pulse


def test_a_long_plan_is_cut_between_blocks(untrained):
    _, blocks = make_plan(untrained, '[verse]\n我爱你\n你爱我\n[chorus]\n蜜雪冰城甜蜜蜜\n')
    assert planner.cut_plan(blocks, blocks[-1]['start']) == blocks  # it fits: unchanged
    for b in blocks[:-1]:
        cut = planner.cut_plan(blocks, b['start'] + b['seconds'] + 0.001)  # every block up to b, and its end
        assert cut[:-1] == blocks[:blocks.index(b) + 1]
        assert cut[-1] == dict(kind='end', start=pytest.approx(b['start'] + b['seconds'], abs=1e-3))
    with pytest.raises(ValueError, match="shorter than the plan's first block"):
        planner.cut_plan(blocks, blocks[0]['seconds'] / 2)


def test_plan_json_round_trip(untrained, tmp_path):
    _, blocks = make_plan(untrained, '[verse]\n我爱你\n你爱我\n')
    path = tmp_path / 'plan.json'
    planner.write_plan(path, blocks, 'slow ballad, 72 bpm', 0.4167)
    assert planner.read_plan(path) == (blocks, 'slow ballad, 72 bpm', 0.4167)
    text = path.read_text(encoding='utf-8')
    assert '我爱你' in text and 'wo3 ai4 ni3' in text  # a person can read and edit it
    # overlapping times and broken JSON are refused with the reason
    bad = json.loads(text)
    bad['blocks'][1]['start'] = bad['blocks'][0]['start']
    if bad['blocks'][0].get('seconds'):
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match='before block 0 ends'):
            planner.read_plan(path)
    path.write_text(text[:-20])
    with pytest.raises(ValueError, match='cannot read plan'):
        planner.read_plan(path)
    # a line's rhythm: a share per syllable, each syllable's expected part of the line
    line = next(b for b in blocks if b['kind'] == 'line')
    assert len(line['rhythm']) == 3 and abs(sum(line['rhythm']) - 1) < 1e-3
    bad = json.loads(text)
    next(b for b in bad['blocks'] if b['kind'] == 'line')['rhythm'] = [0.5, 0.5]
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match='one positive share per pinyin syllable'):
        planner.read_plan(path)


def test_a_tiny_composer_learns(tiny_data, tiny_bert, tmp_path, capsys):
    # a rhythm to learn: every line's syllables even, less the last, which is held three times as long
    data = tmp_path / 'data'
    shutil.copytree(tiny_data, data)
    for song in (data / 'songs').iterdir():
        table = np.load(song / 'blocks.npy')
        n = table[:, N_TOKENS, None]
        k = np.arange(SETTINGS['max_block_tokens'])
        weights = np.where(k < n, 1.0 + 2.0 * (k == n - 1), 0.0)
        np.save(song / 'onsets.npy', rhythm_onsets(table, weights / np.maximum(weights.sum(1, keepdims=True), 1)))
    meta = json.loads((data / 'meta.json').read_text())
    for entry in meta['songs'].values():
        entry['aligned_by'] = 'this test'  # as prepare.py marks aligned songs: they have a pulse
    (data / 'meta.json').write_text(json.dumps(meta))
    run_script('train.py', '--model=composer', f'--data_dir={data}', f'--out_dir={tmp_path}', '--device=cpu',
               '--compile=False', '--dtype=float32', '--batch_size=4', '--n_layer=2', '--n_head=2', '--n_embd=64',
               f'--style_model={tiny_bert}', '--max_iters=300', '--lr_decay_iters=300', '--warmup_iters=20',
               '--eval_interval=300', '--eval_iters=2', '--log_interval=100')
    out = run_script('eval.py', f'--ckpt={tmp_path}/ckpt.pt', f'--data_dir={data}').stdout
    figures = json.loads(out.strip().splitlines()[-1])
    assert figures['lines_in_order'] == 1.0
    assert figures['gap_acc'] > 0.8 and figures['role_acc'] > 0.8, figures
    assert figures['onset_error'] < 0.5 * figures['onset_error_even'], figures
    # a line's seconds inside its class: the validation song's tempo is one the three training songs
    # never have, so measured on the training songs
    seen = tmp_path / 'seen'
    shutil.copytree(data, seen)
    meta = json.loads((seen / 'meta.json').read_text())
    meta['split']['val'] = meta['split']['train']
    (seen / 'meta.json').write_text(json.dumps(meta))
    checkpoint, net = load_checkpoint(f'{tmp_path}/ckpt.pt')  # the rest in this process: it spares a start-up each
    figures = composer.evaluate(net, load_meta(seen), str(seen), 'cpu', checkpoint['config'])
    assert figures['line_seconds_error'] < 0.5 * figures['line_seconds_error_class_mean'], figures
    # and so do the plans it samples, line by line against the real songs'
    assert figures['sampled_line_seconds_error'] < 0.5 * figures['line_seconds_error_class_mean'], figures
    assert figures['sampled_onset_error'] < 0.5 * figures['onset_error_even'], figures
    # each song's pulse, from its style (each of the three has its own)
    assert figures['pulse_error'] < 0.5 * figures['pulse_error_corpus'], figures
    # a corpus whose songs share one style: the style swap is skipped and said so, not a crash
    one_style = tmp_path / 'one_style'
    shutil.copytree(data, one_style)
    meta = json.loads((one_style / 'meta.json').read_text())
    for entry in meta['songs'].values():
        entry['style'] = 'pop'
    (one_style / 'meta.json').write_text(json.dumps(meta))
    figures = composer.evaluate(net, load_meta(one_style), str(one_style), 'cpu', checkpoint['config'])
    assert 'fewer than two distinct styles' in capsys.readouterr().out and figures['length_acc_swapped_style'] is None
