"""
The Decoder: a causal transformer over a song's autoencoder latents, one step per latent row
(`patch` frames: 64 ms on the synthetic corpus), that renders the Composer's plan as audio.
Each step *samples* the next row from a learned distribution.

Why rows, and why sampled: inside a sung line the melody cannot be predicted from the plan. A
model that regresses the mean of the next second averages every pitch it could sing into a
haze with no notes. A step of one row continues the note it is singing from the rows just made,
so what is left to choose per step is small, and a generative head chooses it instead of
averaging over it (docs/notes.md, "The decoder").

Step t reads row t-1 (silence before the song) and the plan at row t: the Composer's embedding
of the block the row lies in, the syllable sung there, and the seconds since the block and the
syllable began (syllable onsets as prepare.py cached them: aligned by the lyric recogniser where
it was given, else an even share of the line; a plan's come from the rhythm the Composer
planned; a syllable is embedded by its initial, final and tone). Self-attention knows
rows only by their distance (rotary positions): no row of a four-minute song is further from the
song's start than the model has seen, because nothing in the model knows where the song began.

The song's memory: a line whose words were sung before also reads the row of its first
instance at the same moment of the same syllable (its echo, plan_rows), however far back, so a
chorus comes back to the tune it had. The echo is one more input of the step, not a copy: the
head still samples the row, and the echo is dropped with the plan for guidance. Every layer
cross-attends to the Composer's block embeddings over the whole plan and to the style matrix;
both are dropped together with probability `cond_drop` in training, for classifier-free
guidance. The trunk's hidden state, plus the row before through a linear map (the head reads
it straight as well: a sung vowel's formants carry on from row to row; flow loss 0.282 -> 0.269),
conditions a small flow-matching head (rectified flow: an MLP with adaptive layer norms, as
continuous-latent autoregressive models use) that carries Gaussian noise to the next row in
`flow_steps` Euler steps; `temperature` scales the starting noise, and guidance mixes the head's
velocities with and without plan and style. Sampling keeps a key/value cache of the last
`block_size` rows, the span the model was trained on.

The autoencoder and the Composer are frozen: `ae_ckpt` and `composer_ckpt` name them. The
corpus's latents are encoded once and cached beside its mels, keyed by the autoencoder
checkpoint (prepare.py drops them when it redoes a song).
"""
import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import ae
import composer
from audio import frame_rate
from checkpoint import checkpoint_key, feed_tensor, load_checkpoint, load_stages
from lyrics import END, KIND, LINE, N_TOKENS, START, plan_blocks
from measures import frechet_distance, plot_song, spectral_flatness, sung_frames, voice_band
from recogniser import error_figures, read_lines
from transformer import (Block, SyllableEmbedding, drop_condition, init_weights, rotary_tables, scale_residual_projections,
                         time_features)


@dataclass
class Config:
    row_dim: int = 128  # from the data: one latent row, C * w of the autoencoder's (C, h, w)
    latent_rows: int = 32  # from the data: h, latent rows per segment
    composer_dim: int = 512  # from the data: the Composer's n_embd
    vocab_size: int = 2133  # from the data: pinyin syllables
    style_dim: int = 384  # from the data: the style encoder's
    n_layer: int = 8
    n_head: int = 8
    n_embd: int = 512
    dropout: float = 0.0
    block_size: int = 1024  # rows a step attends back to: the training window
    cond_drop: float = 0.1  # probability of training without plan and style (classifier-free guidance)
    input_noise: float = 0.0  # std of the noise added to the input rows in training
    head_width: int = 256
    head_layers: int = 3
    head_samples: int = 4  # noise draws per row in training: the head is cheap next to the trunk


class HeadBlock(nn.Module):
    """A residual MLP block whose layer norm is shifted, scaled and gated by the condition (adaLN, as in DiT)."""

    def __init__(self, width):
        super().__init__()
        self.ln = nn.LayerNorm(width, elementwise_affine=False)
        self.modulation = nn.Linear(width, 3 * width)
        self.fc = nn.Linear(width, width)
        self.proj = nn.Linear(width, width)

    def forward(self, x, c):
        shift, scale, gate = self.modulation(c).chunk(3, dim=-1)
        return x + gate * self.proj(F.silu(self.fc(self.ln(x) * (1 + scale) + shift)))


class FlowHead(nn.Module):
    """Rectified flow over one latent row given the trunk's state h: x(s) = (1 - s) noise + s row
    runs on a straight line from noise (s = 0) to the row (s = 1), and the MLP learns its velocity.
    The flow time enters with x and the state modulates every layer, so that the modulations are
    computed once per row however many noise draws share it."""

    def __init__(self, row_dim, n_embd, width, n_layer):
        super().__init__()
        self.x_in = nn.Linear(row_dim + 16, width)  # x and the flow time's features
        self.h_in = nn.Linear(n_embd, width)
        self.layers = nn.ModuleList(HeadBlock(width) for _ in range(n_layer))
        self.ln_out = nn.LayerNorm(width, elementwise_affine=False)
        self.modulation_out = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, row_dim)

    def forward(self, x, s, h):
        """x (..., k, row_dim) at flow times s (..., k), state h (..., 1, n_embd) (or (..., k,
        n_embd)) -> velocity (..., k, row_dim)."""
        c = F.silu(self.h_in(h))
        x = self.x_in(torch.cat([x, time_features(s, 0.01, 4.0).to(x.dtype)], -1))
        for layer in self.layers:
            x = layer(x, c)
        shift, scale = self.modulation_out(c).chunk(2, dim=-1)
        return self.out(self.ln_out(x) * (1 + scale) + shift)

    def loss(self, row, h, k):
        """row (..., row_dim), h (..., n_embd) -> (...) squared error of the velocity, the mean over
        k draws of noise and flow time per row."""
        row = row.unsqueeze(-2)  # (..., 1, row_dim)
        noise = torch.randn(*row.shape[:-2], k, row.shape[-1], device=row.device)
        # flow times from a logit-normal, as Stable Diffusion 3 does: the middle of the path, where noise and row
        # weigh alike, is hardest (3000 steps: rollouts read 0.506 against 0.547 with uniform times)
        s = torch.sigmoid(torch.randn(noise.shape[:-1], device=row.device))  # (..., k)
        x = (1 - s[..., None]) * noise + s[..., None] * row
        return (self(x, s, h.unsqueeze(-2)) - (row - noise)).pow(2).mean((-2, -1))

    def sample(self, h, steps, temperature=1.0, cfg_scale=1.0):
        """h (B, n_embd) -> rows (B, row_dim) float32, by Euler steps from noise * temperature.
        With cfg_scale other than 1.0 (off, as everywhere), h holds the conditional states then the
        unconditional ones (2B rows) and the velocity is v_uncond + cfg_scale * (v_cond - v_uncond)."""
        guided = cfg_scale != 1.0
        B = h.shape[0] // 2 if guided else h.shape[0]
        x = temperature * torch.randn(B, self.out.out_features, device=h.device)
        for i in range(steps):
            s = torch.full((h.shape[0], 1), i / steps, device=h.device)
            v = self((x.repeat(2, 1) if guided else x)[:, None], s, h[:, None])[:, 0].float()
            if guided:
                cond, uncond = v.chunk(2)
                v = uncond + cfg_scale * (cond - uncond)
            x = x + v / steps  # float32 whatever the autocast: small steps must not round away
        return x


class Model(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.config = config
        C = config.n_embd
        self.row_in = nn.Linear(config.row_dim, C)
        self.echo_in = nn.Linear(config.row_dim, C)  # the row sung at this moment the first time the line came
        self.plan_at_row = nn.Linear(config.composer_dim + 32, C)  # the block the row lies in + time into it and its syllable
        self.syllable = SyllableEmbedding(C)  # the syllable sung in the row (0: none), by its parts
        self.plan_in = nn.Linear(config.composer_dim, C)
        self.style_in = nn.Linear(config.style_dim, C)
        self.null_plan = nn.Parameter(torch.zeros(1, 1, C))
        self.null_style = nn.Parameter(torch.zeros(1, 1, C))
        self.blocks = nn.ModuleList(Block(C, config.n_head, config.dropout, n_cross=2) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(C)
        self.row_skip = nn.Linear(config.row_dim, C)  # the row before, straight to the head as well
        self.head = FlowHead(config.row_dim, C, config.head_width, config.head_layers)
        self.apply(init_weights)
        scale_residual_projections(self, config.n_layer)

    def conditions(self, row_block, row_time, row_syllable, plan, plan_mask, style, style_mask, drop=None):
        """The plan at each row and the cross-attention contexts. row_block (B, T): index into plan
        of each row's block; row_time (B, T, 2): seconds since that block and since the syllable
        began; row_syllable (B, T): the syllable sung in the row; plan (B, P, composer_dim) block embeddings; style (B, S,
        style_dim); drop (B,) bool: no plan and no style. -> rows (B, T, C), [(plan, mask), (style, mask)]"""
        index = row_block[..., None].expand(-1, -1, plan.shape[-1])
        row_plan = torch.gather(plan, 1, index)  # (B, T, composer_dim)
        seconds = time_features(row_time.clamp(max=16.0), 0.25, 32.0).flatten(2).to(plan.dtype)  # (B, T, 32)
        rows = self.plan_at_row(torch.cat([row_plan, seconds], -1)) + self.syllable(row_syllable)
        plan_ctx, style_ctx = self.plan_in(plan), self.style_in(style)
        if drop is not None:
            rows = rows * ~drop[:, None, None]
            plan_ctx, plan_mask = drop_condition(plan_ctx, plan_mask, self.null_plan, drop)
            style_ctx, style_mask = drop_condition(style_ctx, style_mask, self.null_style, drop)
        return rows, [(plan_ctx, plan_mask), (style_ctx, style_mask)]

    def hidden(self, prev, echo, echo_mask, rows, conditions, caches=None, start=0):
        """prev (B, T, row_dim): the row before each step; echo (B, T, row_dim) where echo_mask (B, T)
        is True: the row of the line's first instance; rows (B, T, C): the plan at each step; start:
        the first step's index (a score sees only the distance between two steps) -> states (B, T, C)."""
        x = self.row_in(prev) + self.echo_in(echo) * echo_mask[..., None] + rows
        rotary = rotary_tables(torch.arange(start, start + x.shape[1], device=x.device), self.config.n_embd // self.config.n_head)
        for i, block in enumerate(self.blocks):
            x = block(x, conditions, None if caches is None else caches[i], rotary)
        return self.ln_f(x) + self.row_skip(prev)  # a note's formants carry on from the row before

    def forward(self, latents, mask, row_block, row_time, row_syllable, echo, echo_mask, plan, plan_mask, style, style_mask):
        """Teacher-forced. latents (B, T + 1, row_dim): the row before the window, then the
        window's rows; mask (B, T) True for real rows -> the head's flow loss."""
        prev, target = latents[:, :-1], latents[:, 1:]
        drop = None
        if self.training:
            prev = prev + self.config.input_noise * torch.randn_like(prev)
            drop = torch.rand(prev.shape[0], device=prev.device) < self.config.cond_drop
            echo_mask = echo_mask & ~drop[:, None]  # the echo is part of the plan
        rows, conds = self.conditions(row_block, row_time, row_syllable, plan, plan_mask, style, style_mask, drop)
        h = self.hidden(prev, echo.to(prev.dtype), echo_mask, rows, conds)  # (B, T, C)
        error = self.head.loss(target, h, self.config.head_samples)  # (B, T)
        return (error * mask).sum() / mask.sum()

    @torch.no_grad()
    def generate(self, first, row_block, row_time, row_syllable, row_echo, plan, plan_mask, style, style_mask,
                 flow_steps=8, temperature=1.0, cfg_scale=1.0, use_cache=True):
        """Free-running: first (B, row_dim), the row before the song (silence); the plan at every
        row, (B, N), with row_echo (B, N) the row each one echoes (-1: none; always an earlier
        row) -> rows (B, N, row_dim) float32. cfg_scale mixes the head's velocities with and
        without plan and style (1.0: no guidance). A step attends to the last block_size rows;
        use_cache=False recomputes them at every step (the benchmark's reference)."""
        B, N = row_block.shape
        args = (row_block, row_time, row_syllable, plan, plan_mask, style, style_mask)
        guided = cfg_scale != 1.0
        drop = torch.zeros(B, dtype=torch.bool, device=first.device)
        if guided:  # one batch: the conditional half, then the unconditional half
            args, row_echo = [torch.cat([a, a]) for a in args], torch.cat([row_echo, row_echo])
            drop = torch.arange(2 * B, device=first.device) >= B
        rows, conds = self.conditions(*args, drop=drop if guided else None)
        echo_mask = (row_echo >= 0) & ~drop[:, None]  # (B', N)
        window = self.config.block_size
        caches = [dict(window=window) for _ in self.blocks] if use_cache else None
        made = first.new_zeros(len(rows), N + 1, first.shape[-1], dtype=torch.float32)  # the input of each step
        made[:, 0] = first.float().repeat(len(rows) // B, 1)
        batch = torch.arange(len(rows), device=first.device)[:, None]
        for t in range(N):
            lo = t if use_cache else max(0, t + 1 - window)
            echo = made[batch, row_echo[:, lo:t + 1] + 1]  # (B', T, row_dim): made[0] where there is none (masked)
            h = self.hidden(made[:, lo:t + 1], echo, echo_mask[:, lo:t + 1], rows[:, lo:t + 1], conds, caches, lo)[:, -1]
            made[:, t + 1] = self.head.sample(h, flow_steps, temperature, cfg_scale).repeat(
                2 if guided else 1, 1)  # (B', row_dim)
        return made[:B, 1:]


# -----------------------------------------------------------------------------
# latents as rows, the plan at every row, and the data: cached latents and frozen Composer embeddings

def to_rows(latents):
    """(N, C, h, w) segment latents -> (N * h, C * w) latent rows, in time order."""
    N, C, h, w = latents.shape
    return latents.permute(0, 2, 1, 3).reshape(N * h, C * w)


def from_rows(rows, latent_shape):
    """(N * h, C * w) latent rows -> (N, C, h, w) segment latents; a partial last segment is cut."""
    C, h, w = latent_shape
    N = rows.shape[0] // h
    return rows[:N * h].reshape(N, h, C, w).permute(0, 2, 1, 3)


def plan_rows(table, tokens, onsets, n_rows, row_frames, frames_per_second):
    """A song's block table (P, 7), tokens (P, K) and syllable onsets (P, K) frames -> for each of
    n_rows latent rows: the block it lies in, the seconds since that block began and since the
    syllable sung in it began, that syllable (0 in gaps), and its echo: (n_rows,), (n_rows, 2),
    (n_rows,), (n_rows,). Rows after the last block lie in it (the end marker). A row of a line
    whose words were sung before echoes the row where its first instance was as far into the
    same syllable (before the first syllable: as far before it), kept inside that syllable; the
    others, and a row whose echo would not be an earlier row, echo -1."""
    frames = np.arange(n_rows) * row_frames + row_frames // 2  # the middle of each row
    block = np.clip(np.searchsorted(table[:, START], frames, side='right') - 1, 0, len(table) - 1)
    n = table[block, N_TOKENS]
    sung = (onsets[block] <= frames[:, None]) & (np.arange(onsets.shape[1]) < n[:, None])  # (n_rows, K)
    k = np.maximum(sung.sum(1) - 1, 0)  # the last syllable begun (the first, before it begins)
    line = table[block, KIND] == LINE
    syllable = np.where(line, tokens[block, k], 0)
    since_block = frames - table[block, START]
    since_syllable = np.where(line, np.maximum(frames - onsets[block, k], 0), since_block)
    seconds = np.stack([since_block, since_syllable], 1) / frames_per_second
    first = {}  # a line's words -> the block that sang them first
    source = np.array([first.setdefault(tuple(tokens[b, :table[b, N_TOKENS]]), b) if table[b, KIND] == LINE else b
                       for b in range(len(table))])[block]  # (n_rows,)
    K = onsets.shape[1]
    frame = onsets[source, k] + frames - onsets[block, k]  # the same moment of the same syllable
    later = np.where(k + 1 < table[source, N_TOKENS], onsets[source, np.minimum(k + 1, K - 1)], table[source, END])
    frame = np.clip(frame, table[source, START], np.maximum(later, table[source, START] + 1) - 1)
    echo = np.where(line & (source != block), np.minimum(frame // row_frames, np.arange(n_rows) - 1), -1)
    return block, seconds.astype(np.float32), syllable, echo


def silence_row(ae_model, settings, device):
    """The latent row of silence (log-mel 0), (C * w,): what comes before a song."""
    silence = ae_model.encode(torch.zeros(1, settings['segment_frames'], settings['n_mels'], device=device))
    return to_rows(silence)[silence.shape[2] // 2].detach().float().cpu()  # a middle row: no edge effects


def load_data(data_dir, meta, split, config):
    """Every song of the split that has lyrics: its latent rows and the plan at each row (with the
    frozen Composer's block embeddings over its plan, in its own style), and the style table.
    The style encoder is the Composer's (its checkpoint names it). The feed that batches are cut
    from holds the same, every song end to end (on the training device when it fits)."""
    device = config['device']
    ae_model, composer_model, composer_config = load_stages(config['ae_ckpt'], config['composer_ckpt'], meta['settings'],
                                                            f"{data_dir}/meta.json", device)
    plans = composer.load_data(data_dir, meta, split, dict(composer_config, device=device))
    ae_key = checkpoint_key(config['ae_ckpt'])  # once: hashing the file per song would cost more than encoding
    settings = meta['settings']
    fps = frame_rate(settings)
    row_frames = settings['segment_frames'] // ae_model.latent_shape[1]
    songs, embeddings, rows = [], [], []  # the songs; the last two only until they are in the feed
    for song in plans['songs']:
        batch = {k: x.to(device) for k, x in composer.collate([song], plans['styles']).items()
                 if k not in ('steps', 'pulse')}
        plan = composer_model.block_embeddings(**batch)[0].float().cpu()  # (P, composer_dim)
        latents = to_rows(torch.from_numpy(ae.song_latents(ae_model, ae_key, data_dir, song['name'], device)))
        onsets = os.path.join(data_dir, 'songs', song['name'], 'onsets.npy')
        if not os.path.exists(onsets):
            raise SystemExit(f"{onsets} is missing: the cache is older than the Decoder; run prepare.py again")
        rows.append([torch.from_numpy(r) for r in plan_rows(song['table'], song['tokens'], np.load(onsets), len(latents),
                                                             row_frames, fps)])
        embeddings.append(plan)
        songs.append(dict(name=song['name'], latents=latents, table=song['table'], tokens=song['tokens'], style=song['style'],
                          echo=rows[-1][3]))
    styles = plans['styles']
    P = max(len(s['table']) for s in songs)
    plan = torch.zeros(len(songs), P, composer_model.config.n_embd)  # (songs, P, composer_dim), 0-padded
    for i, e in enumerate(embeddings):
        plan[i, :len(e)] = e
    latents = torch.cat([s['latents'] for s in songs])  # (all rows, row_dim)
    lengths = np.array([len(s['latents']) for s in songs])
    for s, z in zip(songs, torch.split(latents, lengths.tolist())):
        s['latents'] = z  # a view: the rows are kept once on the host
    # the rows end to end, then one row that pads a batch: silence, and no block, time or syllable
    feed = dict(latents=torch.cat([latents, silence_row(ae_model, settings, device)[None]]),
                row_block=torch.cat([r[0] for r in rows] + [torch.zeros(1)]).long(),
                row_time=torch.cat([r[1] for r in rows] + [torch.zeros(1, 2)]).float(),
                row_syllable=torch.cat([r[2] for r in rows] + [torch.zeros(1)]).long(),
                row_echo=torch.cat([r[3] for r in rows] + [-torch.ones(1)]).long(), plan=plan,
                plan_mask=torch.arange(P) < torch.tensor([len(s['table']) for s in songs])[:, None],
                style_rows=torch.tensor([s['style'] for s in songs]), style=styles['embeddings'], style_mask=styles['mask'])
    return dict(songs=songs, styles=styles, feed={k: feed_tensor(x, device) for k, x in feed.items()},
                lengths=lengths, offsets=np.cumsum(lengths) - lengths,
                latent_shape=ae_model.latent_shape, composer_dim=composer_model.config.n_embd,
                frames_per_second=fps, segment_frames=settings['segment_frames'], row_frames=row_frames,
                block_size=config['block_size'])


def data_args(meta, data):
    C, h, w = data['latent_shape']
    return dict(row_dim=C * w, latent_rows=h, composer_dim=data['composer_dim'], vocab_size=len(meta['vocab']),
                style_dim=data['styles']['embeddings'].shape[-1])


def collate(data, windows, plans=None):
    """windows: (song index, first row, n_rows) -> a dict of batch tensors named as Model.forward's
    arguments, cut from the feed by row indices (gathers on the device it lives on). plans: a song
    index per window whose plan and style to use instead of its own. A window may run past its song:
    silence there, masked; its plan's rows past the plan's end are the plan's last (the end marker)."""
    feed, lengths, offsets = data['feed'], data['lengths'], data['offsets']
    songs, starts, n = (np.array(x) for x in zip(*windows))  # (B,) each
    sources = songs if plans is None else np.asarray(plans)
    k = np.arange(-1, n.max())  # the row before the window, then its rows
    row = starts[:, None] + k  # (B, T + 1) rows of the song
    real = (row >= 0) & (row < lengths[songs, None]) & (k < n[:, None])
    pad = len(feed['latents']) - 1  # the padding row
    latent_index = np.where(real, offsets[songs, None] + row, pad)
    inside = k[1:] < n[:, None]  # (B, T) the plan at each row, from the source song: its last row past its end
    plan_index = np.where(inside, offsets[sources, None] + row[:, 1:].clip(0, lengths[sources, None] - 1), pad)
    device = feed['latents'].device
    gather = lambda name, index: feed[name].index_select(0, index.view(-1)).view(*index.shape, *feed[name].shape[1:])
    latent_index, plan_index, sources = (torch.from_numpy(x).to(device) for x in (latent_index, plan_index, sources))
    rows = feed['style_rows'][sources]
    echo = gather('row_echo', plan_index)  # (B, T) a row of the window's song, or -1
    echo_mask = (echo >= 0) & (echo < torch.from_numpy(lengths[songs]).to(device)[:, None])  # (another song's plan may run past it)
    echo_index = torch.where(echo_mask, torch.from_numpy(offsets[songs]).to(device)[:, None] + echo, pad)
    return dict(latents=gather('latents', latent_index),  # (B, T + 1, row_dim)
                mask=torch.from_numpy(real[:, 1:]).to(device), row_block=gather('row_block', plan_index),
                row_time=gather('row_time', plan_index), row_syllable=gather('row_syllable', plan_index),
                echo=gather('latents', echo_index), echo_mask=echo_mask,  # (B, T, row_dim), (B, T): however far back
                plan=feed['plan'][sources], plan_mask=feed['plan_mask'][sources],
                style=feed['style'][rows], style_mask=feed['style_mask'][rows])


def get_batch(data, batch_size, rng):
    """Windows of up to block_size rows from random songs (weighted by length)."""
    lengths = data['lengths']
    picks = rng.choice(len(lengths), size=batch_size, p=lengths / lengths.sum())
    n = np.minimum(lengths[picks], data['block_size'])
    return collate(data, list(zip(picks, rng.integers(0, lengths[picks] - n + 1), n)))


# -----------------------------------------------------------------------------
# evaluation: free-running rollouts from the validation songs' plans, against the songs

def rollout_figures(generated, real, swapped, tables, mels, decoded, settings):
    """generated, real (and swapped: rollouts from the next song's plan and style): per song
    latents (N_i, C, h, w) over the same segments; the songs' block tables and log-mels; decoded:
    the autoencoder's mels of generated and real latents ('generated', 'reconstructed': lists) -> the
    figures that see blur:
    - frechet: Frechet distance between generated and real segment latents, and the real songs'
      own figure between the two halves of the validation set (the floor);
    - sharpness: mean spectral flatness of the decoded mels in the voice band where the plan
      sings, real / generated (1.0: as sharp as the real songs; a blur is flatter: below 1);
      the same for the real latents through the autoencoder, which leaves a faint floor in bins
      that are silent in the real mels and so caps what any Decoder can reach; and generated
      against that reconstruction (1.0: the Decoder loses nothing beyond the autoencoder);
    - swap: mean L1 between a rollout's latents and its song's, from another song's plan and
      style over from its own (above 1: the plan and style steer the rollout)."""
    flat = lambda zs: torch.cat(zs).flatten(1).double().numpy()  # (segments, C * h * w)
    half = len(real) // 2
    figures = dict(frechet=frechet_distance(flat(generated), flat(real)),
                   frechet_floor=frechet_distance(flat(real[:half]), flat(real[half:])) if half > 1 else float('nan'))
    band = voice_band(settings)
    flatness = {'generated': [], 'real': [], 'reconstructed': []}
    for i, (z_real, table, mel) in enumerate(zip(real, tables, mels)):
        frames = len(z_real) * settings['segment_frames']
        sung = sung_frames(table, frames)
        mel = mel[:frames]
        for key in ('generated', 'reconstructed'):
            flatness[key].append(spectral_flatness(decoded[key][i], band)[sung])
        flatness['real'].append(spectral_flatness(mel, band)[sung[:len(mel)]])
    flatness = {k: float(np.concatenate(v).mean()) for k, v in flatness.items()}
    figures.update(sharpness=flatness['real'] / flatness['generated'],
                   sharpness_reconstructed=flatness['real'] / flatness['reconstructed'],
                   sharpness_vs_autoencoder=flatness['reconstructed'] / flatness['generated'])
    if swapped is not None:
        distance = lambda zs: float(np.mean([(a - b).abs().mean().item() for a, b in zip(zs, real)]))
        figures.update(rollout_l1=distance(generated), swap_ratio=distance(swapped) / distance(generated))
    return figures


def print_rollout_figures(figures):
    print(f"Frechet distance, generated vs real latents  {figures['frechet']:.1f}  (real vs real, two halves of the "
          f"songs: {figures['frechet_floor']:.1f})")
    print(f"sharpness: real / generated flatness         {figures['sharpness']:.3f}  (1.0 = as sharp as real; "
          f"the autoencoder's reconstructions: {figures['sharpness_reconstructed']:.3f}; generated against those: "
          f"{figures['sharpness_vs_autoencoder']:.3f})")
    if 'swap_ratio' in figures:
        print(f"rollout L1 to the song, another plan / own   {figures['swap_ratio']:.3f}  (own: {figures['rollout_l1']:.4f})")


@torch.no_grad()
def evaluate(net, meta, data_dir, device, config, reader=None, rollout_seconds=30.0, flow_steps=8, temperature=1.0,
             cfg_scale=2.0, figure=''):
    """The head's flow loss on the validation songs (a training diagnostic), then what a listener
    would notice in free-running rollouts of rollout_seconds from each validation song's plan:
    their latents' Frechet distance to the same songs' real latents, the sharpness of their
    decoded mels where the plan sings, whether another song's plan takes them further from the
    song (rollout_figures), and with a recogniser (recogniser_ckpt) the syllable error rate of
    the lines they sing, beside the same lines of the songs' autoencoder reconstructions. config:
    the checkpoint's training config; reader: the recogniser (None: the lyrics are not read);
    the rest as in sample.py; figure: a PNG of the first song, real beside generated."""
    config = dict(config, device=device)
    data = load_data(data_dir, meta, 'val', config)
    _, ae_model = load_checkpoint(config['ae_ckpt'], device, stage='ae')
    songs, shape = data['songs'], data['latent_shape']
    torch.manual_seed(0)
    # every row once, in windows of block_size rows as in training (a row attends back that far, no further)
    B = data['block_size']
    windows = [(j, a, min(B, len(s['latents']) - a)) for j, s in enumerate(songs) for a in range(0, len(s['latents']), B)]
    total, n_rows = 0.0, 0
    for i in range(0, len(windows), 32):
        batch = {k: x.to(device) for k, x in collate(data, windows[i:i + 32]).items()}
        n = batch['mask'].sum().item()
        total, n_rows = total + net(**batch).item() * n, n_rows + n
    flow_loss = total / n_rows
    h = shape[1]
    n = math.ceil(rollout_seconds * data['frames_per_second'] / data['segment_frames']) * h  # rows, whole segments
    lengths = [min(n, len(s['latents']) // h * h) for s in songs]  # a shorter song is measured over its length
    real = [from_rows(s['latents'][:k], shape) for s, k in zip(songs, lengths)]

    def rollouts(plans=None):
        batch = {k: x.to(device) for k, x in collate(data, [(i, 0, n) for i in range(len(songs))], plans).items()}
        echo = torch.stack([F.pad(songs[i]['echo'][:n], (0, n - len(songs[i]['echo'][:n])), value=-1)
                            for i in (plans or range(len(songs)))]).to(device)  # (B, n): the rows each plan's repeats echo
        z = net.generate(batch['latents'][:, 0], *[batch[k] for k in ('row_block', 'row_time', 'row_syllable')], echo,
                         *[batch[k] for k in ('plan', 'plan_mask', 'style', 'style_mask')], flow_steps=flow_steps, temperature=temperature,
                         cfg_scale=cfg_scale).cpu()  # (B, n, row_dim)
        return [from_rows(z[i, :k], shape) for i, k in enumerate(lengths)]

    torch.manual_seed(0)
    generated = rollouts()
    swapped = rollouts([(i + 1) % len(songs) for i in range(len(songs))]) if len(songs) > 1 else None
    mels = [np.load(os.path.join(data_dir, 'songs', s['name'], 'mel.npy')).astype(np.float32) for s in songs]
    decode = lambda zs: [ae_model.decode_song(z.to(device)).float().cpu().numpy() for z in zs]
    decoded = dict(generated=decode(generated), reconstructed=decode(real))
    if figure:  # the first validation song: real, through the autoencoder, and generated from its plan
        frames = lengths[0] // h * data['segment_frames']
        blocks = plan_blocks(songs[0]['table'], songs[0]['tokens'], meta['vocab'], data['frames_per_second'])
        plot_song(figure, [(f"real: {songs[0]['name']}", mels[0][:frames]),
                           ('through the autoencoder', decoded['reconstructed'][0]),
                           (f'generated from its plan (cfg_scale {cfg_scale})', decoded['generated'][0])],
                  blocks, meta['settings'])
        print(f"wrote {figure}")
    figures = dict(flow_loss=flow_loss)
    figures.update(rollout_figures(generated, real, swapped, [s['table'] for s in songs], mels, decoded, meta['settings']))
    if reader is not None:  # the lines each rollout sings, read back; the same lines of the reconstructions
        read = dict(generated=[], reconstructed=[])
        for key in read:
            truth = []
            for song, mel in zip(songs, decoded[key]):
                r, t = read_lines(reader, mel, song['table'], song['tokens'], meta['vocab'], meta['settings'])
                read[key], truth = read[key] + r, truth + t
        figures.update(error_figures({'': read['generated'], 'reconstructed': read['reconstructed']}, truth))
    print(f"{len(songs)} validation songs, {sum(lengths) // h} segments of rollouts (up to {rollout_seconds:.0f} s "
          f"each; flow_steps {flow_steps}, temperature {temperature}, cfg_scale {cfg_scale})")
    print(f"the head's flow loss (teacher-forced)        {flow_loss:.4f}  (a training diagnostic)")
    print_rollout_figures(figures)
    if 'syllable_error_rate' in figures:
        print(f"lyrics read back from the rollouts: syllable error rate {figures['syllable_error_rate']:.3f} (tone-free "
              f"{figures['tone_free_error_rate']:.3f}); the same lines through the autoencoder "
              f"{figures['syllable_error_rate_reconstructed']:.3f} ({figures['tone_free_error_rate_reconstructed']:.3f}); "
              f"chance {figures['syllable_error_rate_chance']:.3f}")
    return figures
