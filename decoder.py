"""
The Decoder: a causal transformer over a song's autoencoder latents, one step per segment
(about one second), that renders the Composer's plan as audio latents.

Step t reads the latent of segment t-1 (silence before the song) and predicts the residual
z[t] - z[t-1]. To it are added the step's position and the plan at the step: for each latent row
of segment t (a few frames each), the Composer's embedding of the block that row lies in and how
far into the block it is, so the decoder knows to the row where lines and gaps begin. Every
layer cross-attends to the Composer's block embeddings over the whole plan and to the style
matrix. Both conditions are dropped together with probability `cond_drop` in training, for
classifier-free guidance.

Free-running regression drifts or freezes (README, "The decoder"); here the inputs are noised
in training (`input_noise`) and the target is the step from the noised input to the next clean
latent, so the model learns to pull a rollout back onto the data.

The autoencoder and the Composer are frozen: `ae_ckpt` and `composer_ckpt` name them. The
corpus's latents are encoded once and cached beside its mels, keyed by the autoencoder checkpoint.
"""
import hashlib
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from transformer import Block, drop_condition, init_weights, scale_residual_projections, time_features

ROW_FEATURES = 16  # each latent row's plan, before the rows of a step are joined


@dataclass
class Config:
    latent_dim: int = 4096  # from the data: the autoencoder's C * h * w
    latent_rows: int = 32  # from the data: h, latent rows per segment
    composer_dim: int = 512  # from the data: the Composer's n_embd
    vocab_size: int = 2133  # from the data: pinyin syllables
    style_dim: int = 384  # from the data: the style encoder's
    n_layer: int = 8
    n_head: int = 8
    n_embd: int = 512
    dropout: float = 0.0
    max_steps: int = 1024  # longest song, in segments
    cond_drop: float = 0.1  # probability of training without plan and style (classifier-free guidance)
    input_noise: float = 0.5  # std of the noise added to the input latents in training


class Model(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.config = config
        C = config.n_embd
        self.latent_in = nn.Linear(config.latent_dim, C)
        self.position = nn.Embedding(config.max_steps, C)
        self.row_in = nn.Linear(config.composer_dim + 16, ROW_FEATURES)  # a row's block embedding + time in it
        self.syllable = nn.Embedding(config.vocab_size, ROW_FEATURES)  # the syllable sung in a row (0: none)
        self.rows_in = nn.Linear(config.latent_rows * ROW_FEATURES, C)
        self.plan_in = nn.Linear(config.composer_dim, C)
        self.style_in = nn.Linear(config.style_dim, C)
        self.null_plan = nn.Parameter(torch.zeros(1, 1, C))
        self.null_style = nn.Parameter(torch.zeros(1, 1, C))
        self.blocks = nn.ModuleList(Block(C, config.n_head, config.dropout, n_cross=2) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(C)
        self.head = nn.Linear(C, config.latent_dim)
        self.apply(init_weights)
        scale_residual_projections(self, config.n_layer)

    def conditions(self, row_block, row_time, row_syllable, plan, plan_mask, style, style_mask, drop=None):
        """The plan at each step and the cross-attention contexts.
        row_block (B, T, h): index into plan of each row's block; row_time (B, T, h): seconds since
        that block began; row_syllable (B, T, h): the syllable sung in the row; plan (B, P, composer_dim) block embeddings; style (B, S, style_dim);
        drop (B,) bool: no plan and no style. -> rows (B, T, C), [(plan, mask), (style, mask)]"""
        B, T, h = row_block.shape
        index = row_block.reshape(B, T * h, 1).expand(-1, -1, plan.shape[-1])
        row_plan = torch.gather(plan, 1, index).view(B, T, h, -1)  # (B, T, h, composer_dim)
        seconds = row_time.clamp(max=16.0)
        rows = self.row_in(torch.cat([row_plan, time_features(seconds, 0.25, 32.0).to(plan.dtype)], -1))
        rows = rows + self.syllable(row_syllable)  # (B, T, h, ROW_FEATURES)
        rows = self.rows_in(rows.flatten(2))  # (B, T, h * ROW_FEATURES) -> (B, T, C)
        plan_ctx, style_ctx = self.plan_in(plan), self.style_in(style)
        if drop is not None:
            rows = rows * ~drop[:, None, None]
            plan_ctx, plan_mask = drop_condition(plan_ctx, plan_mask, self.null_plan, drop)
            style_ctx, style_mask = drop_condition(style_ctx, style_mask, self.null_style, drop)
        return rows, [(plan_ctx, plan_mask), (style_ctx, style_mask)]

    def hidden(self, x, conditions, caches=None):
        for i, block in enumerate(self.blocks):
            x = block(x, conditions, None if caches is None else caches[i])
        return self.ln_f(x)

    def predict(self, prev, steps, rows, conditions, caches=None):
        """prev (B, T, latent_dim) latents before steps (B, T) -> predicted residuals (B, T, latent_dim)."""
        x = self.latent_in(prev) + self.position(steps) + rows
        return self.head(self.hidden(x, conditions, caches))

    def forward(self, latents, steps, mask, row_block, row_time, row_syllable, plan, plan_mask, style, style_mask):
        """Teacher-forced. latents (B, T + 1, latent_dim): the latent before the window, then the
        window's; steps (B, T) segment indices; mask (B, T) True for real steps -> MSE of the residuals."""
        prev, target = latents[:, :-1], latents[:, 1:]
        drop = None
        if self.training:
            prev = prev + self.config.input_noise * torch.randn_like(prev)
            drop = torch.rand(prev.shape[0], device=prev.device) < self.config.cond_drop
        rows, conds = self.conditions(row_block, row_time, row_syllable, plan, plan_mask, style, style_mask, drop)
        residual = self.predict(prev, steps, rows, conds)
        error = (residual - (target - prev)).pow(2).mean(-1)  # (B, T)
        return (error * mask).sum() / mask.sum()

    @torch.no_grad()
    def generate(self, first, row_block, row_time, row_syllable, plan, plan_mask, style, style_mask, cfg_scale=1.0,
                 use_cache=True):
        """Free-running: first (B, latent_dim), the latent before step 0 (silence); the plan's rows
        for every step, (B, N, h) -> latents (B, N, latent_dim). cfg_scale mixes the predictions
        with and without plan and style (1.0: without guidance). use_cache=False recomputes the
        whole prefix at every step (the benchmark's reference)."""
        B, N = row_block.shape[:2]
        args = (row_block, row_time, row_syllable, plan, plan_mask, style, style_mask)
        guided = cfg_scale != 1.0
        if guided:  # one batch: the conditional half, then the unconditional half
            args = [torch.cat([a, a]) for a in args]
            drop = torch.arange(2 * B, device=first.device) >= B
        rows, conds = self.conditions(*args, drop=drop if guided else None)
        steps = torch.arange(N, device=first.device).expand(rows.shape[0], -1)
        caches = [{} for _ in self.blocks] if use_cache else None
        prev = [first.repeat(2, 1) if guided else first]  # the input of each step so far, each (B', latent_dim)
        for t in range(N):
            if use_cache:
                residual = self.predict(prev[-1][:, None], steps[:, t:t + 1], rows[:, t:t + 1], conds, caches)[:, -1]
            else:
                residual = self.predict(torch.stack(prev, 1), steps[:, :t + 1], rows[:, :t + 1], conds)[:, -1]
            if guided:
                cond, uncond = residual.chunk(2)
                residual = (uncond + cfg_scale * (cond - uncond)).repeat(2, 1)
            prev.append(prev[-1] + residual)
        return torch.stack(prev[1:], 1)[:B]  # (B, N, latent_dim)


# -----------------------------------------------------------------------------
# the plan at every latent row, and the data: cached latents and frozen Composer embeddings

def plan_rows(table, tokens, n_steps, segment_frames, latent_rows, frames_per_second):
    """A song's block table (P, 7) and tokens (P, K) -> for every latent row of n_steps segments:
    the block it lies in, the seconds since that block began, and the syllable sung in it,
    assuming a line's syllables share its time evenly (0 in gaps): 3 x (n_steps, h). Rows after
    the last block lie in it (the end marker)."""
    from composer import END, LINE, KIND, N_TOKENS, START
    row_frames = segment_frames // latent_rows
    frames = np.arange(n_steps * latent_rows) * row_frames + row_frames // 2  # the middle of each row
    block = np.clip(np.searchsorted(table[:, START], frames, side='right') - 1, 0, len(table) - 1)
    elapsed = frames - table[block, START]
    n = table[block, N_TOKENS]
    k = np.minimum(elapsed * n // np.maximum(table[block, END] - table[block, START], 1), np.maximum(n - 1, 0))
    syllable = np.where(table[block, KIND] == LINE, tokens[block, k], 0)
    shape = (n_steps, latent_rows)
    return block.reshape(shape), (elapsed / frames_per_second).reshape(shape).astype(np.float32), syllable.reshape(shape)


def checkpoint_key(path):
    """A short fingerprint of a checkpoint file's bytes: which model made a cache."""
    sha = hashlib.sha1()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 24), b''):
            sha.update(chunk)
    return sha.hexdigest()[:12]


def frozen_stages(ae_ckpt, composer_ckpt, meta, data_dir, device):
    """Load the frozen autoencoder and Composer; refuse them when they were made for other data."""
    from train import check_settings, load_checkpoint
    ae_checkpoint, ae_model = load_checkpoint(ae_ckpt, device, stage='ae')
    composer_checkpoint, composer_model = load_checkpoint(composer_ckpt, device, stage='composer')
    for path, checkpoint in ((ae_ckpt, ae_checkpoint), (composer_ckpt, composer_checkpoint)):
        check_settings(checkpoint['data_settings'], meta['settings'], path, f"{data_dir}/meta.json")
    check_settings(dict(vocab_size=composer_model.config.vocab_size), dict(vocab_size=len(meta['vocab'])),
                   composer_ckpt, f"{data_dir}/meta.json")
    return ae_model, composer_model, composer_checkpoint['config']


def encode_latents(ae_model, ae_key, data_dir, name, device):
    """A song's latents (N, latent_dim) float32, encoded once and kept as songs/<name>/latents-<ae_key>.npy."""
    path = os.path.join(data_dir, 'songs', name, f'latents-{ae_key}.npy')
    if os.path.exists(path):
        return np.load(path)
    mel = torch.from_numpy(np.load(os.path.join(data_dir, 'songs', name, 'mel.npy')).astype(np.float32))
    latents = ae_model.encode_song(mel.to(device)).flatten(1).float().cpu().numpy()
    tmp = f"{path}.{os.getpid()}.tmp.npy"  # ranks of a DDP run may write at once
    np.save(tmp, latents)
    os.replace(tmp, path)
    return latents


def load_data(data_dir, meta, split, config):
    """Every song of the split that has lyrics: its latents, block table and the frozen Composer's
    block embeddings over its plan (with its own style), and the style table. The style encoder
    is the Composer's (its checkpoint names it)."""
    import composer
    device = config['device']
    ae_model, composer_model, composer_config = frozen_stages(config['ae_ckpt'], config['composer_ckpt'], meta,
                                                              data_dir, device)
    plans = composer.load_data(data_dir, meta, split, composer_config)
    ae_key = checkpoint_key(config['ae_ckpt'])  # once: hashing the file per song would cost more than encoding
    songs = []
    for song in plans['songs']:
        batch = [x.to(device) for x in composer.collate([song], plans['styles'])]
        plan = composer_model.block_embeddings(*batch)[0].float().cpu()  # (P, composer_dim)
        latents = encode_latents(ae_model, ae_key, data_dir, song['name'], device)
        songs.append(dict(name=song['name'], latents=torch.from_numpy(latents), table=song['table'],
                          tokens=song['tokens'], plan=plan, style=song['style']))
    settings = meta['settings']
    C, h, w = ae_model.latent_shape
    silence = ae_model.encode(torch.zeros(1, settings['segment_frames'], settings['n_mels'], device=device))
    return dict(songs=songs, styles=plans['styles'], silence=silence.detach().flatten().float().cpu(),
                latent_shape=(C, h, w), composer_dim=composer_model.config.n_embd,
                frames_per_second=settings['sample_rate'] / settings['hop_length'],
                segment_frames=settings['segment_frames'], block_size=config['block_size'])


def data_args(meta, data):
    C, h, w = data['latent_shape']
    return dict(latent_dim=C * h * w, latent_rows=h, composer_dim=data['composer_dim'], vocab_size=len(meta['vocab']),
                style_dim=data['styles']['embeddings'].shape[-1])


def collate(data, windows, plans=None):
    """windows: (song index, first step, n_steps) -> the batch tensors of Model.forward. plans: a
    song index per window whose plan and style to use instead of its own."""
    songs, styles = data['songs'], data['styles']
    B, T = len(windows), max(n for _, _, n in windows)
    P = max(len(s['table']) for s in songs)
    h = data['latent_shape'][1]
    latents = data['silence'].repeat(B, T + 1, 1)  # (B, T + 1, latent_dim): padding is silence
    steps, mask = torch.zeros(B, T, dtype=torch.long), torch.zeros(B, T, dtype=torch.bool)
    row_block, row_syllable = torch.zeros(B, T, h, dtype=torch.long), torch.zeros(B, T, h, dtype=torch.long)
    row_time = torch.zeros(B, T, h)
    plan, plan_mask = torch.zeros(B, P, data['composer_dim']), torch.zeros(B, P, dtype=torch.bool)
    for b, (i, start, n) in enumerate(windows):
        z, source = songs[i]['latents'], songs[i if plans is None else plans[b]]
        latents[b, 1:n + 1] = z[start:start + n]
        if start > 0:
            latents[b, 0] = z[start - 1]
        steps[b, :n], mask[b, :n] = torch.arange(start, start + n), True
        rows = plan_rows(source['table'], source['tokens'], start + n, data['segment_frames'], h, data['frames_per_second'])
        for out, r in zip((row_block, row_time, row_syllable), rows):
            out[b, :n] = torch.from_numpy(r[start:])
        p = len(source['table'])
        plan[b, :p], plan_mask[b, :p] = source['plan'], True
    rows = torch.tensor([songs[i if plans is None else plans[b]]['style'] for b, (i, _, _) in enumerate(windows)])
    return [latents, steps, mask, row_block, row_time, row_syllable, plan, plan_mask, styles['embeddings'][rows], styles['mask'][rows]]


def get_batch(data, batch_size, rng):
    """Windows of up to block_size steps from random songs (weighted by length)."""
    lengths = np.array([len(s['latents']) for s in data['songs']])
    picks = rng.choice(len(lengths), size=batch_size, p=lengths / lengths.sum())
    windows = []
    for i in picks:
        n = min(lengths[i], data['block_size'])
        windows.append((int(i), int(rng.integers(0, lengths[i] - n + 1)), int(n)))
    return collate(data, windows)
