"""
The audio maths that prepare.py and sample.py share, so that analysis and synthesis can never
disagree on the filterbank: log-mel spectrogram, mel -> linear magnitude, and fast Griffin-Lim.
Everything is torch and runs on whatever device its input lives on.

A mel here is log1p of the mel-weighted STFT *magnitude* (not power), frames first:
[frames, n_mels]. The filterbank is Slaney's (librosa's default), area-normalised.
"""
import functools
import math
import warnings

import torch

CHUNK_SAMPLES = 640 * 1024
VOICE_BAND_HZ = 1500.0  # the synthetic corpus's voice alone sings above this (synth.py keeps its backing below)


def frame_rate(settings):
    """Mel frames per second of a cache's settings (prepare.py's sample_rate and hop_length)."""
    return settings['sample_rate'] / settings['hop_length']


def _hz_to_mel(hz):
    # Slaney's scale: linear below 1 kHz, logarithmic above
    hz = torch.as_tensor(hz, dtype=torch.float64)
    log_part = 15.0 + torch.log(hz.clamp(min=1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return torch.where(hz >= 1000.0, log_part, hz / (200.0 / 3))


def _mel_to_hz(mel):
    lin_part = mel * (200.0 / 3)
    log_part = 1000.0 * torch.exp((math.log(6.4) / 27.0) * (mel - 15.0))
    return torch.where(mel >= 15.0, log_part, lin_part)


def _mel_edges_hz(sample_rate, n_mels):
    # n_mels + 2 points evenly spaced in mels from 0 Hz to Nyquist: each filter spans three of them
    return _mel_to_hz(torch.linspace(0, _hz_to_mel(sample_rate / 2).item(), n_mels + 2, dtype=torch.float64))


def mel_frequencies(sample_rate, n_mels):
    """(n_mels,) the centre frequency in Hz of each mel bin of mel_filterbank."""
    return _mel_edges_hz(sample_rate, n_mels)[1:-1].float()


@functools.lru_cache(maxsize=16)
def mel_filterbank(sample_rate, n_fft, n_mels, device='cpu'):
    """[n_mels, n_fft//2+1] triangular filters from 0 Hz to Nyquist, float32."""
    fft_hz = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges_hz = _mel_edges_hz(sample_rate, n_mels)
    lower, center, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (fft_hz - lower) / (center - lower)
    falling = (upper - fft_hz) / (upper - center)
    weights = torch.clamp(torch.minimum(rising, falling), min=0)
    weights *= 2.0 / (upper - lower)  # equal area per filter
    return weights.float().to(device)


@functools.lru_cache(maxsize=16)
def _window(n_fft, device):
    return torch.hann_window(n_fft, device=device)


def _chunk_frames(n_fft, n_frames, device):
    """Frames per FFT batch: all of them on a GPU; on a CPU about 640k samples, which keeps a
    batch and the element-wise work after it in cache (a whole-song batch is 3-5x slower)."""
    return n_frames if device.type == 'cuda' else max(1, CHUNK_SAMPLES // n_fft)


def stft_magnitude(wav, n_fft, hop_length):
    """[..., samples] -> [..., n_fft//2+1, frames] magnitude, frames = 1 + samples // hop_length."""
    spec = torch.stft(wav, n_fft, hop_length, window=_window(n_fft, wav.device), center=True,
                      pad_mode='constant', return_complex=True)
    return spec.abs()


def mel_spectrogram(wav, sample_rate, n_fft, hop_length, n_mels):
    """1-D float waveform -> log1p mel magnitude [frames, n_mels], frames = 1 + samples // hop_length.

    The same frames as torch.stft(center=True, pad_mode='constant'), taken in cache-sized chunks
    on the CPU (see griffin_lim); the filterbank is applied as the sparse matrix it is (about
    half the time of a dense matmul at 48 kHz).
    """
    wav = wav.float()
    frames = torch.nn.functional.pad(wav, (n_fft // 2, n_fft // 2)).unfold(0, n_fft, hop_length)  # (T, n_fft) view
    weights, _ = _sparse_filterbank(sample_rate, n_fft, n_mels, str(wav.device))  # (M, F), ~99% zeros
    window = _window(n_fft, wav.device)
    chunk = _chunk_frames(n_fft, len(frames), wav.device)
    mel = torch.empty(n_mels, len(frames), device=wav.device)
    for start in range(0, len(frames), chunk):
        parts = torch.view_as_real(torch.fft.rfft(frames[start:start + chunk] * window))
        magnitude = parts[..., 0].square().addcmul_(parts[..., 1], parts[..., 1]).sqrt_()  # faster than .abs()
        mel[:, start:start + chunk] = weights @ magnitude.T
    return mel.log1p_().T.contiguous()


@functools.lru_cache(maxsize=16)
def _sparse_filterbank(sample_rate, n_fft, n_mels, device):
    # W and W^T in CSR: every FFT bin lies under at most two filters, so W is ~99% zeros
    weights = mel_filterbank(sample_rate, n_fft, n_mels, device)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "sparse CSR support is in beta"
        return weights.to_sparse_csr(), weights.T.contiguous().to_sparse_csr()


def mel_to_magnitude(mel, sample_rate, n_fft, n_mels, n_iter=30):
    """log1p mel [..., frames, n_mels] -> linear magnitude [..., n_fft//2+1, frames].

    Non-negative least squares, min ||W s - m|| over s >= 0, for all frames at once, by
    multiplicative updates (Lee & Seung) started from W^T m, a smooth positive guess. More
    iterations lower the error slowly (bench.py --what=dsp shows 30 against librosa's NNLS).
    """
    w, w_t = _sparse_filterbank(sample_rate, n_fft, n_mels, str(mel.device))
    target = torch.expm1(mel.float()).clamp(min=0).reshape(-1, n_mels).T  # (M, N), N = all frames
    numerator = w_t @ target  # W^T m, (F, N)
    # scale the start per frame so that W s matches m in total
    magnitude = numerator * (target.sum(0) / (w @ numerator).sum(0).clamp(min=1e-12))
    for _ in range(n_iter):
        magnitude *= numerator / (w_t @ (w @ magnitude)).clamp(min=1e-12)
    return magnitude.T.reshape(*mel.shape[:-1], -1).transpose(-1, -2)  # (..., F, T)


def mel_to_wav(mel, sample_rate, n_fft, hop_length, n_mels, n_iter=64):
    """log1p mel [frames, n_mels] -> waveform: the magnitude by NNLS, then Griffin-Lim (what every
    generated song goes through)."""
    return griffin_lim(mel_to_magnitude(mel, sample_rate, n_fft, n_mels), n_fft, hop_length, n_iter)


def spectral_convergence(magnitude, wav, n_fft, hop_length):
    """||S - |STFT(wav)||| / ||S||: how well a waveform realises a target magnitude."""
    rebuilt = stft_magnitude(wav, n_fft, hop_length)[..., :magnitude.shape[-1]]
    return (torch.linalg.norm(magnitude - rebuilt) / torch.linalg.norm(magnitude)).item()


def griffin_lim(magnitude, n_fft, hop_length, n_iter=64, momentum=0.99, init='peaks', seed=0, chunk_frames=None):
    """Linear magnitude [..., n_fft//2+1, frames] -> waveform [..., (frames-1)*hop_length].

    Fast Griffin-Lim (Perraudin et al. 2013): plain Griffin-Lim plus a momentum step on the
    re-analysed spectrum. It starts from the phase of the spectral peaks (init='peaks', see
    peak_phase): at 64 iterations about a quarter lower in spectral convergence than a random
    start from a true STFT magnitude, a few percent from one rebuilt from a mel. init='random'
    starts from a random phase drawn from `seed`.
    The frames go through in chunks (_chunk_frames, or `chunk_frames`), and the song-sized
    buffers are made once: reallocating them every iteration costs as much as the FFTs.
    """
    device = magnitude.device
    batch_shape, (n_freq, n_frames) = magnitude.shape[:-2], magnitude.shape[-2:]
    mag = magnitude.reshape(-1, n_freq, n_frames).permute(2, 0, 1).float().contiguous()  # (T, B, F)
    batch = mag.shape[1]
    chunk = chunk_frames or _chunk_frames(n_fft, n_frames, device)
    length = (n_frames - 1) * hop_length
    padded = length + n_fft  # frames are centred: n_fft//2 zeros on each side
    window = _window(n_fft, device)
    alpha = momentum / (1 + momentum)
    wav = torch.zeros(batch, padded + n_fft, device=device)  # slack at the end for the last frames' overlap

    def overlap_add(frames, start):  # frames (n, B, n_fft) starting at frame `start`, windowed, into wav
        n = frames.shape[0]
        for j in range(0, n_fft, hop_length):  # sample j of frame t lands at (t * hop + j)
            width = min(hop_length, n_fft - j)
            target = wav[:, start * hop_length + j: (start + n) * hop_length + j].view(batch, n, hop_length)
            target[..., :width].addcmul_(frames[:, :, j:j + width].transpose(0, 1), window[j:j + width])

    # 1 / (overlap-added squared window), zero on the pads so that they stay silent
    overlap_add(window.expand(n_frames, 1, n_fft), 0)
    inv_wsum = torch.where(wav[0, :padded] > 1e-10, 1 / wav[0, :padded], 0.0)
    inv_wsum[:n_fft // 2] = 0
    inv_wsum[n_fft // 2 + length:] = 0

    def project(estimate, target):  # give each bin of `estimate` the magnitude `target`, in place
        parts = torch.view_as_real(estimate)
        scale = parts[..., 0].square().addcmul_(parts[..., 1], parts[..., 1])
        estimate.mul_(scale.clamp_(min=1e-16).rsqrt_().mul_(target))

    def synthesise():  # wav = least-squares inverse STFT of spec
        wav.zero_()
        for start in range(0, n_frames, chunk):
            overlap_add(torch.fft.irfft(spec[start:start + chunk], n=n_fft), start)
        wav[:, :padded].mul_(inv_wsum)

    if init == 'peaks':
        spec = torch.empty(mag.shape, dtype=torch.complex64, device=device)  # (T, B, F)
        phase = torch.zeros(mag.shape[1:], device=device)  # (B, F) carried from chunk to chunk
        for start in range(0, n_frames, chunk):
            part = mag[start:start + chunk]
            part_phase, phase = peak_phase(part, n_fft, hop_length, phase)
            spec[start:start + chunk] = torch.polar(part, part_phase)
    elif init == 'random':
        generator = torch.Generator(device=device).manual_seed(seed)
        spec = torch.randn(mag.shape, generator=generator, dtype=torch.complex64, device=device)  # (T, B, F)
        project(spec, mag)  # a Gaussian's phase is uniform: random phase, target magnitude
    else:
        raise ValueError(f"init={init!r}: choose 'peaks' or 'random'")
    previous = torch.zeros_like(spec)  # the last iteration's re-analysed spectrum, for the momentum
    for _ in range(n_iter):
        synthesise()
        for start in range(0, n_frames, chunk):
            n = min(chunk, n_frames - start)
            frames = wav[:, start * hop_length: (start + n - 1) * hop_length + n_fft].unfold(-1, n_fft, hop_length)
            rebuilt = torch.fft.rfft(frames.transpose(0, 1) * window)  # (n, B, F)
            estimate = spec[start:start + n]
            torch.add(rebuilt, previous[start:start + n], alpha=-alpha, out=estimate)  # step past the projection
            previous[start:start + n] = rebuilt
            project(estimate, mag[start:start + n])
    synthesise()
    return wav[:, n_fft // 2: n_fft // 2 + length].reshape(*batch_shape, length).clone()


def peak_phase(mag, n_fft, hop_length, phase):
    """A starting phase for Griffin-Lim from the magnitude alone, after single-pass spectrogram
    inversion (Beauregard et al. 2015): every bin is taken to be part of the sinusoid of its
    nearest spectral peak, whose frequency a parabola through the peak's log magnitudes refines
    to a fraction of a bin. Over a hop that sinusoid's phase advances by 2 pi hop f / n_fft; and
    a bin k away from the peak at f sees it through the window's main lobe, shifted by pi (f - k).
    mag (n, B, F) frames first; phase (B, F) the advance summed up to the frame before ->
    (phase of every frame (n, B, F), the summed advance for the next chunk)."""
    n_freq = mag.shape[-1]
    bins = torch.arange(n_freq, device=mag.device)
    log_mag = torch.log(mag + 1e-7)
    left, middle, right = log_mag[..., :-2], log_mag[..., 1:-1], log_mag[..., 2:]
    is_peak = torch.zeros_like(mag, dtype=torch.bool)
    is_peak[..., 1:-1] = (middle > left) & (middle >= right)
    offset = torch.zeros_like(mag)  # the parabola's vertex; its curvature is negative at a peak
    offset[..., 1:-1] = (0.5 * (left - right) / (left - 2 * middle + right).clamp(max=-1e-9)).clamp(-0.5, 0.5)
    below = torch.where(is_peak, bins, -1).cummax(-1).values  # the nearest peak at or below each bin
    above = torch.where(is_peak, bins, n_freq).flip(-1).cummin(-1).values.flip(-1)  # at or above
    nearest = torch.where((below >= 0) & ((above == n_freq) | (bins - below <= above - bins)), below, above)
    frequency = torch.gather(bins + offset, -1, nearest.clamp(max=n_freq - 1))  # (n, B, F) in bins
    frequency = torch.where(nearest < n_freq, frequency, bins.float())  # a frame without peaks
    # summed modulo 2 pi, chunk after chunk, so that float32 keeps its precision over a whole song
    advance = torch.remainder(2 * math.pi * hop_length / n_fft * frequency, 2 * math.pi)
    summed = torch.remainder(phase + advance.cumsum(0), 2 * math.pi)
    return summed + math.pi * (frequency - bins), summed[-1]
