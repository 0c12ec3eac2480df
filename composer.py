"""
The Composer: a causal transformer over a song's blocks (lyric lines, gaps, the end) that plans
the song's form from its lyrics and style.

Step t sees the blocks before it and predicts block t in two parts, the way it is sampled:
first its kind (line / gap / end), then, given what the block is (its kind and, for a line, its
syllables and line number), its length class, role and finish tag. A tokens head predicts the
next line's syllables too (an auxiliary task; when planning, the next line is always the
user's next unsung line). Every layer cross-attends to the song's whole lyric token sequence
(each token with its role and line number) and to the style matrix (style.py). The style is
dropped with probability `style_drop` in training, for classifier-free guidance.

`plan(...)` writes a plan for new lyrics; `block_embeddings(...)` gives the hidden states over a
plan that the Decoder cross-attends to.
"""
import json
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lyrics import BLOCK_COLUMNS, KINDS, ROLES
from lyrics import class_seconds as class_seconds_middle
from transformer import Block, drop_condition, init_weights, scale_residual_projections, time_features

KIND, ROLE, LENGTH, FINISH, START, END, N_TOKENS = range(len(BLOCK_COLUMNS))
LINE, GAP, STOP = range(len(KINDS))


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


class Model(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.config = config
        C = config.n_embd
        self.token = nn.Embedding(config.vocab_size, C)  # also the tokens head's output matrix
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
        """h (B, T, C) states before block t; -> logits dict for block t (the attributes given its content)."""
        a = self.attr(F.gelu(self.ln_attr(h + self.content(table, tokens, lines))))
        slots = h.unsqueeze(2) + self.slot.weight  # (B, T, max_block_tokens, C)
        return dict(kind=self.kind_head(h), length=self.length_head(a), role=self.role_head(a),
                    finish=self.finish_head(a), tokens=slots @ self.token.weight.T)

    def logits(self, table, tokens, lines, lyrics, lyric_roles, lyric_lines, style, style_mask, drop_style=None):
        """Teacher-forced: table (B, T, 7), tokens (B, T, K), lines (B, T) -> logits for every block."""
        B = table.shape[0]
        start = self.kind.weight[len(KINDS)].expand(B, 1, -1)
        x = torch.cat([start, self.embed(table, tokens, lines)[:, :-1]], dim=1)  # step t sees blocks < t
        h = self.hidden(x, self.conditions(lyrics, lyric_roles, lyric_lines, style, style_mask, drop_style))
        return self.heads(h, table, tokens, lines)

    def forward(self, table, tokens, lines, lyrics, lyric_roles, lyric_lines, style, style_mask):
        drop = torch.rand(table.shape[0], device=table.device) < self.config.style_drop if self.training else None
        out = self.logits(table, tokens, lines, lyrics, lyric_roles, lyric_lines, style, style_mask, drop)
        valid = table[..., KIND] >= 0  # padding has kind -1
        placed = valid & (table[..., KIND] != STOP)
        kind_loss = F.cross_entropy(out['kind'][valid], table[..., KIND][valid])
        attr_loss = sum(F.cross_entropy(out[name][placed], table[..., col][placed])
                        for name, col in (('length', LENGTH), ('role', ROLE), ('finish', FINISH)))
        is_line = table[..., KIND] == LINE
        token_loss = F.cross_entropy(out['tokens'][is_line].flatten(0, 1), tokens[is_line].flatten(), ignore_index=0)
        return kind_loss + attr_loss + 0.25 * token_loss

    @torch.no_grad()
    def block_embeddings(self, table, tokens, lines, lyrics, lyric_roles, lyric_lines, style, style_mask, drop_style=None):
        """Hidden states over a plan, (B, T, C): state t has seen blocks 0..t. The Decoder's condition."""
        return self.hidden(self.embed(table, tokens, lines),
                           self.conditions(lyrics, lyric_roles, lyric_lines, style, style_mask, drop_style))


# -----------------------------------------------------------------------------
# data: a song's block table, tokens and lyric sequence, and its style's embedding

def line_numbers(table):
    """(T, 7) -> (T,) for each block the number of its lyric line (1, 2, ...), 0 before the first."""
    return np.cumsum(table[:, KIND] == LINE)


def lyric_sequence(table, tokens):
    """The song's lyric tokens in order, with each token's role and line number: 3 x (L,)."""
    rows = np.flatnonzero(table[:, KIND] == LINE)
    if len(rows) == 0:
        return np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64)
    seq = [(tok, table[r, ROLE], n + 1) for n, r in enumerate(rows) for tok in tokens[r, :table[r, N_TOKENS]]]
    return tuple(np.array(col, dtype=np.int64) for col in zip(*seq))


def load_data(data_dir, meta, split, config):
    """Every song of the split that has lyrics: its blocks and lyric sequence, and the style table."""
    import style as style_encoder
    styles = style_encoder.style_table(data_dir, meta, config['style_model'], config['style_tokens'])
    row = {text: i for i, text in enumerate(styles['texts'])}
    songs = []
    for name in meta['split'][split]:
        entry = meta['songs'][name]
        if not entry.get('n_blocks'):
            continue  # no lyrics: the autoencoder's only
        folder = os.path.join(data_dir, 'songs', name)
        table, tokens = np.load(os.path.join(folder, 'blocks.npy')), np.load(os.path.join(folder, 'tokens.npy'))
        songs.append(dict(name=name, table=table, tokens=tokens, lines=line_numbers(table),
                          lyrics=lyric_sequence(table, tokens), style=row[entry.get('style', '')]))
    return dict(songs=songs, styles=styles)


def data_args(meta, data):
    """Model arguments from the cache, and the mean length in seconds of each length class's
    blocks: a planned block gets its class's mean, which is what the corpus's blocks of that class last."""
    s = meta['settings']
    fps = s['sample_rate'] / s['hop_length']
    table = np.concatenate([song['table'] for song in data['songs']])
    table = table[table[:, KIND] != STOP]
    seconds = (table[:, END] - table[:, START]) / fps
    class_seconds = tuple(round(float(seconds[table[:, LENGTH] == c].mean()) if (table[:, LENGTH] == c).any()
                                else class_seconds_middle(c, s['n_length_classes'], s['max_block_seconds']), 3)
                          for c in range(s['n_length_classes']))
    return dict(class_seconds=class_seconds, vocab_size=len(meta['vocab']), n_length_classes=s['n_length_classes'],
                max_block_tokens=s['max_block_tokens'], frames_per_second=s['sample_rate'] / s['hop_length'],
                style_dim=data['styles']['embeddings'].shape[-1])


def collate(songs, styles, style_rows=None):
    """Songs -> a dict of padded batch tensors named as Model.forward's arguments. style_rows
    overrides each song's style."""
    B = len(songs)
    T = max(len(s['table']) for s in songs)
    L = max(len(s['lyrics'][0]) for s in songs)
    K = songs[0]['tokens'].shape[1]
    table = np.zeros((B, T, len(BLOCK_COLUMNS)), np.int64)
    table[..., KIND] = -1
    tokens, lines = np.zeros((B, T, K), np.int64), np.zeros((B, T), np.int64)
    lyrics = np.zeros((3, B, L), np.int64)
    for b, s in enumerate(songs):
        n = len(s['table'])
        table[b, :n], tokens[b, :n], lines[b, :n] = s['table'], s['tokens'], s['lines']
        for i, col in enumerate(s['lyrics']):
            lyrics[i, b, :len(col)] = col
    rows = torch.tensor([s['style'] for s in songs] if style_rows is None else style_rows)
    batch = {k: torch.from_numpy(a) for k, a in zip(('table', 'tokens', 'lines', 'lyrics', 'lyric_roles', 'lyric_lines'),
                                                    (table, tokens, lines, *lyrics))}
    return dict(batch, style=styles['embeddings'][rows], style_mask=styles['mask'][rows])


def get_batch(data, batch_size, rng):
    picks = rng.choice(len(data['songs']), size=batch_size)
    return collate([data['songs'][i] for i in picks], data['styles'])


# -----------------------------------------------------------------------------
# planning new lyrics, and plans as JSON

def lyric_lines(text, max_block_tokens):
    """Lyrics text -> the lines to sing in order, long ones cut into pieces: list of
    dict(text, tokens, role). Raises ValueError when no line has a singable syllable."""
    from lyrics import parse_lyrics
    song = parse_lyrics(text)
    pieces = []
    for line in song['lines']:
        toks = line['tokens']
        for k in range(0, len(toks), max_block_tokens):
            pieces.append(dict(text=line['text'], tokens=toks[k:k + max_block_tokens], role=line['role']))
    if not pieces:
        raise ValueError("the lyrics have no singable line (no Hanzi, digits or Latin words)")
    return pieces


def allowed_roles(kind, pieces, next_line):
    """The roles a block may take where it stands, as in the corpus (lyrics.build_blocks): a line
    takes its section header's role when it has one; 'intro' is a gap before the first line,
    'outro' a gap after the last. -> bool over ROLES."""
    allowed = torch.ones(len(ROLES), dtype=torch.bool)
    if kind == LINE:
        role = pieces[next_line]['role']
        if role != 'none':
            return torch.tensor([r == role for r in ROLES])
        allowed[[ROLES.index('intro'), ROLES.index('outro'), ROLES.index('inst')]] = False
    else:
        allowed[ROLES.index('intro')] = next_line == 0
        allowed[ROLES.index('outro')] = next_line == len(pieces)
    return allowed


@torch.no_grad()
def plan(model, pieces, style_embedding, style_mask, settings, temperature=1.0, seed=0, cfg_scale=1.0, max_blocks=None):
    """Plan a song for the lyric lines `pieces` (from lyric_lines): at each step the only choices
    are the next unsung line, a gap, or the end (once every line is placed), and a role that fits
    where the block stands (allowed_roles). -> list of block dicts (the plan JSON's blocks).
    style_embedding (S, D), style_mask (S,) from style.embed_styles; settings: the cache's (for
    max_block_seconds)."""
    from lyrics import encode
    cfg = model.config
    device = next(model.parameters()).device
    gen = torch.Generator(device='cpu').manual_seed(seed)
    K = cfg.max_block_tokens
    # the lyric sequence the model cross-attends to
    ids = [(i, ROLES.index(p['role']), n + 1) for n, p in enumerate(pieces) for i in encode(p['tokens'])]
    lyric = [torch.tensor([col], device=device) for col in zip(*ids)]
    style = style_embedding[None].to(device), style_mask[None].to(device)
    both = cfg_scale != 1.0
    conds = model.conditions(*lyric, *style)
    if both:  # the unconditional (null-style) conditions too, for classifier-free guidance
        uncond = model.conditions(*lyric, *style, drop_style=torch.ones(1, dtype=torch.bool, device=device))

    def sample(logits, allowed=None):
        logits = logits.float().cpu()
        if allowed is not None:
            logits = logits.masked_fill(~allowed, float('-inf'))
        if temperature <= 0:
            return int(logits.argmax())
        return int(torch.multinomial(F.softmax(logits / temperature, -1), 1, generator=gen))

    table = np.zeros((0, len(BLOCK_COLUMNS)), np.int64)
    tokens = np.zeros((0, K), np.int64)
    blocks, next_line, seconds = [], 0, 0.0
    max_blocks = max_blocks or cfg.max_blocks - 1
    while True:
        t = torch.from_numpy(table)[None].to(device)
        tk = torch.from_numpy(tokens)[None].to(device)
        ln = torch.from_numpy(line_numbers(table) if len(table) else np.zeros(0, np.int64))[None].to(device)
        start = model.kind.weight[len(KINDS)].view(1, 1, -1)
        x = torch.cat([start, model.embed(t, tk, ln)], dim=1)
        h = model.hidden(x, conds)[:, -1:]
        if both:
            h_u = model.hidden(x, uncond)[:, -1:]
        # 1. what the next block is: the next line, a gap (an outro too), or the end once every line is sung
        done = next_line == len(pieces)
        allowed = torch.tensor([not done, True, done])
        if len(blocks) >= max_blocks:
            allowed = torch.tensor([False, False, True]) if done else torch.tensor([True, False, False])
        kind_logits = model.kind_head(h)[0, 0]
        if both:
            kind_uncond = model.kind_head(h_u)[0, 0]
            kind_logits = kind_uncond + cfg_scale * (kind_logits - kind_uncond)
        kind = sample(kind_logits, allowed)
        row = np.zeros(len(BLOCK_COLUMNS), np.int64)
        row[KIND], row[START] = kind, round(seconds * cfg.frames_per_second)
        tok_row = np.zeros(K, np.int64)
        if kind == LINE:
            ids_ = encode(pieces[next_line]['tokens'])
            tok_row[:len(ids_)], row[N_TOKENS] = ids_, len(ids_)
        if kind == STOP:
            blocks.append(dict(kind='end', start=round(seconds, 3)))
            return blocks
        # 2. its length, role and finish, given what it is
        row_t = torch.from_numpy(row)[None, None].to(device)
        tok_t = torch.from_numpy(tok_row)[None, None].to(device)
        ln_t = torch.tensor([[next_line + (kind == LINE)]], device=device)
        out = model.heads(h, row_t, tok_t, ln_t)
        if both:
            out_u = model.heads(h_u, row_t, tok_t, ln_t)
            out = {k: out_u[k] + cfg_scale * (out[k] - out_u[k]) for k in out}
        row[LENGTH] = sample(out['length'][0, 0])
        row[ROLE] = sample(out['role'][0, 0], allowed_roles(kind, pieces, next_line))
        row[FINISH] = sample(out['finish'][0, 0])
        length = (cfg.class_seconds[row[LENGTH]] if cfg.class_seconds else
                  class_seconds_middle(int(row[LENGTH]), cfg.n_length_classes, settings['max_block_seconds']))
        block = dict(kind=KINDS[kind], role=ROLES[row[ROLE]], start=round(seconds, 3), seconds=round(length, 3),
                     finish=bool(row[FINISH]), length_class=int(row[LENGTH]))
        if kind == LINE:
            block.update(text=pieces[next_line]['text'], pinyin=' '.join(pieces[next_line]['tokens']))
            next_line += 1
        blocks.append(block)
        seconds += length
        row[END] = round(seconds * cfg.frames_per_second)
        table, tokens = np.concatenate([table, row[None]]), np.concatenate([tokens, tok_row[None]])


def write_plan(path, blocks, style_text):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(dict(style=style_text, blocks=blocks), f, ensure_ascii=False, indent=1)


def read_plan(path):
    """A plan JSON (as written by write_plan, maybe edited by hand) -> (blocks, style text).
    Raises ValueError with the reason when it does not parse or its times overlap."""
    try:
        with open(path, encoding='utf-8') as f:
            plan_ = json.load(f)
        blocks, style_text = plan_['blocks'], plan_.get('style', '')
        for i, b in enumerate(blocks):
            if b['kind'] not in KINDS or (b['kind'] != 'end' and (b['role'] not in ROLES or float(b['seconds']) <= 0)):
                raise ValueError(f"block {i} has a bad kind, role or length")
            if b['kind'] == 'line' and not b.get('pinyin', '').split():
                raise ValueError(f"line block {i} has no pinyin")
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"cannot read plan {path}: {type(e).__name__} {e}") from None
    for i, (a, b) in enumerate(zip(blocks, blocks[1:])):
        if float(b['start']) < float(a['start']) + float(a.get('seconds', 0)) - 0.01:  # 10 ms for rounding
            raise ValueError(f"plan {path}: block {i + 1} starts at {b['start']} s, before block {i} ends")
    return blocks, style_text


def plan_blocks(table, tokens, vocab, frames_per_second):
    """A block table (P, 7) and tokens (P, K) as prepare.py caches them -> plan blocks (as plan()
    writes them: a real song's plan can be drawn, edited and rendered); the inverse of plan_arrays."""
    blocks = []
    for row, ids in zip(table, tokens):
        start = round(float(row[START]) / frames_per_second, 3)
        if row[KIND] == STOP:
            blocks.append(dict(kind='end', start=start))
            continue
        block = dict(kind=KINDS[row[KIND]], role=ROLES[row[ROLE]], start=start,
                     seconds=round(float(row[END] - row[START]) / frames_per_second, 3), finish=bool(row[FINISH]),
                     length_class=int(row[LENGTH]))
        if row[KIND] == LINE:
            block.update(text='', pinyin=' '.join(vocab[t] for t in ids[:row[N_TOKENS]]))
        blocks.append(block)
    return blocks


def plan_arrays(blocks, settings):
    """Plan blocks (from plan() or read_plan) -> the block table (P, 7) and tokens (P, K) that
    prepare.py would have cached for them; a length edited by hand gets its length class."""
    from lyrics import encode, length_class
    fps = settings['sample_rate'] / settings['hop_length']
    table = np.zeros((len(blocks), len(BLOCK_COLUMNS)), np.int64)
    tokens = np.zeros((len(blocks), settings['max_block_tokens']), np.int64)
    for i, b in enumerate(blocks):
        seconds = float(b.get('seconds', 0.0))
        table[i, [KIND, START, END]] = KINDS.index(b['kind']), round(float(b['start']) * fps), round((float(b['start']) + seconds) * fps)
        if b['kind'] != 'end':
            table[i, [ROLE, LENGTH, FINISH]] = (ROLES.index(b['role']),
                                                length_class(seconds, settings['n_length_classes'], settings['max_block_seconds']),
                                                bool(b.get('finish', False)))
        if b['kind'] == 'line':
            ids = encode(b['pinyin'].split())[:settings['max_block_tokens']]
            tokens[i, :len(ids)], table[i, N_TOKENS] = ids, len(ids)
    return table, tokens
