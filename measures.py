"""
Measures on songs that eval.py, sample.py and each model's `evaluate` share: where the voice
sings and how sharply, the tempo, the pitch of a line, whether a whole song holds together and
keeps its tunes, the distance between two sets of latents, and the picture of a song under its
plan. Everything here reads log-mel spectrograms (frames, n_mels) as prepare.py caches them.
"""
import os

import matplotlib
matplotlib.use('Agg')  # files only, no window
import matplotlib.pyplot as plt
import numpy as np
import scipy.linalg
import torch

import audio
from audio import VOICE_BAND_HZ
from lyrics import END, KIND, LINE, N_TOKENS, START


def song_mels(data_dir, meta, split):
    """The cached log-mels of a split's songs: (name, (frames, n_mels) float32) in turn."""
    for name in meta['split'][split]:
        yield name, np.load(os.path.join(data_dir, 'songs', name, 'mel.npy')).astype(np.float32)


def voice_band(settings):
    """Mel bins that lie above VOICE_BAND_HZ: there only the voice sings (synth.py keeps its backing below)."""
    bank = audio.mel_filterbank(settings['sample_rate'], settings['n_fft'], settings['n_mels'])  # (M, F)
    center_hz = bank.argmax(1).float() * settings['sample_rate'] / settings['n_fft']
    return (center_hz >= VOICE_BAND_HZ).numpy()


def sung_frames(table, n_frames):
    """(n_frames,) bool: the frames that a block table puts inside lyric lines."""
    sung = np.zeros(n_frames, bool)
    for row in table[table[:, KIND] == LINE]:
        sung[row[START]:row[END]] = True
    return sung


def voiced(energy):
    """Frames where a song's voice-band energy (frames,) is on: Otsu's split of its log energy
    into two classes. Per song, because generated songs are quieter than real ones."""
    level = np.log(energy + 1e-5)
    edges = np.linspace(level.min(), level.max(), 65)
    counts = np.histogram(level, edges)[0].astype(np.float64)
    centers = (edges[1:] + edges[:-1]) / 2
    w = np.cumsum(counts)[:-1]  # frames at or below each candidate split
    mean_low = np.cumsum(counts * centers)[:-1] / np.maximum(w, 1)
    mean_high = (np.sum(counts * centers) - np.cumsum(counts * centers)[:-1]) / np.maximum(len(level) - w, 1)
    between = w * (len(level) - w) * (mean_low - mean_high) ** 2
    return level > edges[1:-1][np.argmax(between)]


def spectral_flatness(mel, bins):
    """(frames, n_mels) log-mels -> (frames,) spectral flatness of the linear magnitudes in the
    given mel bins: geometric over arithmetic mean, 1 for flat noise, near 0 for a few sharp lines."""
    magnitude = np.expm1(np.clip(mel[:, bins], 0, None)) + 1e-4
    return np.exp(np.log(magnitude).mean(1)) / magnitude.mean(1)


def frechet_distance(a, b):
    """Frechet distance between Gaussians fitted to two sets of vectors (n, d) and (m, d), as in FID / FAD."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():  # a singular product (few samples): offset the diagonals, as FID does
        offset = 1e-6 * np.eye(len(cov_a))
        covmean = scipy.linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


def tempo_bpm(mel, frames_per_second, low=60.0, high=200.0):
    """Tempo from the autocorrelation of the onset envelope (positive spectral flux), searched
    between low and high beats per minute, weighted towards 120 (an octave away weighs 0.6), as
    beat trackers do: a pattern repeats at two and four beats too."""
    flux = np.clip(np.diff(mel, axis=0), 0, None).sum(1)
    flux = flux - flux.mean()
    n = len(flux)
    spectrum = np.fft.rfft(flux, 2 * n)
    autocorrelation = np.fft.irfft(spectrum * np.conj(spectrum))[:n]
    lags = np.arange(int(60 * frames_per_second / high), int(60 * frames_per_second / low) + 1)
    prior = np.exp(-0.5 * np.log2(60 * frames_per_second / lags / 120.0) ** 2)
    return 60 * frames_per_second / lags[np.argmax(autocorrelation[lags] * prior)]


def whole_song_figures(mel, n_frames, frames_per_second, band):
    """Does a song hold together to its end? Over its first n_frames (the plan's length), split in
    thirds: the drums and backing (positive spectral flux below the voice band) in the last third
    against the first; the tempo of each third; and the longest silence in seconds (frames whose
    mean log-mel is under a tenth of the song's median)."""
    mel = mel[:n_frames]
    flux = np.clip(np.diff(mel[:, ~band], axis=0), 0, None).sum(1)
    thirds = np.array_split(np.arange(len(mel)), 3)
    tempo = [tempo_bpm(mel[third], frames_per_second) for third in thirds]
    loudness = mel.mean(1)
    quiet = np.concatenate([[0], (loudness < 0.1 * np.median(loudness)).astype(int), [0]])
    runs = np.diff(np.flatnonzero(np.diff(quiet)))[::2]  # lengths of the runs of quiet frames
    return dict(drums_last_over_first=float(flux[thirds[2][:-1]].mean() / max(flux[thirds[0]].mean(), 1e-9)),
                tempo_by_third=[round(float(t), 1) for t in tempo], tempo_spread=float(max(tempo) / min(tempo) - 1),
                longest_silence=float(runs.max() / frames_per_second) if len(runs) else 0.0)


def pitch_track(mel, settings, low_midi=45.0, high_midi=80.0, lowest_hz=VOICE_BAND_HZ, highest_hz=4000.0):
    """The sung pitch (frames,) in MIDI semitones, from a log-mel spectrogram (frames, n_mels): for
    each candidate pitch (a quarter-tone grid), the log-mel summed at its harmonics inside the
    voice band less the sum halfway between them; the best candidate wins. Only the voice sings in
    that band; a sum, not a mean, rules out the pitch's multiples (fewer harmonics), the troughs
    its octave below. Harmonics 150 Hz apart are 2-3 mel bins apart there, so this is a coarse
    tracker, for comparing one line's tune with another's."""
    centres = audio.mel_frequencies(settings['sample_rate'], settings['n_mels']).double().numpy()
    candidates = np.arange(low_midi, high_midi, 0.25)
    comb = np.zeros((len(candidates), len(centres)))
    for i, f0 in enumerate(440.0 * 2 ** ((candidates - 69) / 12)):
        for sign, shift in ((1.0, 0.0), (-1.0, 0.5)):
            hz = (np.arange(np.ceil(lowest_hz / f0 - shift), highest_hz / f0 - shift) + shift) * f0  # harmonics (or between)
            weights = np.maximum(0, 1 - np.abs(np.interp(hz, centres, np.arange(len(centres)))[:, None] - np.arange(len(centres))))
            comb[i] += sign * weights.sum(0)  # (n_mels,): each harmonic spread over the two nearest bins
    return candidates[np.argmax(mel @ comb.T, 1)]


def tune_memory(mel, table, tokens, settings, parts=8):
    """Is a line that comes back sung to the tune it had? Each lyric line's pitch contour (the
    median pitch of its voiced frames in each of `parts` equal parts of the line), then for every
    two lines of the song the median difference of their contours in semitones, folded onto one
    octave (a coarse tracker may jump an octave). -> (differences of the pairs with the same words,
    differences of the pairs with different words)."""
    pitch, sung = pitch_track(mel, settings), voiced(mel[:, voice_band(settings)].mean(1))
    contours, words = [], []
    for row, line_tokens in zip(table, tokens):
        frames = np.arange(row[START], min(row[END], len(mel)))
        if row[KIND] != LINE or len(frames) < parts:
            continue
        contours.append([np.median(pitch[f[sung[f]]]) if sung[f].any() else np.nan for f in np.array_split(frames, parts)])
        words.append(tuple(line_tokens[:row[N_TOKENS]]))
    same, different = [], []
    for i in range(len(contours)):
        for j in range(i):
            d = np.abs(np.array(contours[i]) - np.array(contours[j])) % 12
            d = np.minimum(d, 12 - d)[np.isfinite(d)]
            if len(d):
                (same if words[i] == words[j] else different).append(float(np.median(d)))
    return same, different


def plot_song(path, panels, blocks, settings, max_seconds=None):
    """Spectrogram figure(s) of a song under its plan: panels is a list of (title, log-mels
    (frames, n_mels)), drawn one above the other with time in seconds along the bottom, frequency
    on the side, each planned lyric line shaded and labelled with its pinyin, gaps left clear."""
    fps = audio.frame_rate(settings)
    mel_hz = audio.mel_frequencies(settings['sample_rate'], settings['n_mels'])
    fig, axes = plt.subplots(len(panels), 1, figsize=(14, 3.2 * len(panels)), sharex=True, squeeze=False)
    for ax, (title, mel) in zip(axes[:, 0], panels):
        mel = mel.float().cpu().numpy() if torch.is_tensor(mel) else mel
        seconds = len(mel) / fps if max_seconds is None else min(max_seconds, len(mel) / fps)
        # mel bins are evenly spaced in mels, not Hz: label the bins with their centre frequencies
        shown = mel[:round(seconds * fps)].T
        ax.imshow(np.sqrt(np.clip(shown, 0, None)), origin='lower', aspect='auto', cmap='magma',  # sqrt: quiet parts show
                  extent=(0, seconds, 0, len(mel_hz)), interpolation='nearest', vmin=0,
                  vmax=max(np.sqrt(np.percentile(shown, 99.8)), 1e-3))
        ticks = [b for b in range(0, len(mel_hz), max(1, len(mel_hz) // 6))]
        ax.set_yticks(ticks, [f"{mel_hz[b] / 1000:.1f}" for b in ticks])
        ax.set_ylabel('kHz')
        ax.set_title(title, loc='left', fontsize=10)
        lines = [b for b in blocks[:-1] if b['kind'] == 'line' and b['start'] < seconds]
        for i, b in enumerate(lines):
            ax.axvspan(b['start'], b['start'] + b['seconds'], ymin=0.95, ymax=1.0, color='tab:cyan', alpha=0.9)
            ax.axvline(b['start'], color='white', lw=0.6, alpha=0.5)
            ax.text(b['start'] + 0.05, len(mel_hz) * (0.92 - 0.07 * (i % 2)), b.get('pinyin', ''), color='white',
                    fontsize=6, va='top', clip_on=True)  # every other line lower, so that labels do not overlap
    axes[-1, 0].set_xlabel('seconds')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
