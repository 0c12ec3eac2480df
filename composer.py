"""
The Composer: a causal transformer over a song's blocks (lyric lines, gaps, the end) that plans
the song's form from its lyrics and style.

Step t sees the blocks before it and predicts block t in two parts, the way it is sampled:
first its kind (line / gap / end), then, given what the block is (its kind and, for a line, its
syllables and line number), its length class, role and finish tag, and, given its length too, a
block's seconds within its class (the classes are coarse, a line's syllables must fit it: L1
on log seconds, so the median) and a line's rhythm: the seconds from each syllable to the next
(L1 on log seconds against prepare.py's onsets; the last syllable takes what is left of the
line). Durations, not shares of the line: a song's syllables follow its tempo, while how long a
line's last syllable is held varies, and shares of the line would carry that into every
syllable. From the style alone it picks the song's pulse, the grid its syllables start on
(song_pulse), among the corpus's pulses: planner.py puts a plan's block ends and
syllables on it, because the Decoder sings on the beat it lays down and an onset off it is
lost. A tokens head predicts the next line's syllables too (an auxiliary task; when planning,
the next line is always the user's next unsung line). Every layer cross-attends to the song's whole lyric token sequence
(each token with its role and line number) and to the style matrix (style.py). The style is
dropped with probability `style_drop` in training, for classifier-free guidance.

`block_embeddings(...)` gives the hidden states over a plan that the Decoder cross-attends to;
planner.py plans new lyrics with the model.
"""
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import planner
import style as style_encoder
from audio import frame_rate
from checkpoint import feed_tensor
from lyrics import (BLOCK_COLUMNS, END, FINISH, KIND, KINDS, LENGTH, LINE, N_TOKENS, ROLE, ROLES, START, STOP, even_onsets,
                    line_numbers, rhythm, rhythm_onsets, sung_syllables)
from lyrics import class_seconds as class_seconds_middle
from planner import step_shares
from transformer import Block, SyllableEmbedding, drop_condition, init_weights, scale_residual_projections, time_features


@dataclass
class Config:
    vocab_size: int = 2133  # from the data
    n_length_classes: int = 8  # from the data
    max_block_tokens: int = 24  # from the data
    frames_per_second: float = 250.0  # from the data
    style_dim: int = 384  # from the style encoder
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    max_blocks: int = 512
    max_lines: int = 512
    style_drop: float = 0.1  # probability of training without the style (classifier-free guidance)
    class_seconds: tuple = ()  # from the data: mean length of each length class's blocks; () = the classes' middles
    pulses: tuple = ()  # from the data: the songs' pulses in seconds, those within 1% merged; () = plans off any grid


class Model(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.config = config
        C = config.n_embd
        self.token = SyllableEmbedding(C)  # by the syllables' parts; also the tokens head's output matrix
        self.kind = nn.Embedding(len(KINDS) + 1, C)  # + the start of the song
        self.role = nn.Embedding(len(ROLES), C)
        self.length = nn.Embedding(config.n_length_classes, C)
        self.finish = nn.Embedding(2, C)
        self.n_tokens = nn.Embedding(config.max_block_tokens + 1, C)
        self.line = nn.Embedding(config.max_lines + 1, C)  # which lyric line (0 = none yet)
        self.index = nn.Embedding(config.max_blocks + 1, C)
        self.time = nn.Linear(16, C)  # sinusoidal features of the start time in seconds
        self.lyric_role = nn.Embedding(len(ROLES), C)
        self.style_in = nn.Linear(config.style_dim, C)
        self.null_style = nn.Parameter(torch.zeros(1, 1, C))
        self.blocks = nn.ModuleList(Block(C, config.n_head, config.dropout, n_cross=2) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(C)
        self.kind_head = nn.Linear(C, len(KINDS))
        self.slot = nn.Embedding(config.max_block_tokens, C)
        self.ln_attr = nn.LayerNorm(C)
        self.attr = nn.Linear(C, C)
        self.length_head = nn.Linear(C, config.n_length_classes)
        self.role_head = nn.Linear(C, len(ROLES))
        self.finish_head = nn.Linear(C, 2)
        self.step_head = nn.Linear(C, 1)
        self.seconds_head = nn.Linear(C, 1)
        self.pulse_head = nn.Sequential(nn.Linear(C, C), nn.GELU(), nn.Linear(C, max(1, len(config.pulses))))
        self.apply(init_weights)
        scale_residual_projections(self, config.n_layer)

    def content(self, table, tokens, lines):
        """What a block is: kind, syllables, their count, line number. (B, T, ...) -> (B, T, C)"""
        mask = (tokens > 0).unsqueeze(-1)
        syllables = (self.token(tokens) * mask).sum(2) / mask.sum(2).clamp(min=1)
        kind = self.kind(table[..., KIND].clamp(min=0))  # padding has kind -1
        return kind + syllables + self.n_tokens(table[..., N_TOKENS]) + self.line(lines.clamp(max=self.config.max_lines))

    def embed(self, table, tokens, lines):
        """A block's full embedding: what it is, how it was planned, where it is."""
        T = table.shape[1]
        seconds = table[..., START].float() / self.config.frames_per_second  # (B, T)
        time = time_features(seconds, 4.0, 1024.0)  # (B, T, 16)
        index = torch.arange(T, device=table.device).clamp(max=self.config.max_blocks - 1)
        return (self.content(table, tokens, lines) + self.role(table[..., ROLE]) + self.length(table[..., LENGTH])
                + self.finish(table[..., FINISH]) + self.time(time) + self.index(index + 1))

    def conditions(self, lyrics, lyric_roles, lyric_lines, style, style_mask, drop_style=None):
        """-> [(lyrics (B, L, C), mask), (style (B, S, C), mask)]; drop_style (B,) bool swaps in the null style."""
        lyric_ctx = self.token(lyrics) + self.lyric_role(lyric_roles) + self.line(lyric_lines.clamp(max=self.config.max_lines))
        lyric_mask = lyrics > 0
        lyric_mask[:, 0] = True  # a song with no lines still attends somewhere (to a pad token)
        style_ctx = self.style_in(style)
        if drop_style is not None:
            style_ctx, style_mask = drop_condition(style_ctx, style_mask, self.null_style, drop_style)
        return [(lyric_ctx, lyric_mask), (style_ctx, style_mask)]

    def hidden(self, x, conditions):
        for block in self.blocks:
            x = block(x, conditions)
        return self.ln_f(x)

    def heads(self, h, table, tokens, lines):
        """h (B, T, C) states before block t; -> logits dict for block t (the attributes given its
        content; given its length class too, its seconds as log(seconds / the class's mean) (B, T),
        and the log seconds from each syllable to the next (B, T, K))."""
        a = self.attr(F.gelu(self.ln_attr(h + self.content(table, tokens, lines))))
        slots = h.unsqueeze(2) + self.slot.weight  # (B, T, max_block_tokens, C)
        sized = a + self.length(table[..., LENGTH])
        syllables = sized.unsqueeze(2) + self.slot.weight  # the slot, not the syllable: the rhythm is the line's
        return dict(kind=self.kind_head(h), length=self.length_head(a), role=self.role_head(a),
                    finish=self.finish_head(a), tokens=slots @ self.token.table().T,
                    seconds=self.seconds_head(F.gelu(sized)).squeeze(-1),
                    steps=self.step_head(F.gelu(syllables)).squeeze(-1))

    def logits(self, table, tokens, lines, lyrics, lyric_roles, lyric_lines, style, style_mask, drop_style=None):
        """Teacher-forced: table (B, T, 7), tokens (B, T, K), lines (B, T) -> logits for every block."""
        B = table.shape[0]
        start = self.kind.weight[len(KINDS)].expand(B, 1, -1)
        x = torch.cat([start, self.embed(table, tokens, lines)[:, :-1]], dim=1)  # step t sees blocks < t
        conditions = self.conditions(lyrics, lyric_roles, lyric_lines, style, style_mask, drop_style)
        return dict(self.heads(self.hidden(x, conditions), table, tokens, lines), pulse=self.pulse_logits(conditions))

    def pulse_logits(self, conditions):
        """Which of config.pulses the song's is, (B, n_pulses) logits, from its style alone. A choice
        among the corpus's pulses, not a regression: a pulse 0.3% off adds up to a latent row of
        drift over a minute (a regression from the style was that far off, and read from the lyrics
        too it strayed by as much from song to song)."""
        style, mask = conditions[1]  # (B, S, C), (B, S)
        pooled = (style * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return self.pulse_head(pooled)

    def forward(self, table, tokens, lines, lyrics, lyric_roles, lyric_lines, style, style_mask, steps, pulse):
        drop = torch.rand(table.shape[0], device=table.device) < self.config.style_drop if self.training else None
        out = self.logits(table, tokens, lines, lyrics, lyric_roles, lyric_lines, style, style_mask, drop)
        valid = table[..., KIND] >= 0  # padding has kind -1
        placed = valid & (table[..., KIND] != STOP)
        kind_loss = F.cross_entropy(out['kind'][valid], table[..., KIND][valid])
        attr_loss = sum(F.cross_entropy(out[name][placed], table[..., col][placed])
                        for name, col in (('length', LENGTH), ('role', ROLE), ('finish', FINISH)))
        is_line = table[..., KIND] == LINE
        token_loss = F.cross_entropy(out['tokens'][is_line].flatten(0, 1), tokens[is_line].flatten(), ignore_index=0)
        stepped = steps > 0  # (B, T, K): syllables of lines that another syllable follows
        step_loss = F.l1_loss(out['steps'][stepped], steps[stepped].log()) if stepped.any() else out['steps'].sum() * 0
        seconds_loss = F.l1_loss(out['seconds'][placed], self.log_seconds(table)[placed])  # L1: the median
        pulsed = pulse > 0  # songs with a line of two syllables
        pulse_loss = (F.cross_entropy(out['pulse'][pulsed], self.pulse_class(pulse[pulsed]))
                      if pulsed.any() and self.config.pulses else out['pulse'].sum() * 0)
        return kind_loss + attr_loss + 0.25 * token_loss + step_loss + seconds_loss + pulse_loss

    def pulse_class(self, pulse):
        """Pulses (B,) seconds -> the index of the nearest of config.pulses (B,)."""
        pulses = torch.tensor(self.config.pulses, device=pulse.device)
        return (pulse.log().unsqueeze(-1) - pulses.log()).abs().argmin(-1)

    def log_seconds(self, table):
        """A block's length as the seconds head predicts it: log(seconds / its length class's mean), (B, T)."""
        seconds = (table[..., END] - table[..., START]).float().clamp(min=1) / self.config.frames_per_second
        mean = torch.tensor(self.config.class_seconds, device=table.device)[table[..., LENGTH]]
        return torch.log(seconds / mean)

    @torch.no_grad()
    def block_embeddings(self, table, tokens, lines, lyrics, lyric_roles, lyric_lines, style, style_mask, drop_style=None):
        """Hidden states over a plan, (B, T, C): state t has seen blocks 0..t. The Decoder's condition."""
        return self.hidden(self.embed(table, tokens, lines),
                           self.conditions(lyrics, lyric_roles, lyric_lines, style, style_mask, drop_style))


# -----------------------------------------------------------------------------
# data: a song's block table, tokens and lyric sequence, and its style's embedding

def syllable_steps(table, onsets, frames_per_second):
    """Seconds from each syllable's onset to the next one's, (P, K) float32: the rhythm the
    Composer learns, as durations, which follow the tempo (0 for a line's last syllable, which
    lasts what is left of the line however long the line is held, past its syllables and in gaps)."""
    k, n = np.arange(onsets.shape[1]), table[:, N_TOKENS, None]
    step = np.concatenate([onsets[:, 1:] - onsets[:, :-1], np.zeros_like(onsets[:, :1])], 1)
    return np.where((k < n - 1) & (table[:, KIND, None] == LINE), step / frames_per_second, 0).astype(np.float32)


def song_pulse(table, onsets, frames_per_second):
    """The song's pulse: the period in seconds of the grid its syllables start on, 0.0 when no
    line has two syllables. From the median step between syllables, then the period near it
    whose grid fits every onset best (the peak of |sum exp(2 pi i t / period)| over the onsets t:
    any phase, and precise to a few parts in 10,000 because the onsets span the whole song)."""
    steps = syllable_steps(table, onsets, frames_per_second)
    if not (steps > 0).any():
        return 0.0
    t = onsets[sung_syllables(table, onsets.shape[1])] / frames_per_second  # (S,) seconds
    periods = np.median(steps[steps > 0]) * np.exp(np.linspace(-0.25, 0.25, 2001))
    fit = np.abs(np.exp(2j * np.pi * t[None] / periods[:, None]).sum(1))  # (periods,)
    return float(periods[fit.argmax()])


def lyric_sequence(table, tokens):
    """The song's lyric tokens in order, with each token's role and line number: 3 x (L,)."""
    rows = np.flatnonzero(table[:, KIND] == LINE)
    if len(rows) == 0:
        return np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64)
    seq = [(tok, table[r, ROLE], n + 1) for n, r in enumerate(rows) for tok in tokens[r, :table[r, N_TOKENS]]]
    return tuple(np.array(col, dtype=np.int64) for col in zip(*seq))


def load_data(data_dir, meta, split, config):
    """Every song of the split that has lyrics: its blocks and lyric sequence, and the style table."""
    styles = style_encoder.style_table(data_dir, meta, config['style_model'], config['style_tokens'])
    row = {text: i for i, text in enumerate(styles['texts'])}
    fps = frame_rate(meta['settings'])
    songs = []
    for name in meta['split'][split]:
        entry = meta['songs'][name]
        if not entry.get('n_blocks'):
            continue  # no lyrics: the autoencoder's only
        folder = os.path.join(data_dir, 'songs', name)
        table, tokens = np.load(os.path.join(folder, 'blocks.npy')), np.load(os.path.join(folder, 'tokens.npy'))
        onsets = os.path.join(folder, 'onsets.npy')
        if not os.path.exists(onsets):
            raise SystemExit(f"{onsets} is missing: the cache is older than the Composer; run prepare.py again")
        onsets = np.load(onsets)
        pulse = song_pulse(table, onsets, fps) if entry.get('aligned_by') else 0.0  # even shares have no grid
        songs.append(dict(name=name, table=table, tokens=tokens, lines=line_numbers(table),
                          lyrics=lyric_sequence(table, tokens), style=row[entry.get('style', '')],
                          steps=syllable_steps(table, onsets, fps), pulse=pulse,  # the targets
                          rhythm=rhythm(table, onsets)))  # the same as shares of each line, as plans give them
    unaligned = sum(not meta['songs'][s['name']].get('aligned_by') for s in songs)
    if unaligned:  # prepare.py gave their syllables an even share of each line
        print(f"composer: {unaligned} of {len(songs)} {split} songs have no aligned syllables (prepare.py "
              f"--align_ckpt=<recogniser>): the rhythm learnt from them is an even share, and they have no pulse")
    feed = collate(songs, styles)  # every song, padded once: get_batch cuts its batches from it
    feed.update(style_rows=torch.tensor([s['style'] for s in songs]), style=styles['embeddings'], style_mask=styles['mask'])
    device = config.get('device', 'cpu')
    return dict(songs=songs, styles=styles, feed={k: feed_tensor(x, device) for k, x in feed.items()},
                n_blocks=np.array([len(s['table']) for s in songs]), n_lyrics=np.array([len(s['lyrics'][0]) for s in songs]))


def data_args(meta, data):
    """Model arguments from the cache; the mean length in seconds of each length class's blocks (a
    planned block gets its class's mean, which is what the corpus's blocks of that class last); and
    the pulses the songs have, the choices of the pulse head."""
    s = meta['settings']
    fps = frame_rate(s)
    table = np.concatenate([song['table'] for song in data['songs']])
    table = table[table[:, KIND] != STOP]
    seconds = (table[:, END] - table[:, START]) / fps
    class_seconds = tuple(round(float(seconds[table[:, LENGTH] == c].mean()) if (table[:, LENGTH] == c).any()
                                else class_seconds_middle(c, s['n_length_classes'], s['max_block_seconds']), 3)
                          for c in range(s['n_length_classes']))
    pulses, merged = sorted(song['pulse'] for song in data['songs'] if song['pulse'] > 0), []
    for p in pulses:  # runs of pulses each within 1% of the run's first, each as its mean
        if merged and p < merged[-1][0] * 1.01:
            merged[-1].append(p)
        else:
            merged.append([p])
    return dict(class_seconds=class_seconds, pulses=tuple(round(float(np.mean(m)), 5) for m in merged),
                vocab_size=len(meta['vocab']), n_length_classes=s['n_length_classes'],
                max_block_tokens=s['max_block_tokens'], frames_per_second=frame_rate(s),
                style_dim=data['styles']['embeddings'].shape[-1])


def collate(songs, styles, style_rows=None):
    """Songs -> a dict of padded batch tensors named as Model.forward's arguments (block_embeddings'
    too, less the steps and pulse). style_rows overrides each song's style."""
    B = len(songs)
    T = max(len(s['table']) for s in songs)
    L = max(len(s['lyrics'][0]) for s in songs)
    K = songs[0]['tokens'].shape[1]
    table = np.zeros((B, T, len(BLOCK_COLUMNS)), np.int64)
    table[..., KIND] = -1
    tokens, lines = np.zeros((B, T, K), np.int64), np.zeros((B, T), np.int64)
    steps = np.zeros((B, T, K), np.float32)
    lyrics = np.zeros((3, B, L), np.int64)
    for b, s in enumerate(songs):
        n = len(s['table'])
        table[b, :n], tokens[b, :n], lines[b, :n] = s['table'], s['tokens'], s['lines']
        steps[b, :n] = s.get('steps', 0)
        for i, col in enumerate(s['lyrics']):
            lyrics[i, b, :len(col)] = col
    rows = torch.tensor([s['style'] for s in songs] if style_rows is None else style_rows)
    batch = {k: torch.from_numpy(a) for k, a in zip(('table', 'tokens', 'lines', 'lyrics', 'lyric_roles', 'lyric_lines'),
                                                    (table, tokens, lines, *lyrics))}
    if all('steps' in s for s in songs):  # the training targets; a plan to render has none
        batch['steps'] = torch.from_numpy(steps)
        batch['pulse'] = torch.tensor([s['pulse'] for s in songs], dtype=torch.float32)
    return dict(batch, style=styles['embeddings'][rows], style_mask=styles['mask'][rows])


def get_batch(data, batch_size, rng):
    """Random songs, padded to the longest of them, as collate pads them: cut from every song padded once
    (load_data's feed), on the device the feed lives on."""
    picks = rng.choice(len(data['songs']), size=batch_size)
    T, L = data['n_blocks'][picks].max(), data['n_lyrics'][picks].max()
    feed = data['feed']
    index = torch.from_numpy(picks).to(feed['table'].device)
    batch = {k: feed[k][index, :T] for k in ('table', 'tokens', 'lines', 'steps')}  # (B, T, ...)
    batch.update({k: feed[k][index, :L] for k in ('lyrics', 'lyric_roles', 'lyric_lines')})  # (B, L)
    rows = feed['style_rows'][index]
    return dict(batch, pulse=feed['pulse'][index], style=feed['style'][rows], style_mask=feed['style_mask'][rows])


@torch.no_grad()
def evaluate(net, meta, data_dir, device, config):
    """Teacher-forced accuracies on the validation songs (also with every song's style swapped for
    another style's), and plans sampled for their lyrics against their real form. config: the
    checkpoint's training config."""
    config = dict(config, device=device)
    data = load_data(data_dir, meta, 'val', config)
    train = load_data(data_dir, meta, 'train', config)
    songs, styles = data['songs'], data['styles']
    train_table = np.concatenate([s['table'] for s in train['songs']])
    placed_classes = train_table[train_table[:, KIND] != STOP, LENGTH]
    common_class = np.bincount(placed_classes).argmax()

    def accuracies(style_rows=None):
        batch = {k: x.to(device) for k, x in collate(songs, styles, style_rows).items()}
        del batch['steps'], batch['pulse']  # targets, not inputs
        out, table = net.logits(**batch), batch['table']
        kind = table[..., KIND]
        placed = (kind >= 0) & (kind != STOP)
        hit = lambda name, col: (out[name].argmax(-1) == table[..., col])[placed].float().mean().item()
        gap_hit = (out['kind'][..., :2].argmax(-1) == kind)[placed].float().mean().item()  # line or gap
        baseline = (table[..., LENGTH] == int(common_class))[placed].float().mean().item()
        # a line's seconds given its class, by the seconds head and by the class's mean: median |error| / seconds
        truth = net.log_seconds(table)[kind == LINE]
        seconds_error = [(torch.exp(x - truth) - 1).abs().median().item() for x in (out['seconds'][kind == LINE], 0.0)]
        pulse = out['pulse'].argmax(-1).cpu().numpy()  # (B,) which of config.pulses
        return (hit('length', LENGTH), baseline, gap_hit, hit('role', ROLE), seconds_error,
                out['steps'].float().exp().cpu().numpy(), np.array(net.config.pulses or [0.0])[pulse])

    length_acc, length_base, gap_acc, role_acc, seconds_error, steps, pulses = accuracies()
    # the song's pulse against the real one, and the training songs' median pulse's
    real_pulse = np.array([s['pulse'] for s in songs])
    pulsed = real_pulse > 0
    corpus_pulse = np.median([s['pulse'] for s in train['songs'] if s['pulse'] > 0] or [1.0])
    pulse_error, pulse_error_corpus = (float(np.median(np.abs(p / real_pulse[pulsed] - 1))) if pulsed.any() else None
                                       for p in (pulses[pulsed], corpus_pulse))
    # where each syllable starts by the predicted steps in its line's true length, and by an even share
    fps, errors = frame_rate(meta['settings']), dict(rhythm=[], even=[])
    for s, predicted in zip(songs, steps):
        table = s['table']
        truth = rhythm_onsets(table, s['rhythm'])
        sung = sung_syllables(table, truth.shape[1])
        shares = step_shares(predicted[:len(table)], table[:, N_TOKENS], (table[:, END] - table[:, START]) / fps)
        for key, onsets in (('rhythm', rhythm_onsets(table, shares)), ('even', even_onsets(table, truth.shape[1]))):
            errors[key].append(np.abs(onsets - truth)[sung] / fps)
    onset_error, even_error = (float(np.median(np.concatenate(errors[k]))) for k in ('rhythm', 'even'))
    # another style for every song: the next style text of the table that differs from its own
    texts = styles['texts']
    others = [next((r % len(texts) for r in range(s['style'] + 1, s['style'] + len(texts))
                    if texts[r % len(texts)] not in ('', texts[s['style']])), None) for s in songs]
    swapped_acc = accuracies(others)[0] if None not in others else None

    in_order, errors, sampled = [], [], dict(seconds=[], onsets=[], off_grid=[], off_grid_chance=[])
    vocab = meta['vocab']
    starts = lambda shares, seconds: (np.cumsum(shares) - shares) * seconds  # a line's syllable onsets, seconds
    for i, s in enumerate(songs):
        rows = np.flatnonzero(s['table'][:, KIND] == LINE)
        pieces = [dict(text='', tokens=[vocab[t] for t in s['tokens'][r, :s['table'][r, N_TOKENS]]],
                       role=ROLES[s['table'][r, ROLE]]) for r in rows]
        blocks, _ = planner.plan(net, pieces, styles['embeddings'][s['style']], styles['mask'][s['style']],
                               meta['settings'], temperature=1.0, seed=i)
        sung = [b['pinyin'] for b in blocks if b['kind'] == 'line']
        in_order.append(sum(a == ' '.join(p['tokens']) for a, p in zip(sung, pieces)) / len(pieces) if len(sung) == len(pieces) else 0.0)
        real = meta['songs'][s['name']]['seconds']
        errors.append(abs(blocks[-1]['start'] - real) / real)
        for r, b in zip(rows, [b for b in blocks if b['kind'] == 'line']):  # each line's timing against the real one
            seconds, n = (s['table'][r, END] - s['table'][r, START]) / fps, s['table'][r, N_TOKENS]
            sampled['seconds'].append(abs(b['seconds'] / seconds - 1))
            sampled['onsets'].extend(np.abs(starts(np.array(b['rhythm']), b['seconds']) - starts(s['rhythm'][r, :n], seconds)))
        if s['pulse'] > 0:  # the planned syllables against the real song's grid (its pulse, at its phase)
            p, table = s['pulse'], s['table']
            truth = rhythm_onsets(table, s['rhythm'])[sung_syllables(table, s['rhythm'].shape[1])] / fps
            phase = np.angle(np.exp(2j * np.pi * truth / p).sum()) / (2 * np.pi) * p
            planned = np.concatenate([b['start'] + starts(np.array(b['rhythm']), b['seconds'])
                                      for b in blocks if b['kind'] == 'line'])
            off = (planned - phase) / p
            sampled['off_grid'].extend(np.abs(off - np.round(off)) * p)
            sampled['off_grid_chance'].append(p / 4)  # onsets anywhere: a quarter of a pulse
    figures = dict(length_acc=length_acc, length_acc_baseline=length_base, gap_acc=gap_acc, role_acc=role_acc,
                   lines_in_order=float(np.mean(in_order)), length_error_median=float(np.median(errors)),
                   length_acc_swapped_style=swapped_acc, line_seconds_error=seconds_error[0],
                   line_seconds_error_class_mean=seconds_error[1], onset_error=onset_error, onset_error_even=even_error,
                   sampled_line_seconds_error=float(np.median(sampled['seconds'])),
                   sampled_onset_error=float(np.median(sampled['onsets'])), pulse_error=pulse_error,
                   pulse_error_corpus=pulse_error_corpus,
                   sampled_off_grid=float(np.median(sampled['off_grid'])) if sampled['off_grid'] else None,
                   off_grid_chance=float(np.median(sampled['off_grid_chance'])) if sampled['off_grid'] else None)
    print(f"{len(songs)} validation songs; teacher-forced unless it says sampled")
    print(f"length-class accuracy     {length_acc:.3f}  (always the most common class: {length_base:.3f})")
    if swapped_acc is None:
        print("  with another song's style: skipped, the songs have fewer than two distinct styles")
    else:
        print(f"  with another song's style {swapped_acc:.3f}")
    print(f"gap-versus-line accuracy  {gap_acc:.3f}")
    print(f"role accuracy             {role_acc:.3f}")
    print(f"a line's seconds given its class: median error {seconds_error[0]:.3f} of its length (the class's mean: "
          f"{seconds_error[1]:.3f})")
    print(f"syllable onsets by the planned rhythm: median error {onset_error:.3f} s (an even share of the line: "
          f"{even_error:.3f} s)")
    print(f"sampled plans: lines placed in order {figures['lines_in_order']:.3f}, "
          f"median |planned - real length| / real {figures['length_error_median']:.3f}; a line's seconds "
          f"{figures['sampled_line_seconds_error']:.3f} of its length, its onsets {figures['sampled_onset_error']:.3f} s")
    if pulse_error is not None:
        print(f"the song's pulse: median error {pulse_error:.4f} of it (the training songs' median pulse: "
              f"{pulse_error_corpus:.3f}); sampled plans' syllables off the real song's grid: median "
              f"{figures['sampled_off_grid']:.3f} s (anywhere: {figures['off_grid_chance']:.3f} s)")
    return figures
