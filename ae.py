"""
The mel autoencoder: a segment of log-mel frames (about one second) <-> a small real-valued
latent of `latent_channels x h x w`, no quantization. The prototype's size is 256 frames x 256
mels -> 4 x 32 x 32: h = frames / patch rows, w = n_mels / patch columns.

Each latent row codes `patch` consecutive frames: the frames are cut into patches (as a vision
transformer cuts an image), projected to `width` channels, and mixed along time by residual
1-D convolutions; the decoder mirrors it. On a CPU this is 10x faster than 2-D convolutions over
the mel image for the same reconstruction (docs/notes.md, "The autoencoder").

Segments join without seams because the decoder sees its neighbours: it decodes a segment's
latent with `context_rows` latent rows of the segment before and after it, then keeps the middle.
Outside the song is silence (log-mel 0). Latents are kept at about zero mean and unit spread
(`latent_weight`), and noise is added to them in training (`latent_noise`) so that the decoder
forgives the small errors of the Decoder stage that will predict them.

It works on log(mel + floor) of the cached log1p mels, standardised, and its loss is L1 + MSE
there (L1 alone learns the sparse harmonic lines far more slowly). On the log1p scale the voice
above 1.5 kHz lies around 0.01 and the backing below 1 kHz around 1: an error that is small there
is as loud as the formants that tell the vowels apart, and a faint floor in bins that are silent
in the song. A low floor weighs a quiet band's detail as an ear does, in decibels
(docs/notes.md, "The autoencoder"). An optional patch discriminator with feature matching
sharpens blurry mels (`gan_weight`, off at 0).

Training batches: random windows of three segments (before, this, after) from the cached mels.
"""
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from checkpoint import feed_tensor
from measures import song_mels, spectral_flatness, sung_frames, voice_band


@dataclass
class Config:
    segment_frames: int = 256  # from the data
    n_mels: int = 256  # from the data
    floor: float = 1e-3  # the autoencoder models log(mel + floor)
    mel_mean: float = 0.0  # from the data: log(mel + floor) is standardised with these
    mel_std: float = 1.0
    mel_max: float = 10.0  # from the data: the loudest log1p mel of the training songs; decoded mels never pass it
    latent_channels: int = 4
    patch: int = 8  # frames per latent row, and mels per latent column: 256 x 256 -> 32 x 32
    width: int = 512  # channels of the residual blocks
    n_res: int = 4  # residual blocks in the encoder, and in the decoder
    context_rows: int = 8  # latent rows of each neighbour the decoder sees
    latent_noise: float = 0.1  # std of the noise added to latents in training
    latent_weight: float = 0.1  # weight of the zero-mean, unit-spread penalty on latents
    gan_weight: float = 0.0  # adversarial + feature-matching loss; 0 = no discriminator


def data_args(meta, data):
    """Model arguments that come from the prepared cache (its training split), not from the config."""
    mels = data['mels'].cpu().numpy()
    frames = np.concatenate([mels[a:a + n:7] for a, n in zip(data['offsets'], data['lengths'])]).astype(np.float32)  # sparse: plenty
    features = np.log(frames.clip(min=0) + data['floor'])
    return dict(segment_frames=meta['settings']['segment_frames'], n_mels=meta['settings']['n_mels'],
                mel_mean=round(float(features.mean()), 6), mel_std=round(float(features.std()), 6),
                mel_max=round(float(mels.max()), 4))


class ResBlock(nn.Module):

    def __init__(self, channels):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, channels)
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(8, channels)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class Discriminator(nn.Module):
    """Patch discriminator over mel segments; returns its features, the last one the logits."""

    def __init__(self, width):
        super().__init__()
        chans = [1, width, 2 * width, 4 * width]
        self.layers = nn.ModuleList(nn.Conv2d(a, b, 4, stride=2, padding=1) for a, b in zip(chans, chans[1:]))
        self.logits = nn.Conv2d(chans[-1], 1, 3, padding=1)

    def forward(self, x):
        features = []
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2)
            features.append(x)
        return features + [self.logits(x)]


class Model(nn.Module):

    def __init__(self, config):
        super().__init__()
        assert config.segment_frames % config.patch == 0 and config.n_mels % config.patch == 0, \
            "segment_frames and n_mels must be divisible by patch"
        self.config = config
        C, h, w = config.latent_channels, config.segment_frames // config.patch, config.n_mels // config.patch
        self.latent_shape = (C, h, w)
        assert config.context_rows <= h
        patch_size = config.patch * config.n_mels
        self.encoder = nn.Sequential(nn.Conv1d(patch_size, config.width, 1),
                                     *[ResBlock(config.width) for _ in range(config.n_res)],
                                     nn.GroupNorm(8, config.width), nn.SiLU(), nn.Conv1d(config.width, C * w, 1))
        self.decoder = nn.Sequential(nn.Conv1d(C * w, config.width, 1),
                                     *[ResBlock(config.width) for _ in range(config.n_res)],
                                     nn.GroupNorm(8, config.width), nn.SiLU(), nn.Conv1d(config.width, patch_size, 1))
        self.discriminator = Discriminator(64) if config.gan_weight > 0 else None

    def features(self, mel):
        """log1p mels (float16 as cached, or float32) -> standardised log(mel + floor) in float32, what the
        autoencoder reads and writes."""
        return (torch.log(mel.float().clamp(min=0) + self.config.floor) - self.config.mel_mean) / self.config.mel_std

    def encode(self, mel):
        """(B, segment_frames, n_mels) log-mels -> (B, C, h, w) latents."""
        C, h, w = self.latent_shape
        x = self.features(mel).reshape(-1, h, self.config.patch * self.config.n_mels).transpose(1, 2)  # (B, patch * n_mels, h)
        z = self.encoder(x)  # (B, C * w, h)
        return z.view(-1, C, w, h).transpose(2, 3)

    def decode(self, before, latent, after):
        """Latents of a segment and its neighbours, each (B, C, h, w) -> (B, segment_frames, n_mels) log-mels."""
        x = self.decode_features(before, latent, after) * self.config.mel_std + self.config.mel_mean
        # exp makes a latent the Decoder got wrong a bin a thousand times too loud, which would
        # set the level of a whole WAV; no bin is louder than the loudest in the training songs
        return (torch.exp(x) - self.config.floor).clamp(0, self.config.mel_max)

    def decode_features(self, before, latent, after):
        """The same -> (B, segment_frames, n_mels) standardised features (features())."""
        c = self.config.context_rows
        z = torch.cat([before[:, :, before.shape[2] - c:], latent, after[:, :, :c]], dim=2)  # (B, C, h + 2c, w)
        z = z.transpose(2, 3).flatten(1, 2)  # (B, C * w, h + 2c)
        x = self.decoder(z)[:, :, c:c + self.latent_shape[1]]  # (B, patch * n_mels, h): the middle rows
        return x.transpose(1, 2).reshape(-1, self.config.segment_frames, self.config.n_mels)

    def forward(self, window):
        """(B, 3 * segment_frames, n_mels) mel windows -> loss on the middle segment. In eval mode,
        the reconstruction L1 alone (of the standardised features), so that validation losses compare."""
        B, F_ = window.shape[0], self.config.segment_frames
        z = self.encode(window.reshape(B * 3, F_, -1)).reshape(B, 3, *self.latent_shape)
        if self.training and self.config.latent_noise > 0:
            z_in = z + self.config.latent_noise * torch.randn_like(z)
        else:
            z_in = z
        target = self.features(window[:, F_:2 * F_])
        recon = self.decode_features(z_in[:, 0], z_in[:, 1], z_in[:, 2])
        err = recon - target
        if not self.training:
            return err.abs().mean()
        loss = err.abs().mean() + err.pow(2).mean()
        spread = z.transpose(0, 2).reshape(self.config.latent_channels, -1)  # (C, everything else)
        loss = loss + self.config.latent_weight * (spread.mean(1).pow(2) + (spread.std(1) - 1).pow(2)).mean()
        if self.discriminator is not None:
            d_loss, g_loss = self.gan_losses(target.unsqueeze(1), recon.unsqueeze(1))
            loss = loss + d_loss + self.config.gan_weight * g_loss
        return loss

    def gan_losses(self, real, fake):
        """Hinge loss for the discriminator; adversarial + feature matching for the autoencoder.
        One backward trains both: the discriminator sees a detached fake, and the autoencoder's
        terms go through a copy of the discriminator whose weights are detached. Both standardised."""
        d_real = self.discriminator(real)
        d_fake = self.discriminator(fake.detach())
        d_loss = F.relu(1 - d_real[-1]).mean() + F.relu(1 + d_fake[-1]).mean()
        frozen = {k: v.detach() for k, v in self.discriminator.named_parameters()}
        g_feats = torch.func.functional_call(self.discriminator, frozen, (fake,))
        matching = sum(F.l1_loss(g, r.detach()) for g, r in zip(g_feats[:-1], d_real[:-1])) / (len(g_feats) - 1)
        return d_loss, matching - g_feats[-1].mean()

    @torch.no_grad()
    def encode_song(self, mel, batch_size=64):
        """(frames, n_mels) log-mels of a whole song -> (N, C, h, w) latents of its N segments;
        the last segment is padded with silence."""
        F_ = self.config.segment_frames
        n = -(-mel.shape[0] // F_)
        padded = F.pad(mel, (0, 0, 0, n * F_ - mel.shape[0])).reshape(n, F_, -1)
        return torch.cat([self.encode(padded[i:i + batch_size]) for i in range(0, n, batch_size)])

    @torch.no_grad()
    def decode_song(self, latents, batch_size=64):
        """(N, C, h, w) latents -> (N * segment_frames, n_mels) log-mels, each segment decoded
        with its neighbours; silence before the first and after the last."""
        silence = self.encode(torch.zeros(1, self.config.segment_frames, self.config.n_mels,
                                          device=latents.device, dtype=latents.dtype))
        z = torch.cat([silence, latents, silence])  # (N + 2, C, h, w)
        n = latents.shape[0]
        out = []
        for i in range(0, n, batch_size):
            j = min(i + batch_size, n)
            out.append(self.decode(z[i:j], z[i + 1:j + 1], z[i + 2:j + 2]))
        return torch.cat(out).reshape(n * self.config.segment_frames, -1)


def song_latents(model, key, data_dir, name, device):
    """A song's latents (N, C, h, w) float32, encoded once and kept as songs/<name>/latents-<key>.npy
    (key: checkpoint.checkpoint_key of the model's file). The Decoder and the recogniser read them."""
    path = os.path.join(data_dir, 'songs', name, f'latents-{key}.npy')
    if os.path.exists(path):
        return np.load(path).reshape(-1, *model.latent_shape)
    mel = torch.from_numpy(np.load(os.path.join(data_dir, 'songs', name, 'mel.npy')).astype(np.float32))
    latents = model.encode_song(mel.to(device)).float().cpu().numpy()
    tmp = f"{path}.{os.getpid()}.tmp.npy"  # ranks of a DDP run may write at once
    np.save(tmp, latents)
    os.replace(tmp, path)
    return latents



# -----------------------------------------------------------------------------
# data: the cached mels of one split, and random three-segment windows from them

def load_data(data_dir, meta, split, config=None):
    """The split's mels, read once: one (frames, n_mels) float16 tensor, the songs end to end and a
    silent frame (log-mel 0) last, where batches are cut (on the training device when it fits:
    checkpoint.feed_tensor), each song's first frame and length in it, and the segment size."""
    config = config or {}
    songs = [np.load(os.path.join(data_dir, 'songs', name, 'mel.npy'), mmap_mode='r') for name in meta['split'][split]]
    lengths = np.array([len(mel) for mel in songs])
    mels = np.concatenate(songs + [np.zeros((1, songs[0].shape[1]), np.float16)])
    return dict(mels=feed_tensor(mels, config.get('device', 'cpu')), lengths=lengths, offsets=np.cumsum(lengths) - lengths,
                segment_frames=meta['settings']['segment_frames'], floor=config.get('floor', Config.floor))


def get_batch(data, batch_size, rng):
    """-> dict(window=(B, 3 * segment_frames, n_mels) float16, the mels as cached): a segment at a
    random frame of a random song (songs weighted by length) with the segments before and after
    it; outside the song is silence. One gather, on the device the mels live on."""
    F_, lengths, mels = data['segment_frames'], data['lengths'], data['mels']
    picks = rng.choice(len(lengths), size=batch_size, p=lengths / lengths.sum())
    starts = rng.integers(-F_ // 2, lengths[picks] - F_ // 2) - F_  # (B,) the middle segment may overhang an end
    frames = starts[:, None] + np.arange(3 * F_)  # (B, 3F)
    inside = (frames >= 0) & (frames < lengths[picks, None])
    index = torch.from_numpy(np.where(inside, data['offsets'][picks, None] + frames, len(mels) - 1)).to(mels.device)
    return dict(window=mels.index_select(0, index.view(-1)).view(*index.shape, -1))


@torch.no_grad()
def evaluate(net, meta, data_dir, device, seam_frames=2):
    """Whole validation songs through encode_song and decode_song: L1 on log-mels, against always
    predicting the training set's mean frame; the L1 of the frames at segment joins against the
    rest; and the sharpness of the reconstructions where the songs sing, which caps the Decoder's
    (decoder.rollout_figures). seam_frames: the frames each side of a segment join that count as
    "at the join"."""
    total, count = 0.0, 0
    for _, mel in song_mels(data_dir, meta, 'train'):
        total, count = total + mel.sum(0), count + len(mel)
    mean_frame = total / count
    F_ = net.config.segment_frames
    errors, baseline, band, flatness = [], [], voice_band(meta['settings']), dict(real=[], reconstructed=[])
    for name, mel in song_mels(data_dir, meta, 'val'):
        x = torch.from_numpy(mel).to(device)
        recon = net.decode_song(net.encode_song(x))[:len(mel)]
        errors.append((recon - x).abs().mean(1).cpu().numpy())  # (frames,) L1 per frame
        baseline.append(np.abs(mel - mean_frame).mean(1))
        sung = sung_frames(np.load(os.path.join(data_dir, 'songs', name, 'blocks.npy')), len(mel))
        flatness['real'].append(spectral_flatness(mel, band)[sung])
        flatness['reconstructed'].append(spectral_flatness(recon.cpu().numpy(), band)[sung])
    at_join = [np.isin(np.arange(len(e)) % F_, list(range(seam_frames)) + list(range(F_ - seam_frames, F_)))
               for e in errors]
    for e, j in zip(errors, at_join):
        j[:seam_frames] = False  # the song's start and end are not joins
        j[(len(e) - 1) // F_ * F_ + F_ - seam_frames:] = False
    errors, at_join, baseline = np.concatenate(errors), np.concatenate(at_join), np.concatenate(baseline)
    figures = dict(val_l1=float(errors.mean()), mean_frame_l1=float(baseline.mean()),
                   seam_ratio=float(errors[at_join].mean() / errors[~at_join].mean()),
                   sharpness=float(np.concatenate(flatness['real']).mean() / np.concatenate(flatness['reconstructed']).mean()))
    print(f"{len(meta['split']['val'])} validation songs, {len(errors)} frames")
    print(f"val L1 on log-mels      {figures['val_l1']:.4f}  "
          f"({figures['val_l1'] / figures['mean_frame_l1']:.3f} of the mean-frame baseline)")
    print(f"mean-frame baseline L1  {figures['mean_frame_l1']:.4f}")
    print(f"seam ratio              {figures['seam_ratio']:.3f}  (L1 within {seam_frames} frames of a "
          f"segment join / L1 elsewhere)")
    print(f"sharpness               {figures['sharpness']:.3f}  (real / reconstructed spectral flatness in the voice "
          f"band where the songs sing; 1.0 = as sharp as real)")
    return figures
