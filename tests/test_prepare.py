import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

import prepare as prep
from lyrics import BLOCK_COLUMNS, vocabulary_hash

SETTINGS = dict(sample_rate=16000, n_fft=1024, hop_length=128, n_mels=128, segment_frames=128, max_block_seconds=8.0,
                min_gap_seconds=0.5, n_length_classes=8, max_block_tokens=24)


def run(dataset, data, **overrides):
    kw = dict(SETTINGS, val_fraction=0.25, num_workers=1)
    kw.update(overrides)
    return prep.prepare(str(dataset), str(data), **kw)


def song(folder, seconds=3.0, rate=16000, channels=1, lyrics='[verse]\n[00:00.50]我爱你\n[00:02.00]\n', style=None):
    os.makedirs(folder, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    wav = 0.3 * np.sin(2 * np.pi * 220 * t)
    sf.write(os.path.join(folder, 'audio.wav'), np.stack([wav] * channels, 1) if channels > 1 else wav, rate)
    if lyrics is not None:
        with open(os.path.join(folder, 'lyrics.txt'), 'wb') as f:
            f.write(lyrics if isinstance(lyrics, bytes) else lyrics.encode('utf-8'))
    if style is not None:
        with open(os.path.join(folder, 'style.txt'), 'w', encoding='utf-8') as f:
            f.write(style)


@pytest.fixture(scope='module')
def prepared(tiny_corpus, tmp_path_factory):
    data = tmp_path_factory.mktemp('data')
    return run(tiny_corpus, data), data


def test_synthetic_corpus(prepared, tiny_corpus):
    meta, data = prepared
    assert meta['settings']['sample_rate'] == 16000 and len(meta['vocab']) > 2000
    assert meta['settings']['vocab_hash'] == vocabulary_hash()  # every checkpoint keeps it with the settings
    assert sorted(meta['split']['train'] + meta['split']['val']) == sorted(os.listdir(tiny_corpus))
    assert len(meta['split']['val']) == 1
    for name, entry in meta['songs'].items():
        assert entry['status'] == 'ok' and entry['has_lyrics'] and entry['timing'] == 'lrc' and not entry['notes']
        folder = data / 'songs' / name
        mel = np.load(folder / 'mel.npy', mmap_mode='r')
        assert isinstance(mel, np.memmap) and mel.dtype == np.float16 and mel.shape == (entry['frames'], 128)
        blocks, tokens = np.load(folder / 'blocks.npy'), np.load(folder / 'tokens.npy')
        assert blocks.shape == (entry['n_blocks'], len(BLOCK_COLUMNS)) and tokens.shape == (entry['n_blocks'], 24)
        col = {c: blocks[:, i] for i, c in enumerate(BLOCK_COLUMNS)}
        assert col['start_frame'][0] == 0 and col['end_frame'][-2] == entry['frames']
        assert (col['start_frame'][1:] == col['end_frame'][:-1]).all()
        assert (col['kind'] == 0).sum() == entry['n_lines'] and col['kind'][-1] == 2
        assert entry['style'] and (tokens[col['kind'] == 0] > 0).any()


def test_lyric_blocks_sit_where_the_voice_sings(prepared):
    # frames inside lyric blocks carry far more energy in the top mel bands (the voice band) than gaps
    meta, data = prepared
    for name in meta['songs']:
        mel = np.load(data / 'songs' / name / 'mel.npy').astype(np.float32)
        blocks = np.load(data / 'songs' / name / 'blocks.npy')
        top = mel[:, 80:].mean(1)  # mel bins 80+ lie above 1.5 kHz at 16 kHz / 128 mels
        sung = np.concatenate([top[s:e] for k, _, _, _, s, e, _ in blocks if k == 0])
        gaps = np.concatenate([top[s:e] for k, _, _, _, s, e, _ in blocks if k == 1])
        assert np.median(sung) > 10 * np.median(gaps)


def test_second_run_redoes_only_what_changed(tiny_corpus, tmp_path, capsys):
    dataset = tmp_path / 'ds'
    shutil.copytree(tiny_corpus, dataset)
    data = tmp_path / 'data'
    run(dataset, data)
    mtime = os.stat(data / 'songs' / 'song_001' / 'mel.npy').st_mtime_ns
    capsys.readouterr()
    run(dataset, data)
    assert '0 to prepare, 4 unchanged' in capsys.readouterr().out
    # a cache derived from a song (the Decoder's latents) goes when the song is redone, and stays when not
    for song in ('song_001', 'song_002'):
        np.save(data / 'songs' / song / 'latents-0123456789ab.npy', np.zeros(3))
    with open(dataset / 'song_002' / 'lyrics.txt', 'a', encoding='utf-8') as f:
        f.write('[00:01.00]新的一行\n')
    run(dataset, data)
    assert '1 to prepare, 3 unchanged' in capsys.readouterr().out
    assert not (data / 'songs' / 'song_002' / 'latents-0123456789ab.npy').exists()
    assert (data / 'songs' / 'song_001' / 'latents-0123456789ab.npy').exists()
    assert os.stat(data / 'songs' / 'song_001' / 'mel.npy').st_mtime_ns == mtime
    meta = run(dataset, data, n_mels=64)  # other settings: everything again
    assert '4 to prepare, 0 unchanged' in capsys.readouterr().out
    assert np.load(data / 'songs' / 'song_001' / 'mel.npy').shape[1] == 64
    shutil.rmtree(dataset / 'song_003')
    meta = run(dataset, data, n_mels=64)
    assert 'song_003' not in meta['songs'] and not (data / 'songs' / 'song_003').exists()


def test_bad_input_is_skipped_or_kept_with_a_reason(tmp_path):
    ds = tmp_path / 'ds'
    song(ds / 'good', style='slow piano ballad\n')
    song(ds / 'stereo_44k', rate=44100, channels=2)
    os.makedirs(ds / 'empty_audio')
    sf.write(ds / 'empty_audio' / 'audio.wav', np.zeros(0), 16000)
    os.makedirs(ds / 'corrupt_audio')
    (ds / 'corrupt_audio' / 'audio.wav').write_bytes(b'RIFF....WAVEfmt garbage')
    song(ds / 'no_lyrics', lyrics=None)
    os.makedirs(ds / 'lyrics_no_audio')
    (ds / 'lyrics_no_audio' / 'lyrics.txt').write_text('我爱你', encoding='utf-8')
    song(ds / 'gb18030', lyrics='[verse]\n[00:00.50]我爱你\n'.encode('gb18030'))
    song(ds / 'undecodable', lyrics=b'\x81\x30\xff\xff\xfe')
    song(ds / 'out_of_order', lyrics='[00:02.00]你爱我\n[00:00.50]我爱你\n')
    song(ds / 'past_end', lyrics='[00:00.50]我爱你\n[00:09.00]你爱我\n')
    song(ds / 'too_short', seconds=0.5)
    song(ds / 'mixed_text', lyrics='[Chorus]\nI love 你 2 much 😀!!\n……\n')
    song(ds / 'headers_only', lyrics='[verse]\n[chorus]\n')
    (ds / 'loose_file.txt').write_text('not a song')
    os.symlink(ds / 'good', ds / 'linked')
    meta = run(ds, tmp_path / 'data')
    songs = meta['songs']
    assert 'loose_file.txt' not in songs and songs['linked']['status'] == 'ok'
    assert songs['good']['style'] == 'slow piano ballad'
    reasons = {name: e.get('reason', '') for name, e in songs.items() if e['status'] == 'skipped'}
    assert set(reasons) == {'empty_audio', 'corrupt_audio', 'lyrics_no_audio', 'too_short'}
    assert 'no samples' in reasons['empty_audio'] and 'cannot read' in reasons['corrupt_audio']
    assert 'no audio file' in reasons['lyrics_no_audio'] and 'shorter than one segment' in reasons['too_short']
    stereo = songs['stereo_44k']
    assert stereo['frames'] == 3 * 16000 // 128 + 1 and stereo['has_lyrics']
    assert any('mono' in n for n in stereo['notes']) and any('44100' in n for n in stereo['notes'])
    for name in ('no_lyrics', 'undecodable', 'headers_only'):  # audio kept for the autoencoder
        assert songs[name]['status'] == 'ok' and not songs[name]['has_lyrics'] and songs[name]['notes']
        assert not (tmp_path / 'data' / 'songs' / name / 'blocks.npy').exists()
    assert songs['gb18030']['has_lyrics'] and songs['gb18030']['n_lines'] == 1
    assert any('out of order' in n for n in songs['out_of_order']['notes'])
    assert songs['past_end']['n_lines'] == 1 and any('after the audio ends' in n for n in songs['past_end']['notes'])
    assert songs['mixed_text']['has_lyrics'] and songs['mixed_text']['timing'] == 'estimated'
    tokens = np.load(tmp_path / 'data' / 'songs' / 'mixed_text' / 'tokens.npy')
    assert [meta['vocab'][i] for i in tokens[tokens > 0]] == ['<en>', '<en>', 'ni3', 'er4', '<en>']
    ok = [n for n, e in songs.items() if e['status'] == 'ok']
    assert sorted(meta['split']['train'] + meta['split']['val']) == sorted(ok)


def test_parallel_workers_match_serial(tiny_corpus, tmp_path):
    serial = run(tiny_corpus, tmp_path / 'a', num_workers=1)
    parallel = run(tiny_corpus, tmp_path / 'b', num_workers=2)
    for name in serial['songs']:
        a, b = np.load(tmp_path / 'a' / 'songs' / name / 'mel.npy'), np.load(tmp_path / 'b' / 'songs' / name / 'mel.npy')
        assert np.array_equal(a, b)
    assert serial['split'] == parallel['split']


def test_command_line(tiny_corpus, tmp_path):
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, 'prepare.py', 'config/prepare_synth.py', f'--dataset_dir={tiny_corpus}',
                          f'--data_dir={tmp_path}', '--num_workers=1'], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.load(open(tmp_path / 'meta.json'))['settings']['n_mels'] == 128
    bad = subprocess.run([sys.executable, 'prepare.py', '--dataset_dir=/nonexistent'], cwd=root, capture_output=True, text=True)
    assert bad.returncode != 0 and 'is not a folder' in bad.stderr and 'Traceback' not in bad.stderr
