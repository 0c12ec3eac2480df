"""The lyric recogniser: units round-trip, error rates, forced alignment on known log-probabilities,
a tiny recogniser trained by train.py learns its lines (far below chance), and prepare.py places
unstamped lines with it (and keeps the estimate, with a note, when it cannot)."""
import json
import os
import re
import shutil

import numpy as np
import soundfile as sf

import prepare
import recogniser
from conftest import TINY_SETTINGS, run_script
from lyrics import KIND, LINE, SPECIALS, START, even_onsets, vocabulary
from checkpoint import load_checkpoint, load_meta


def test_units_round_trip_every_syllable():
    syllables = vocabulary()[len(SPECIALS):] + ['<en>']
    assert recogniser.to_syllables(recogniser.to_units(syllables)) == syllables
    assert recogniser.units()[0] == '<blank>' and len(recogniser.units()) < 300
    assert recogniser.to_units(['<unk>', '<pad>']) == []


def test_error_rates():
    truth = [['ni3', 'hao3'], ['wo3', 'ai4', 'ni3']]
    assert recogniser.error_rates(truth, truth) == (0.0, 0.0)
    assert recogniser.error_rates([['ni2', 'hao3'], ['wo3', 'ni3']], truth) == (2 / 5, 1 / 5)  # a tone, a syllable
    # which true syllables a reading misses: a substitution or a deletion, not an insertion
    assert recogniser.missed(['wo3', 'ni3', 'ta1'], ['wo3', 'ai4', 'ni3']).tolist() == [False, True, False]
    assert recogniser.missed(['wo3', 'ai2', 'ni3'], ['wo3', 'ai4', 'ni3']).tolist() == [False, True, False]


def test_forced_alignment_finds_known_steps():
    rng = np.random.default_rng(0)
    n_units, targets, starts = 12, [3, 5, 5, 7], [4, 10, 16, 25]
    log_probs = np.full((40, n_units), -8.0) + rng.uniform(-0.5, 0, (40, n_units))
    log_probs[:, 0] = -0.1  # blank everywhere...
    for u, t in zip(targets, starts):
        log_probs[t:t + 2, u] = -0.05  # ...but where each unit is sung
        log_probs[t:t + 2, 0] = -6.0
    first, last, posterior = recogniser.align(log_probs, targets)
    assert first.tolist() == starts and last.tolist() == [t + 2 for t in starts]
    assert (posterior > 0.9).all()
    assert recogniser.align(log_probs[:4], targets) is None  # 4 steps cannot hold 4 units and a repeat


def test_syllable_onsets_from_known_steps():
    """Each line block's syllables are aligned inside it; a block that cannot be aligned keeps the even share."""
    vocab = vocabulary()
    ids = {t: i for i, t in enumerate(vocab)}
    unit = recogniser.unit_ids()
    table = np.array([[1, 1, 0, 0, 0, 40, 0], [0, 2, 0, 0, 40, 120, 3], [0, 2, 0, 1, 120, 160, 2], [2, 0, 0, 0, 160, 160, 0]])
    tokens = np.zeros((4, 24), np.int64)
    tokens[1, :3] = [ids['ni3'], ids['hao3'], ids['a1']]
    tokens[2, :2] = [ids['ma1'], ids['ma1']]
    log_probs = np.full((40, len(recogniser.units())), -8.0)
    log_probs[:, 0] = -0.1
    for u, step in (('n', 11), ('i3', 12), ('h', 20), ('ao3', 21), ('a1', 26)):  # steps of 4 frames
        log_probs[step, unit[u]], log_probs[step, 0] = -0.05, -6.0
    onsets, aligned = recogniser.align_syllables(log_probs, table, tokens, downsample=4)
    assert aligned == 1  # block 2 has nothing sung in it: the even share
    assert onsets[1, :4].tolist() == [44, 80, 104, 0]
    assert onsets[2, :2].tolist() == [120, 140] and not onsets[[0, 3]].any()


def test_tiny_recogniser_reads_its_lines(tiny_recogniser, tiny_data):
    _, net = load_checkpoint(tiny_recogniser, stage='recogniser')
    meta = load_meta(tiny_data)
    data = recogniser.load_data(tiny_data, meta, 'train')
    mels = [data['mels'][s][start:end].astype(np.float32) for s, _, _, start, end, _ in data['lines']]
    truth = [recogniser.to_syllables(t) for *_, t in data['lines']]
    error, _ = recogniser.error_rates(net.read(mels), truth)
    chance, _ = recogniser.error_rates(net.read(mels), truth[len(truth) // 2:] + truth[:len(truth) // 2])
    assert len(truth) >= 8 and error < 0.45 and chance > 0.8, (error, chance)  # half of chance, or better


def test_reconstructions_are_read_in_training(tiny_stages, tiny_data):
    meta = load_meta(tiny_data)
    data = recogniser.load_data(tiny_data, meta, 'train', dict(ae_ckpt=tiny_stages['ae'], device='cpu'))
    assert len(data['recons']) == len(data['mels']) == 3
    for mel, recon in zip(data['mels'], data['recons']):
        assert recon.shape == mel.shape and 0 < np.abs(recon.astype(np.float32) - mel).mean() < 0.1
    batches = [recogniser.get_batch(data, 8, np.random.default_rng(i))['mel'] for i in range(4)]
    assert all(b.shape[0] == 8 and b.shape[2] == mel.shape[1] for b in batches)


def test_recon_share_sets_how_many_lines_come_from_reconstructions():
    lines = [(0, 0, 100, 10, 90, [1, 2])]
    data = dict(recogniser.mel_feed([np.zeros((100, 4), np.float16)], [np.ones((100, 4), np.float16)], 'cpu'),
                lines=lines, gaps=[], by_length=np.arange(1))
    for share in (0.0, 0.25, 1.0):
        rng = np.random.default_rng(0)
        read = [recogniser.get_batch(dict(data, recon_share=share), 16, rng)['mel'][:, 0, 0] for _ in range(50)]
        assert abs(float(np.concatenate(read).mean()) - share) < 0.05, share


def test_batches_group_lines_of_one_length():
    """A batch's lines come from one group of about the same length (little padding), and a gap's
    stretch (no units) is no longer than the gap."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(200, 800, size=4 * recogniser.BUCKET_LINES)
    lines = [(0, 0, int(n), 50, int(n) - 50, [1, 2]) for n in lengths]  # (song, lo, hi, start, end, units)
    gaps = [(0, 0, 130, 65, 65, [])]
    data = dict(recogniser.mel_feed([np.zeros((800, 4), np.float16)], [], 'cpu'), lines=lines, gaps=gaps,
                by_length=np.argsort(lengths, kind='stable'))
    useful = []
    for _ in range(400):
        batch = recogniser.get_batch(data, 16, rng)
        n, words = batch['mel_lengths'].numpy(), batch['unit_lengths'].numpy() > 0
        useful.append(n[words].sum() / (words.sum() * n[words].max()))
        assert (n[~words] <= 130).all()
    assert np.mean(useful) > 0.8  # random lines of 200-800 frames: 0.6


def test_eval_reads_validation_songs(tiny_recogniser, tiny_stages, tiny_data):
    out = run_script('eval.py', f'--ckpt={tiny_recogniser}', f'--data_dir={tiny_data}',
                     f"--ae_ckpt={tiny_stages['ae']}").stdout
    figures = json.loads(out.strip().splitlines()[-1])
    for key in ('syllable_error_rate', 'syllable_error_rate_reconstructed', 'syllable_error_rate_griffin_lim',
                'syllable_error_rate_reconstructed_griffin_lim', 'syllable_error_rate_chance',
                'tone_free_error_rate', 'tone_free_error_rate_chance'):
        assert 0.0 <= figures[key] <= 2.0, key
    assert 'chance' in out


def unstamped(text):
    """LRC lyrics -> the same lines without their time stamps (and without the empty stamp lines)."""
    lines = [re.sub(r'\[\d+:[\d.]+\]', '', line) for line in text.splitlines()]
    return '\n'.join(line for line in lines if line.strip()) + '\n'


def test_prepare_aligns_lines_without_stamps(tiny_recogniser, tiny_corpus, tiny_data, tmp_path):
    meta = load_meta(tiny_data)
    name = meta['split']['train'][0]
    dataset = tmp_path / 'ds'
    shutil.copytree(tiny_corpus / name, dataset / 'song')
    lyrics = (dataset / 'song' / 'lyrics.txt').read_text(encoding='utf-8')
    (dataset / 'song' / 'lyrics.txt').write_text(unstamped(lyrics), encoding='utf-8')
    seconds = sf.info(str(dataset / 'song' / 'audio.wav')).duration
    # no singing: the backing alone would do; a quiet hum of one pitch is simpler to make
    os.makedirs(dataset / 'no_singing')
    t = np.arange(int(seconds * 16000)) / 16000
    sf.write(dataset / 'no_singing' / 'audio.wav', 0.1 * np.sin(2 * np.pi * 110 * t), 16000)
    (dataset / 'no_singing' / 'lyrics.txt').write_text(unstamped(lyrics), encoding='utf-8')
    os.makedirs(dataset / 'too_many_words')
    sf.write(dataset / 'too_many_words' / 'audio.wav', 0.1 * np.sin(2 * np.pi * 110 * t[:16000 * 2]), 16000)
    (dataset / 'too_many_words' / 'lyrics.txt').write_text('我爱你' * 40 + '\n' + '你爱我' * 40 + '\n', encoding='utf-8')

    estimated = prepare.prepare(str(dataset), str(tmp_path / 'a'), num_workers=1, val_fraction=0.0, **TINY_SETTINGS)
    assert {e['timing'] for e in estimated['songs'].values()} == {'estimated'}
    aligned = prepare.prepare(str(dataset), str(tmp_path / 'b'), num_workers=1, val_fraction=0.0,
                              align_ckpt=tiny_recogniser, **TINY_SETTINGS)
    songs = aligned['songs']
    assert songs["song"]["timing"] == "aligned", songs["song"]["notes"]
    assert any('forced alignment' in n for n in songs['song']['notes'])
    assert songs['no_singing']['timing'] == 'estimated' and any('unsure' in n for n in songs['no_singing']['notes'])
    assert songs['too_many_words']['timing'] == 'estimated'
    assert any('impossible' in n for n in songs['too_many_words']['notes'])

    fps = TINY_SETTINGS['sample_rate'] / TINY_SETTINGS['hop_length']
    starts = lambda data, song: np.array([row[START] / fps for row in np.load(data / 'songs' / song / 'blocks.npy')
                                          if row[KIND] == LINE])
    truth = starts(tiny_data, name)
    aligned_error, estimated_error = (np.abs(starts(tmp_path / d, 'song') - truth) for d in ('b', 'a'))
    assert np.median(aligned_error) < 0.25 and aligned_error.max() < 0.5, (aligned_error, estimated_error)  # a tiny model
    assert np.median(aligned_error) < np.median(estimated_error), (aligned_error, estimated_error)


def test_prepare_aligns_syllables(tiny_recogniser, tiny_corpus, tiny_data, tmp_path):
    """LRC-timed songs with align_ckpt: the lines stay where their stamps are, their syllables are
    aligned; the second pass keeps the mels and the latents."""
    meta = load_meta(tiny_data)
    names = meta['split']['train'][:2]
    for name in names:
        shutil.copytree(tiny_corpus / name, tmp_path / 'ds' / name)
    data = tmp_path / 'data'
    prepare.prepare(str(tmp_path / 'ds'), str(data), num_workers=1, val_fraction=0.0, **TINY_SETTINGS)
    kept = data / 'songs' / names[0] / 'latents-test.npy'
    np.save(kept, np.zeros(3))
    songs = prepare.prepare(str(tmp_path / 'ds'), str(data), num_workers=1, val_fraction=0.0,
                            align_ckpt=tiny_recogniser, **TINY_SETTINGS)['songs']
    assert kept.exists()
    for name in names:
        assert songs[name]['timing'] == 'lrc' and songs[name]['syllables_aligned'].endswith('lines')
        table = np.load(data / 'songs' / name / 'blocks.npy')
        assert np.array_equal(table, np.load(tiny_data / 'songs' / name / 'blocks.npy'))
        onsets, even = (np.load(d / 'songs' / name / 'onsets.npy') for d in (data, tiny_data))
        assert np.array_equal(even, even_onsets(table, TINY_SETTINGS['max_block_tokens']))
        assert int(songs[name]['syllables_aligned'].split()[0]) == sum(
            not np.array_equal(onsets[r], even[r]) for r in np.flatnonzero(table[:, KIND] == LINE))
    again = prepare.prepare(str(tmp_path / 'ds'), str(data), num_workers=1, val_fraction=0.0,
                            align_ckpt=tiny_recogniser, **TINY_SETTINGS)['songs']
    assert again == songs  # nothing to redo
