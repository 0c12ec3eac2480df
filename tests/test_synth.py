import hashlib
import os

import numpy as np
import pytest
import soundfile as sf
import torch

import synth
from audio import VOICE_BAND_HZ, mel_spectrogram
from lyrics import parse_lyrics, place_lines, read_lyrics

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
        assert 8.0 <= len(wav) / sr <= 42.0  # a slow song's shortest form (4 lines, 2 bars) can take 41 s
        roles = [role for _, role in parse_lyrics(text)['headers']]
        assert roles[0] == 'intro' and roles[-1] == 'outro' and 'chorus' in roles and 'verse' in roles
        styles.add(style)
    assert styles == {s['text'] for s in synth.STYLES.values()}


def test_default_lengths_are_in_range():
    for index in range(8):  # two songs per style; at 4 kHz, as the length does not depend on the rate
        wav, _, _ = synth.make_song(index, synth.seed, 4000, synth.min_seconds, synth.max_seconds)
        assert synth.min_seconds <= len(wav) / 4000 <= synth.max_seconds


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
    # a run with fewer songs into the same folder leaves only its own: prepare.py reads every song folder
    synth.main(str(tmp_path / '0'), n_songs=1, seed=5, sample_rate=16000, min_seconds=10.0, max_seconds=12.0,
               num_workers=1)
    assert sorted(os.listdir(tmp_path / '0')) == ['song_000']


def test_lrc_stamps_match_the_voice_within_20ms(tiny_corpus):
    checked = 0
    for name in sorted(os.listdir(tiny_corpus)):
        wav, sr, text, _ = load(tiny_corpus / name)
        voice = band_energy_db(wav, sr, VOICE_BAND_HZ)
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
        voice, everything = band_energy_db(wav, sr, VOICE_BAND_HZ), band_energy_db(wav, sr, 50)
        intro, sung = slice(10, first - 20), slice(first, first + 200)
        # the intro has drums and chords, yet nothing in the voice band
        assert voice[intro].max() < voice[sung].max() - 40
        assert everything[intro].max() > voice[intro].max() + 40


@pytest.mark.parametrize('token, initial, final', [('zhuang1', 'zh', 'uang'), ('yu2', '', 'v'), ('yuan2', '', 'van'),
                                                   ('you3', '', 'iou'), ('wo3', '', 'uo'), ('<en>', '', 'a')])
def test_syllables_split_into_initial_and_final(token, initial, final):
    assert synth.split_syllable(token)[:2] == (initial, final)


def test_the_corpus_can_sing_the_language():
    """Every tonal syllable of the 3,755 common characters, in any reading, has a text that sings it,
    but a few dozen rare readings; and each text is read as its syllable."""
    assert len(synth.common_characters()) == 3755 and len(set(synth.common_characters())) == 3755
    common, table = synth.common_syllables(), synth.spellers()
    assert 1200 <= len(common) <= 1300 and len(table) >= 0.95 * len(common)
    rng = np.random.default_rng(0)
    for syllable in rng.choice(sorted(table), 200, replace=False):
        assert all(syllable in synth.reading(text) for text in table[syllable]), syllable


def test_every_common_syllable_is_sung_its_own_way():
    """No two tonal syllables of the common characters share the singer's settings (an earlier singer
    sang lan2, lang2, man2, nan2, ran2 the same: a recogniser could not read 29% of the corpus's
    syllables); and syllables that differ only in one part sound apart: each rendering's nearest
    other, in log-mel distance, is the same syllable with other noise."""
    sounds = {}
    for s in synth.common_syllables():
        initial, final, tone = synth.split_syllable(s)
        sounds.setdefault((synth.MURMURS.get(initial), synth.INITIALS.get(initial),
                           tuple(synth.vowel_path(initial, final)), tone), []).append(s)
    assert [group for group in sounds.values() if len(group) > 1] == []
    groups = [['lan2', 'lang2', 'man2', 'nan2', 'ran2'], ['si1', 'ci1', 'zi1', 'shi1', 'chi1', 'zhi1'],
              ['xia1', 'qia1', 'jia1', 'ha1', 'ka1', 'ga1', 'fa1', 'pa1', 'ba1', 'ta1', 'da1'],
              ['ma1', 'ma5', 'la1', 'na1'], ['dong1', 'dou1', 'deng1', 'den1']]
    for group in groups:
        mels = {(s, seed): np.log(mel_spectrogram(torch.from_numpy(synth.sing(
                    s, 64, 0.3, 16000, synth.STYLES['pop'], np.random.default_rng(seed), 0.5)).float(),
                    16000, 1024, 128, 128).numpy() + 1e-3) for s in group for seed in (1, 2)}
        for a in mels:
            nearest = min((b for b in mels if b != a), key=lambda b: np.abs(mels[a] - mels[b]).mean())
            assert nearest[0] == a[0], (a, nearest)


def test_lines_draw_evenly_on_the_language_and_leave_out_held_out_syllables():
    held_out = frozenset({'de5', 'shi4', 'yi1', 'bu4', 'le5'})  # the most common: the hardest to keep out
    rng = np.random.default_rng(1)
    sung = [t for _ in range(300) for t in synth.tokenize(synth.draw_line(rng, 8, held_out))]
    assert not held_out & set(sung)
    assert len(set(sung)) > 900  # 2400 syllables drawn mostly evenly from about 1,230: most are there once or more
    _, lrc, _ = synth.make_song(2, 3, 4000, 20.0, 25.0, held_out=held_out)  # a whole song's lyrics too
    assert not held_out & {t for line in parse_lyrics(lrc)['lines'] for t in line['tokens']}


def test_held_out_syllables_must_be_common_syllables(tmp_path):
    with pytest.raises(SystemExit, match="not tonal syllables"):
        synth.main(str(tmp_path), n_songs=1, seed=0, sample_rate=4000, min_seconds=10.0, max_seconds=12.0,
                   num_workers=1, held_out='hao3 hao7')


def test_the_singer_sings_a_lyric_file(tmp_path):
    """lyrics_file: the songs sing its lines, in order, where they would sing drawn ones."""
    (tmp_path / 'mine.txt').write_text('[verse]\n下班的时候天已经黑了\n地铁里的人都低着头\n[chorus]\n我想回家\n', encoding='utf-8')
    synth.main(str(tmp_path / 'out'), n_songs=2, seed=0, sample_rate=4000, min_seconds=20.0, max_seconds=25.0,
               num_workers=1, lyrics_file=str(tmp_path / 'mine.txt'))
    for name in ('song_000', 'song_001'):
        sung = [line['text'] for line in parse_lyrics(read_lyrics(tmp_path / 'out' / name / 'lyrics.txt'))['lines']]
        assert sung[:3] == ['下班的时候天已经黑了', '地铁里的人都低着头', '我想回家']
    (tmp_path / 'empty.txt').write_text('[verse]\n', encoding='utf-8')
    with pytest.raises(SystemExit, match='no lyric lines'):
        synth.main(str(tmp_path / 'out'), n_songs=1, seed=0, sample_rate=4000, min_seconds=20.0, max_seconds=25.0,
                   num_workers=1, lyrics_file=str(tmp_path / 'empty.txt'))
    with pytest.raises(SystemExit, match='cannot read lyrics_file'):
        synth.main(str(tmp_path / 'out'), n_songs=1, seed=0, sample_rate=4000, min_seconds=20.0, max_seconds=25.0,
                   num_workers=1, lyrics_file=str(tmp_path / 'missing.txt'))


@pytest.mark.parametrize('index', [0, 3])  # the slowest style (ballad, 72 bpm) and the fastest (rock, 144 bpm)
def test_whole_songs_have_the_form_of_real_songs(index):
    wav, lrc, _ = synth.make_song(index, 11, 4000, 150.0, 240.0)
    song = parse_lyrics(lrc)
    roles = [role for _, role in song['headers']]
    assert 150.0 <= len(wav) / 4000 <= 240.0
    assert roles[0] == 'intro' and roles[-1] == 'outro' and 'bridge' in roles and 'inst' in roles
    assert roles.count('chorus') >= 3 and roles.count('verse') >= 2
    chorus = [line['text'] for line in song['lines'] if line['role'] == 'chorus']
    assert len(set(chorus)) >= 4 and all(chorus.count(text) >= 3 for text in chorus)  # every chorus line comes back


def test_the_evaluation_lyrics_are_not_in_the_corpus(tiny_corpus):
    """examples/eval/: whole songs of everyday words, written apart from synth.py (which reads no file)
    and never in a corpus it makes; they sing syllables that the default corpus holds out."""
    import glob
    corpus = {line['text'] for name in os.listdir(tiny_corpus)
              for line in parse_lyrics(read_lyrics(tiny_corpus / name / 'lyrics.txt'))['lines']}
    files = sorted(glob.glob(os.path.join(os.path.dirname(__file__), '..', 'examples', 'eval', '*.txt')))
    assert len(files) >= 3
    held_out = set(synth.held_out.split())
    for path in files:
        lines = parse_lyrics(read_lyrics(path))['lines']
        assert len(lines) >= 24 and not corpus & {line['text'] for line in lines}
        assert held_out & {t for line in lines for t in line['tokens']}
    assert 'open(' not in open(synth.__file__).read().split('def write_song')[0]  # nothing read before writing
