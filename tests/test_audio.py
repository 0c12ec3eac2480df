import math

import numpy as np
import pytest
import torch

import audio
import synth

SR, N_FFT, HOP, N_MELS = 16000, 1024, 128, 128


@pytest.fixture(scope='module')
def clip():
    wav, _, _ = synth.make_song(1, 11, SR, 12.0, 14.0)
    return torch.from_numpy(wav[2 * SR:6 * SR].copy())  # 4 s with voice and backing


def test_mel_matches_a_plain_stft(clip):
    mel = audio.mel_spectrogram(clip, SR, N_FFT, HOP, N_MELS)
    assert mel.shape == (len(clip) // HOP + 1, N_MELS) and mel.dtype == torch.float32
    plain = torch.log1p(audio.mel_filterbank(SR, N_FFT, N_MELS) @ audio.stft_magnitude(clip, N_FFT, HOP)).T
    assert torch.allclose(mel, plain, atol=1e-4)
    long = torch.cat([clip] * 40)  # several chunks
    assert torch.allclose(audio.mel_spectrogram(long, SR, N_FFT, HOP, N_MELS)[:len(mel) - 4], mel[:-4], atol=1e-4)


def test_filterbank_matches_librosa():
    librosa = pytest.importorskip('librosa')
    for sr, n_fft, n_mels in [(48000, 4096, 256), (SR, N_FFT, N_MELS)]:
        ours = audio.mel_filterbank(sr, n_fft, n_mels).numpy()
        assert np.abs(ours - librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)).max() < 1e-6


def test_mel_to_magnitude_beats_pseudo_inverse(clip):
    true = audio.stft_magnitude(clip, N_FFT, HOP)
    mel = audio.mel_spectrogram(clip, SR, N_FFT, HOP, N_MELS)
    mag = audio.mel_to_magnitude(mel, SR, N_FFT, N_MELS)
    assert mag.shape == true.shape and (mag >= 0).all()
    error = torch.linalg.norm(mag - true) / torch.linalg.norm(true)
    pinv = torch.linalg.pinv(audio.mel_filterbank(SR, N_FFT, N_MELS)) @ torch.expm1(mel).T
    pinv_error = torch.linalg.norm(pinv.clamp(min=0) - true) / torch.linalg.norm(true)
    assert error < 0.9 * pinv_error and error < 0.4
    batched = audio.mel_to_magnitude(torch.stack([mel, mel]), SR, N_FFT, N_MELS)
    assert batched.shape == (2, *true.shape) and torch.allclose(batched[1], mag, atol=1e-4)


def test_griffin_lim_quality_bound(clip):
    true = audio.stft_magnitude(clip, N_FFT, HOP)

    def convergence(n_iter, init, seed=0):
        return audio.spectral_convergence(true, audio.griffin_lim(true, N_FFT, HOP, n_iter, init=init, seed=seed), N_FFT, HOP)
    assert convergence(0, 'random') > 0.3  # random phase is far off
    assert convergence(64, 'random') < 0.08  # fast Griffin-Lim from the true magnitude gets close in 64 iterations
    assert convergence(64, 'peaks') < min(convergence(64, 'random', seed) for seed in range(3))


def test_peak_phase_rebuilds_steady_tones():
    # two sinusoids between bins: the phase of the peaks alone, no iteration, nearly rebuilds them
    t = torch.arange(2 * SR) / SR
    tones = 0.5 * torch.sin(2 * math.pi * 441.3 * t) + 0.3 * torch.sin(2 * math.pi * 1234.5 * t + 1.0)
    true = audio.stft_magnitude(tones, N_FFT, HOP)
    peaks = audio.griffin_lim(true, N_FFT, HOP, n_iter=0, chunk_frames=37)  # the phase carried across chunks
    assert audio.spectral_convergence(true, peaks, N_FFT, HOP) < 0.05
    random = audio.griffin_lim(true, N_FFT, HOP, n_iter=0, init='random')
    assert audio.spectral_convergence(true, random, N_FFT, HOP) > 0.5
    with pytest.raises(ValueError, match='init'):
        audio.griffin_lim(true, N_FFT, HOP, n_iter=0, init='zeros')


def test_griffin_lim_chunks_batches_and_seed(clip):
    true = audio.stft_magnitude(clip, N_FFT, HOP)
    whole = audio.griffin_lim(true, N_FFT, HOP, n_iter=8, chunk_frames=10 ** 6)
    chunked = audio.griffin_lim(true, N_FFT, HOP, n_iter=8, chunk_frames=37)  # ragged last chunk
    assert whole.shape == (len(clip) // HOP * HOP,)
    # float32 rounding differs by chunk and 8 iterations with momentum 0.99 grow it: 4e-4 at most on a peak of 1
    assert torch.allclose(whole, chunked, atol=1e-3)
    assert torch.equal(chunked, audio.griffin_lim(true, N_FFT, HOP, n_iter=8, chunk_frames=37))
    batch = audio.griffin_lim(torch.stack([true, 0.5 * true]), N_FFT, HOP, n_iter=8)
    assert batch.shape == (2, len(whole)) and torch.isfinite(batch).all()
