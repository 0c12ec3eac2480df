import hashlib
import os

import numpy as np
import pytest
import soundfile as sf

import synth
from lyrics import parse_lyrics, place_lines

HOP = 80  # 5 ms at 16 kHz


def band_energy_db(wav, sr, low_hz):
    """Energy above low_hz in 20 ms windows every 5 ms, in dB."""
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(wav, (160, 160)), 320)[::HOP]
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(320), axis=1)) ** 2
    hz = np.fft.rfftfreq(320, 1 / sr)
    return 10 * np.log10(spectrum[:, hz > low_hz].sum(1) + 1e-10)


def load(folder):
    wav, sr = sf.read(os.path.join(folder, 'audio.wav'), dtype='float32')
    text = open(os.path.join(folder, 'lyrics.txt'), encoding='utf-8').read()
    return wav, sr, text, open(os.path.join(folder, 'style.txt'), encoding='utf-8').read().strip()


def test_corpus_layout_and_styles(tiny_corpus):
    songs = sorted(os.listdir(tiny_corpus))
    assert songs == ['song_000', 'song_001', 'song_002', 'song_003']
    styles = set()
    for name in songs:
        wav, sr, text, style = load(tiny_corpus / name)
        assert sr == 16000 and np.abs(wav).max() <= 1.0 and np.isfinite(wav).all()
        assert 8.0 <= len(wav) / sr <= 30.0  # a slow song's shortest form is longer than 16 s
        roles = [role for _, role in parse_lyrics(text)['headers']]
        assert roles[0] == 'intro' and roles[-1] == 'outro' and 'chorus' in roles and 'verse' in roles
        styles.add(style)
    assert styles == {s['text'] for s in synth.STYLES.values()}


def test_default_lengths_are_in_range():
    for index in range(8):  # two songs per style
        wav, _, _ = synth.make_song(index, synth.seed, 16000, synth.min_seconds, synth.max_seconds)
        assert synth.min_seconds <= len(wav) / 16000 <= synth.max_seconds


def test_full_songs_have_the_whole_form():
    _, text, _ = synth.make_song(5, 1, 16000, 30.0, 60.0)  # a slow ballad: the hardest to fit
    roles = [role for _, role in parse_lyrics(text)['headers']]
    assert roles[0] == 'intro' and roles[-1] == 'outro' and 'bridge' in roles
    assert roles.count('chorus') >= 2
    lines = parse_lyrics(text)['lines']
    choruses = [l['text'] for l in lines if l['role'] == 'chorus']
    assert len(choruses) > len(set(choruses))  # chorus words repeat


def test_deterministic_for_a_seed(tmp_path):
    digests = []
    for run in range(2):
        synth.main(str(tmp_path / str(run)), n_songs=2, seed=5, sample_rate=16000, min_seconds=10.0,
                   max_seconds=12.0, num_workers=1)
        digests.append([hashlib.sha1(open(tmp_path / str(run) / 'song_001' / f, 'rb').read()).hexdigest()
                        for f in ('audio.wav', 'lyrics.txt', 'style.txt')])
    assert digests[0] == digests[1]
    other, _, _ = synth.make_song(1, 6, 16000, 10.0, 12.0)
    assert not np.array_equal(other, sf.read(tmp_path / '0' / 'song_001' / 'audio.wav', dtype='float32')[0])


def test_lrc_stamps_match_the_voice_within_20ms(tiny_corpus):
    checked = 0
    for name in sorted(os.listdir(tiny_corpus)):
        wav, sr, text, _ = load(tiny_corpus / name)
        voice = band_energy_db(wav, sr, synth.VOICE_BAND_HZ)
        floor = np.percentile(voice, 5)
        singing = voice > floor + 20
        song = parse_lyrics(text)
        for line in song['lines']:
            i = int(round(line['start'] * sr / HOP))
            assert not singing[max(0, i - 8):i - 4].any()  # silent until 20 ms before the stamp
            onset = i - 4 + np.argmax(singing[i - 4:])
            assert abs(onset - i) * HOP / sr <= 0.02
            checked += 1
        for end in song['end_stamps']:  # after an end stamp the voice has stopped
            i = int(round(end * sr / HOP))
            assert not singing[i + 4:i + 20].any()
    assert checked >= 8


def test_backing_stays_below_the_voice_band(tiny_corpus):
    for name in sorted(os.listdir(tiny_corpus)):
        wav, sr, text, _ = load(tiny_corpus / name)
        lines, _, _ = place_lines(parse_lyrics(text), len(wav) / sr)
        first = int(lines[0]['start'] * sr / HOP)
        voice, everything = band_energy_db(wav, sr, synth.VOICE_BAND_HZ), band_energy_db(wav, sr, 50)
        intro, sung = slice(10, first - 20), slice(first, first + 200)
        # the intro has drums and chords, yet nothing in the voice band
        assert voice[intro].max() < voice[sung].max() - 40
        assert everything[intro].max() > voice[intro].max() + 40


@pytest.mark.parametrize('token, initial, final', [('zhuang1', 'zh', 'uang'), ('yu2', '', 'v'), ('yuan2', '', 'van'),
                                                   ('you3', '', 'iou'), ('wo3', '', 'uo'), ('<en>', '', 'a')])
def test_syllables_split_into_initial_and_final(token, initial, final):
    assert synth.split_syllable(token)[:2] == (initial, final)
