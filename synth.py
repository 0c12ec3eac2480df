"""
The embedded default corpus: synthetic songs whose audio really follows their lyrics and style,
so that every stage can be run and tested without real data.

    python synth.py                          # 700 songs at 16 kHz in dataset/synth/: 4 in 5 of 30-60 s, 1 in 5 of 2.5-4 min
    python synth.py --n_songs=8 --seed=7
    python synth.py --lyrics_file=examples/eval/home.txt --n_songs=4 --long_share=1 --out_dir=dataset/home
                                             # your lyrics, one song per style, sung by the corpus's singer

It sings the language, not a sample of it: a line's syllables are drawn, most of them, evenly
from every tonal syllable that the 3,755 most common characters (GB2312 level 1) are read as, in
any of their readings (about 1,270; common_syllables), each spelt by a character or a word that
pypinyin reads that way (spellers); the rest are common characters drawn evenly. What is sung is
what lyrics.tokenize reads in the line, as prepare.py will. `held_out` names syllables that no
song sings: new lyrics that use them measure what the models make of syllables never heard.
The run ends with the coverage: how many of the common syllables are sung, and the fewest times.

Each song folder gets audio.wav, lyrics.txt (section headers + LRC stamps that match the audio)
and style.txt. What is in the audio:
- a voice: one note per pinyin syllable, a source-filter model (harmonics of a pitch that
  follows the melody and the syllable's tone, shaped by the vowel's formants plus a singer's
  formant near 2.9 kHz), with an onset noise or murmur chosen by the syllable's initial; no two
  common syllables are sung the same (-n and -ng, m n l r, s c z, the neutral tone all differ);
- a song form: intro, verses, a chorus whose words and melody repeat (higher and louder), a
  bridge and an outro, with gaps between phrases; a whole song of a few minutes has a third verse,
  instrumental breaks and a last chorus sung twice (song_form);
- a style (STYLES): tempo, voice register and brightness, backing instrument, drum pattern.
The backing (chords, bass, drums) is low-passed at BACKING_MAX_HZ, so energy above
audio.VOICE_BAND_HZ comes from the voice alone: measures.py and the tests find where it sings from that.
"""
import functools
import os
import re
import shutil
from collections import Counter
from multiprocessing import Pool

import numpy as np
import soundfile as sf
from pypinyin import Style, lazy_pinyin, pinyin
from pypinyin.phrases_dict import phrases_dict
from pypinyin.pinyin_dict import pinyin_dict
from tqdm import tqdm

from configurator import configure
from lyrics import parse_lyrics, read_lyrics, tokenize

# -----------------------------------------------------------------------------
out_dir = 'dataset/synth'
n_songs = 700  # 148 of them whole songs: 883 minutes of audio, 18% more than 1000 songs of 30-60 s
seed = 1337
sample_rate = 16000
min_seconds = 30.0  # song length range; the form is trimmed to a length drawn from it
max_seconds = 60.0
long_share = 0.2  # the share of whole songs, whose length range is the next two
long_min_seconds = 150.0
long_max_seconds = 240.0
even_share = 0.75  # the share of a line's syllables drawn evenly from the common syllables; the rest: common characters
held_out = 'hao3 kuai4 xue2 zhuang1 qing2 lv4 shui3 feng1 chuan2 mei3 nian2 gei3 zou3 xiang1 dui4 ren4 shen1 ' \
           'kan4 pao3 yue4'  # tonal syllables no song sings ('' for none); each initial, final and tone is sung elsewhere
lyrics_file = ''  # a lyrics.txt whose lines, in order, the songs sing in place of drawn ones: the singer on new lyrics
num_workers = 2
# -----------------------------------------------------------------------------

BACKING_MAX_HZ = 1000.0  # nothing of the backing lies above this

STYLES = {
    'ballad': dict(text='slow piano ballad, soft female vocal, brushed drums, 72 bpm', bpm=72,
                   voice_midi=62, tilt=1.4, singer=0.5, vibrato=0.012, instrument='piano',
                   kick=[0, 10], snare=[8], hat=[0, 4, 8, 12]),
    'folk': dict(text='acoustic folk, warm male vocal, plucked guitar, light percussion, 96 bpm', bpm=96,
                 voice_midi=50, tilt=1.1, singer=0.7, vibrato=0.008, instrument='guitar',
                 kick=[0, 8], snare=[4, 12], hat=[0, 2, 4, 6, 8, 10, 12, 14]),
    'pop': dict(text='upbeat electronic pop, bright female vocal, synth pad, four-on-the-floor kick, 120 bpm',
                bpm=120, voice_midi=64, tilt=0.8, singer=1.0, vibrato=0.006, instrument='pad',
                kick=[0, 4, 8, 12], snare=[4, 12], hat=[2, 6, 10, 14]),
    'rock': dict(text='fast rock, gritty male vocal, distorted bass guitar, heavy drums, 144 bpm', bpm=144,
                 voice_midi=52, tilt=0.6, singer=1.2, vibrato=0.004, instrument='distorted',
                 kick=[0, 6, 8, 10], snare=[4, 12], hat=[0, 2, 4, 6, 8, 10, 12, 14]),
}



def reading(text):
    """The tonal syllables pypinyin reads a text as, in context (as lyrics.tokenize does for Hanzi)."""
    return lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)


@functools.lru_cache(maxsize=1)
def common_characters():
    """The 3,755 characters of GB2312 level 1, the most common in Mandarin text."""
    codes = [bytes([row, col]) for row in range(0xB0, 0xD8) for col in range(0xA1, 0xFF)]
    return [code.decode('gb2312') for code in codes if code < b'\xd7\xfa']  # the last row ends at F9


@functools.lru_cache(maxsize=1)
def common_syllables():
    """Every tonal syllable the common characters are read as, in any reading pypinyin gives: about 1,270."""
    return sorted({s for c in common_characters()
                   for s in pinyin(c, style=Style.TONE3, heteronym=True, neutral_tone_with_five=True)[0]})


@functools.lru_cache(maxsize=1)
def spellers():
    """Tonal syllable -> texts that pypinyin reads as it, for the common syllables: the common characters
    read that way alone; for a syllable that is only another reading of its characters, the two- and
    three-character words of pypinyin's phrase list (of common characters) that read one that way; for
    the few left, any character read that way alone. A few dozen rare readings have none."""
    wanted = set(common_syllables())
    found = {}
    for c in common_characters():
        found.setdefault(reading(c)[0], []).append(c)
    common = set(common_characters())
    for phrase in phrases_dict:
        if len(phrase) in (2, 3) and set(phrase) <= common:
            for s in set(reading(phrase)) & wanted:
                if s not in found or not found[s][0] in common:  # a word only where no character reads it alone
                    found.setdefault(s, []).append(phrase)
    for code in pinyin_dict:
        c = chr(code)
        if '\u4e00' <= c <= '\u9fff' and c not in common and (s := reading(c)[0]) in wanted and s not in found:
            found[s] = [c]
    return {s: found[s] for s in sorted(wanted) if s in found}


def draw_line(rng, n, held_out):
    """A line of lyrics of at least n syllables, none of them in held_out: each piece a speller of a
    common syllable drawn evenly (even_share of them) or a common character."""
    table, chars = spellers(), common_characters()
    syllables = [s for s in table if s not in held_out]
    for _ in range(100):  # a held-out syllable read in context (a word across two pieces) redraws the line
        line = ''
        while len(reading(line)) < n:
            if rng.random() < even_share:
                options = table[syllables[rng.integers(len(syllables))]]
                piece = options[rng.integers(len(options))]
            else:
                piece = chars[rng.integers(len(chars))]
            if not held_out & set(reading(piece)):
                line += piece
        if not held_out & set(tokenize(line)):
            return line
    raise RuntimeError(f"could not draw a line without {sorted(held_out)}")

# vowel formants (F1, F2, F3) in Hz; 'r' is the apical vowel after z/c/s/zh/ch/sh/r; 'n' and 'N' are
# the nasal codas -n and -ng (the two must differ: an-ang, en-eng, in-ing tell words apart)
VOWELS = {'a': (800, 1250, 2600), 'o': (500, 900, 2500), 'e': (520, 1350, 2550), 'i': (300, 2300, 3000),
          'u': (330, 800, 2450), 'v': (300, 1900, 2450), 'r': (380, 1450, 2600), 'n': (250, 1800, 2700),
          'N': (250, 1050, 2000)}
# initial consonant -> (noise low Hz, noise high Hz, noise seconds, level), None: a voiced murmur
# (MURMURS). The band is the place (lips low, velum mid, retroflex, palate, teeth high), the length
# the manner: stop 12-15 ms, affricate 35, aspirated stop 60, aspirated affricate 90, fricative 140;
# each pair that shares a band differs by 25 ms or more (3 mel frames), so every initial is heard.
INITIALS = {'b': (300, 1500, 0.012, 0.3), 'd': (3500, 5500, 0.012, 0.3), 'g': (1200, 2800, 0.015, 0.3),
            'p': (300, 1500, 0.06, 0.35), 't': (3500, 5500, 0.06, 0.35), 'k': (1200, 2800, 0.06, 0.35),
            'f': (1000, 7800, 0.14, 0.15), 'h': (500, 2000, 0.14, 0.25), 's': (5500, 7800, 0.14, 0.45),
            'x': (2800, 7000, 0.14, 0.45), 'sh': (1800, 4000, 0.14, 0.45), 'z': (5500, 7800, 0.035, 0.4),
            'j': (2800, 7000, 0.035, 0.4), 'zh': (1800, 4000, 0.035, 0.4), 'c': (5500, 7800, 0.09, 0.45),
            'q': (2800, 7000, 0.09, 0.45), 'ch': (1800, 4000, 0.09, 0.45),
            'm': None, 'n': None, 'l': None, 'r': None}
# nasal and liquid initials: 60 ms of a quiet voiced murmur with formants of its own, then the vowel
MURMURS = {'m': (250, 900, 2200), 'n': (250, 1700, 2600), 'l': (380, 1300, 3000), 'r': (320, 1250, 1700)}
NEUTRAL_LEVEL = 0.5  # the neutral tone (5) is sung flat as tone 1 is, but light


def split_syllable(token):
    """'zhuang1' -> ('zh', 'uang', 1); '<en>' and unknowns sing as a plain 'a'."""
    if not token[-1:].isdigit():
        return '', 'a', 5
    body, tone = token[:-1], int(token[-1])
    for initial in sorted(INITIALS, key=len, reverse=True):
        if body.startswith(initial) and len(body) > len(initial):
            return initial, body[len(initial):], tone
    if body.startswith('yu'):  # yu, yue, yuan, yun: the final starts with ü
        return '', 'v' + body[2:], tone
    if body[0] in 'yw':  # ya -> ia, yi -> i, wa -> ua, wu -> u
        return '', body[1:] if body[1:2] in ('i', 'u') else ('i' if body[0] == 'y' else 'u') + body[1:], tone
    return '', body, tone


def vowel_path(initial, final):
    """The formant targets a final glides through: 'iao' -> i, a, u; 'ang' -> a, N; 'an' -> a, n."""
    final = final.replace('ng', 'N').replace('ao', 'au').replace('iu', 'iou').replace('ui', 'uei')
    if initial in ('z', 'c', 's', 'zh', 'ch', 'sh', 'r') and final == 'i':
        return [VOWELS['r']]
    if initial in ('j', 'q', 'x') and final.startswith('u'):
        final = 'v' + final[1:]  # ju = jü
    path = [VOWELS[ch] for ch in final if ch in VOWELS]
    return path or [VOWELS['a']]


def bandpass_noise(rng, n, sr, low, high):
    spectrum = np.fft.rfft(rng.standard_normal(n))
    hz = np.fft.rfftfreq(n, 1 / sr)
    spectrum[(hz < low) | (hz > high)] = 0
    noise = np.fft.irfft(spectrum, n)
    return noise / (np.abs(noise).max() + 1e-9)


def sing(token, midi, seconds, sr, style, rng, level):
    """One syllable as a waveform: onset noise (by initial), then a formant-shaped vowel."""
    initial, final, tone = split_syllable(token)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    onset, murmur = INITIALS.get(initial), MURMURS.get(initial)
    vowel_start = 0 if onset is None else min(int(onset[2] * sr), n // 3)  # the voice starts after the noise
    glide_start = min(int(0.06 * sr), n // 4) if murmur else vowel_start  # the vowel's formants, after any murmur
    # pitch: the melody note, bent by the tone's contour, with vibrato after the attack
    bend = {1: 0 * t, 2: 1.0 * t / seconds, 3: -0.8 * np.sin(np.pi * t / seconds), 4: -1.2 * t / seconds, 5: 0 * t}[tone]
    f0 = 440.0 * 2 ** ((midi + bend - 69) / 12) * (1 + style['vibrato'] * np.sin(2 * np.pi * 5.5 * t) * (t > 0.15))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    # formants glide through the final's vowels
    path = np.array(vowel_path(initial, final), dtype=float)  # (V, 3)
    progress = np.clip((t - t[glide_start]) / max(seconds * 0.8, 1e-3), 0, 1) * (len(path) - 1)
    formants = np.stack([np.interp(progress, np.arange(len(path)), path[:, j]) for j in range(3)])  # (3, n)
    if murmur:
        formants[:, :glide_start] = np.array(murmur, dtype=float)[:, None]
    n_harmonics = int((sr / 2 - 200) / f0.max())
    k = np.arange(1, n_harmonics + 1)[:, None]  # (K, 1)
    hz = k * f0  # (K, n)
    envelope = (1.0 / (1 + ((hz - formants[0]) / 90) ** 2) + 0.7 / (1 + ((hz - formants[1]) / 120) ** 2)
                + 0.4 / (1 + ((hz - formants[2]) / 180) ** 2) + style['singer'] * 0.5 / (1 + ((hz - 2900) / 350) ** 2))
    voice = (np.sin(k * phase) * envelope / k ** style['tilt']).sum(0)
    if murmur:  # quiet, then the vowel opens
        voice *= np.where(np.arange(n) < glide_start, 0.3, 1.0)
    if final.endswith(('n', 'ng')):  # a nasal coda closes the mouth: half as loud once the glide reaches it
        voice *= 1 - 0.5 * np.clip(progress - (len(path) - 2), 0, 1)
    attack = np.clip((t - t[vowel_start]) / 0.02, 0, 1) * (t >= t[vowel_start])
    release = np.clip((seconds - t) / 0.05, 0, 1)
    voice *= attack * release
    voice /= np.abs(voice).max() + 1e-9
    if onset is not None:
        low, high, noise_seconds, noise_level = onset
        m = min(int(noise_seconds * sr) + int(0.01 * sr), n)
        burst = bandpass_noise(rng, m, sr, low, min(high, sr / 2 - 100)) * np.hanning(2 * m)[m // 2:m // 2 + m] * noise_level
        voice[:m] += burst
    return voice * level * (NEUTRAL_LEVEL if tone == 5 else 1)


def tone_wave(freqs, amps, decay, n, sr, distort=0.0):
    """A sum of harmonic partials with an exponential decay; `distort` soft-clips it."""
    t = np.arange(n) / sr
    wave = sum(a * np.sin(2 * np.pi * f * t) for f, a in zip(freqs, amps) if f < BACKING_MAX_HZ)
    wave = wave * np.exp(-t * decay) * np.clip(t / 0.005, 0, 1) * np.clip((n / sr - t) / 0.02, 0, 1)
    return np.tanh(distort * wave) / np.tanh(distort) if distort else wave


def midi_hz(midi):
    return 440.0 * 2 ** ((np.asarray(midi) - 69) / 12)


def backing(style, bars, chords, seconds, sr, rng):
    """Chords, bass and drums for the whole song, low-passed at BACKING_MAX_HZ."""
    beat = 60.0 / style['bpm']
    out = np.zeros(int(max(seconds, bars * 4 * beat) * sr) + sr)

    def put(start_seconds, wave):
        i = int(start_seconds * sr)
        m = min(len(wave), len(out) - i)
        out[i:i + m] += wave[:m]

    for bar in range(bars):
        t0 = bar * 4 * beat
        root = chords[bar % len(chords)]
        notes = [root, root + (3 if (root - chords[0]) % 12 in (9, 2, 4) else 4), root + 7]
        instrument = style['instrument']
        if instrument == 'piano':
            for half in range(2):
                for m in notes:
                    f = midi_hz(m)
                    put(t0 + half * 2 * beat, 0.12 * tone_wave([f, 2 * f, 3 * f], [1, 0.4, 0.2], 2.5, int(2 * beat * sr), sr))
        elif instrument == 'guitar':
            for b in range(8):
                f = midi_hz(notes[b % 3] + 12 * (b % 2))
                put(t0 + b * beat / 2, 0.10 * tone_wave([f, 2 * f, 3 * f, 4 * f], [1, 0.6, 0.3, 0.2], 7, int(beat * sr), sr))
        elif instrument == 'pad':
            for m in notes:
                f = midi_hz(m + 12)
                put(t0, 0.07 * tone_wave([f, 2 * f, 3 * f], [1, 0.5, 0.3], 0.2, int(4 * beat * sr), sr))
        else:  # distorted power chords in eighths
            for b in range(8):
                f = midi_hz(root)
                put(t0 + b * beat / 2, 0.10 * tone_wave([f, 1.5 * f, 2 * f], [1, 0.8, 0.5], 4, int(beat / 2 * sr), sr, distort=3))
        for b in range(4):  # bass on every beat
            put(t0 + b * beat, 0.18 * tone_wave([midi_hz(root - 24), midi_hz(root - 12)], [1, 0.5], 3, int(beat * sr), sr))
        for step in range(16):
            when, n = t0 + step * beat / 4, int(0.25 * sr)
            tt = np.arange(n) / sr
            if step in style['kick']:
                put(when, 0.5 * np.sin(2 * np.pi * np.cumsum(50 + 100 * np.exp(-tt * 30)) / sr) * np.exp(-tt * 12))
            if step in style['snare']:
                put(when, 0.25 * (rng.standard_normal(n) * 0.6 + np.sin(2 * np.pi * 190 * tt)) * np.exp(-tt * 20))
            if step in style['hat']:
                put(when, 0.06 * rng.standard_normal(n) * np.exp(-tt * 60))
    spectrum = np.fft.rfft(out)
    spectrum[np.fft.rfftfreq(len(out), 1 / sr) > BACKING_MAX_HZ] = 0  # the promise: nothing above
    return np.fft.irfft(spectrum, len(out))


def song_form(rng, beat, target_seconds):
    """Sections [(role, syllables of each line) or (role, bars)] of at most target_seconds: intro, verse,
    chorus, verse, chorus, bridge, chorus, outro, and for a whole song of a few minutes instrumental
    breaks, a third verse and a last chorus sung twice; trimmed step by step, the whole song's parts
    first, until the song fits."""
    n_chars = lambda: int(rng.integers(5, 10))
    verse1, verse2, verse3 = ([n_chars() for _ in range(8)] for _ in range(3))
    chorus, bridge = [n_chars() for _ in range(6)], [n_chars() for _ in range(4)]
    form = dict(intro=4, verse1=8, chorus=6, break1=4, verse2=8, bridge=4, break2=8, verse3=8, last=2, outro=4)

    def sections(form):
        out = [('intro', form['intro']), ('verse', verse1[:form['verse1']]), ('chorus', chorus[:form['chorus']])]
        if form['break1']:
            out += [('inst', form['break1'])]
        if form['verse2']:
            out += [('verse', verse2[:form['verse2']]), ('chorus', chorus[:form['chorus']])]
        out += [('bridge', bridge[:form['bridge']])]
        if form['break2']:
            out += [('inst', form['break2'])]
        if form['verse3']:
            out += [('verse', verse3[:form['verse3']])]
        last = form['last'] or (0 if form['verse2'] else 1)  # a short song with one verse still ends on its chorus
        return out + [('chorus', chorus[:form['chorus']])] * last + [('outro', form['outro'])]

    def seconds(form):
        bars = sum(n for role, n in sections(form) if role in ('intro', 'inst', 'outro'))
        lines = [n for role, content in sections(form) if role not in ('intro', 'inst', 'outro') for n in content]
        return (bars * 4 + sum(0.5 * n + 1.0 + 2.0 for n in lines)) * beat

    steps = [('verse3', 4), ('break2', 4), ('verse3', 0), ('last', 1), ('verse1', 6), ('verse2', 6), ('break2', 0),
             ('intro', 2), ('outro', 2), ('bridge', 2), ('chorus', 4), ('verse1', 4), ('verse2', 4), ('break1', 0),
             # the short song's form is reached; then
             ('verse2', 2), ('chorus', 2), ('verse1', 2), ('bridge', 1), ('last', 0), ('verse2', 0),
             ('intro', 1), ('outro', 1), ('verse1', 1), ('chorus', 1)]
    for key, value in steps:
        if seconds(form) <= target_seconds:
            break
        form[key] = value
    return sections(form)


def make_song(index, seed, sample_rate, min_seconds, max_seconds, held_out=frozenset(), lines=()):
    """Render song `index` -> (waveform, lyrics.txt text, style text). Deterministic. No line sings a
    syllable of held_out (a set). With lines (texts), the song sings them in order, again from the
    first when they run out, in place of drawn ones."""
    rng = np.random.default_rng([seed, index])
    name = sorted(STYLES)[index % len(STYLES)]
    style = STYLES[name]
    beat = 60.0 / style['bpm']
    target_seconds = rng.uniform(min_seconds, max_seconds)
    sections = song_form(rng, beat, target_seconds)
    key = int(rng.integers(0, 12))
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14])
    chords = [48 + key + c for c in (0, 7, 9, 5)]  # I V vi IV
    text_by_length, melody_by_role = {}, {}

    def words(role, i, n):  # a chorus repeats its words; other sections get fresh ones
        k = (role, i, n) if role == 'chorus' else (role, i, n, len(text_by_length))
        if k not in text_by_length:
            text_by_length[k] = lines[len(text_by_length) % len(lines)] if lines else draw_line(rng, n, held_out)
        return text_by_length[k]

    def melody(role, i, n):  # verses share a melody, choruses repeat theirs
        k = (role, i, n)
        if k not in melody_by_role:
            steps = np.clip(np.cumsum(rng.integers(-2, 3, n)) + int(rng.integers(1, 4)), 0, len(scale) - 1)
            melody_by_role[k] = scale[steps]
        return melody_by_role[k]

    notes, lrc = [], ['[ti:synthetic song %03d]' % index, '[ar:synth.py]']
    clock = 0.0
    for role, content in sections:
        lrc.append(f'[{role}]')
        if role in ('intro', 'inst'):
            clock += content * 4 * beat
            continue
        if role == 'outro':  # at least `content` bars, more to reach the target (8 at most), never past the maximum
            bars = int(np.clip(np.ceil((target_seconds - clock) / (4 * beat)), content, 8))
            clock += max(1, min(bars, int((max_seconds - clock) / (4 * beat)))) * 4 * beat
            continue
        lift, level = (4, 1.0) if role == 'chorus' else (0, 0.6)
        for i, n in enumerate(content):
            line = words(role, i, n)
            tokens = tokenize(line)
            lrc.append('[%02d:%05.2f]%s' % (clock // 60, clock % 60, line))
            for j, (token, degree) in enumerate(zip(tokens, melody(role, i, len(tokens)))):
                beats = 1.5 if j == len(tokens) - 1 else 0.5  # hold the last syllable
                notes.append((clock, token, style['voice_midi'] + key + degree + lift, beats * beat, level))
                clock += beats * beat
            rest = 0.5 if i % 2 == 0 and i + 1 < len(content) else float(rng.integers(2, 5))
            if rest >= 1:  # a phrase ends: stamp the silence
                lrc.append('[%02d:%05.2f]' % (clock // 60, clock % 60))
            clock += rest * beat
    seconds = clock
    wav = backing(style, int(np.ceil(seconds / (4 * beat))), chords, seconds, sample_rate, rng)
    voice = np.zeros_like(wav)
    for start, token, midi, length, level in notes:
        i = int(round(start * sample_rate))
        note = sing(token, midi, length, sample_rate, style, rng, level)
        voice[i:i + len(note)] += note
    wav = (wav + 0.5 * voice)[:int(seconds * sample_rate)]
    wav = 0.9 * wav / np.abs(wav).max()
    return wav.astype(np.float32), '\n'.join(lrc) + '\n', style['text']


def song_range(index, seed, min_seconds, max_seconds, long_share, long_min_seconds, long_max_seconds):
    """The length range of song `index`: a whole song's for long_share of them, drawn by index."""
    if np.random.default_rng([seed, index, 1]).random() < long_share:
        return long_min_seconds, long_max_seconds
    return min_seconds, max_seconds


def write_song(args):
    """Make and write one song -> (seconds, Counter of the syllables its lyrics.txt sings, as prepare.py reads them)."""
    index, out_dir, seed, sample_rate, seconds_range, held_out, lines = args
    wav, lrc, style_text = make_song(index, seed, sample_rate, *seconds_range, held_out=held_out, lines=lines)
    folder = os.path.join(out_dir, 'song_%03d' % index)
    os.makedirs(folder, exist_ok=True)
    sf.write(os.path.join(folder, 'audio.wav'), wav, sample_rate, subtype='PCM_16')
    with open(os.path.join(folder, 'lyrics.txt'), 'w', encoding='utf-8') as f:
        f.write(lrc)
    with open(os.path.join(folder, 'style.txt'), 'w', encoding='utf-8') as f:
        f.write(style_text + '\n')
    return len(wav) / sample_rate, Counter(t for line in parse_lyrics(lrc)['lines'] for t in line['tokens'])


def coverage(counts, held_out):
    """One line on how much of the language a corpus sings, from its syllable counts."""
    common = common_syllables()
    sung = np.array([counts[s] for s in common if counts[s]])
    return (f"sings {len(sung)} of the {len(common)} tonal syllables of the 3,755 common characters "
            f"({len(sung) / len(common):.1%}), each at least {sung.min()} times (median {int(np.median(sung))}); "
            f"{(sung >= 20).sum()} of them ({(sung >= 20).sum() / len(common):.1%}) at least 20 times; "
            f"{len(held_out)} held out (sung {sum(counts[s] for s in held_out)} times), "
            f"{len(common) - len(spellers())} with no speller; {len(counts)} syllables in all")


def main(out_dir, n_songs, seed, sample_rate, min_seconds, max_seconds, num_workers, long_share=0.0,
         long_min_seconds=150.0, long_max_seconds=240.0, held_out='', lyrics_file=''):
    held_out = frozenset(held_out.split())
    try:
        lines = tuple(line['text'] for line in parse_lyrics(read_lyrics(lyrics_file))['lines']) if lyrics_file else ()
    except (OSError, ValueError) as e:
        raise SystemExit(f"cannot read lyrics_file {lyrics_file}: {e}") from None
    if lyrics_file and not lines:
        raise SystemExit(f"lyrics_file {lyrics_file} has no lyric lines")
    unknown = held_out - set(common_syllables())
    if unknown:
        raise SystemExit(f"held_out names {' '.join(sorted(unknown))}, not tonal syllables of the common characters "
                         f"(pinyin with a tone digit 1-5, u-umlaut as v: 'lv4')")
    stale = [name for name in (os.listdir(out_dir) if os.path.isdir(out_dir) else [])
             if re.fullmatch(r'song_\d{3,}', name) and int(name[5:]) >= n_songs]
    for name in stale:  # an earlier run's with more songs: they would stay in the corpus prepare.py reads
        shutil.rmtree(os.path.join(out_dir, name))
    if stale:
        print(f"removed {len(stale)} songs of an earlier run with more than n_songs={n_songs} from {out_dir}")
    jobs = [(i, out_dir, seed, sample_rate, song_range(i, seed, min_seconds, max_seconds, long_share, long_min_seconds,
                                                       long_max_seconds), held_out, lines) for i in range(n_songs)]
    if num_workers > 1:
        with Pool(num_workers) as pool:
            results = list(tqdm(pool.imap(write_song, jobs), total=n_songs, desc='synth'))
    else:
        results = [write_song(job) for job in tqdm(jobs, desc='synth')]
    seconds = np.array([r[0] for r in results])
    print(f"wrote {n_songs} songs, {seconds.sum() / 60:.1f} minutes of audio ({(seconds > 120).sum()} over two minutes, "
          f"the longest {seconds.max():.0f} s), to {out_dir}")
    print(coverage(sum((r[1] for r in results), Counter()), held_out))


if __name__ == '__main__':
    config = configure(globals())
    main(**{k: config[k] for k in ('out_dir', 'n_songs', 'seed', 'sample_rate', 'min_seconds', 'max_seconds', 'num_workers',
                                   'long_share', 'long_min_seconds', 'long_max_seconds', 'held_out', 'lyrics_file')})
