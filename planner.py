"""
Planning a song for new lyrics with a trained Composer, and plans as JSON files.

    pieces = lyric_lines(text, max_block_tokens)        # the lines to sing, long ones cut
    blocks, pulse = plan(composer_model, pieces, style_embedding, style_mask, settings)
    write_plan('song.plan.json', blocks, style_text, pulse)   # edit it by hand, then sample.py --plan=
    blocks, style_text, pulse = read_plan('song.plan.json')

A plan is a list of block dicts: kind ('line', 'gap', 'end'), role, start and seconds, finish,
length_class, and for a line its text, pinyin and rhythm (each syllable's share of the line's
time; an even share if it is left out). lyrics.plan_arrays turns it into the block table the
models read and where each syllable starts.

Plans are put on the song's pulse (the Composer's, or one you give): every block ends, and
every syllable starts, a whole number of pulses from the song's start. The Decoder sings on the
beat it lays down; a line that starts a latent row off it loses its consonants, and the
Composer's block lengths, right to 1.6% each, add up to that within a few lines
(docs/experiments.md, 2026-11-23).
"""
import json

import numpy as np
import torch
import torch.nn.functional as F

from lyrics import KINDS, LINE, ROLES, STOP, class_seconds, encode, line_numbers, parse_lyrics, plan_arrays, split_line
from lyrics import length_class as length_class_of


def lyric_lines(text, max_block_tokens):
    """Lyrics text -> the lines to sing in order, long ones cut into pieces: list of
    dict(text, tokens, role). Raises ValueError when no line has a singable syllable."""
    song = parse_lyrics(text)
    pieces = []
    for line in song['lines']:
        pieces += [dict(text=line['text'], tokens=piece, role=line['role'])
                   for piece in split_line(line['tokens'], max_block_tokens)]
    if not pieces:
        raise ValueError("the lyrics have no singable line (no Hanzi, digits or Latin words)")
    return pieces


def step_shares(steps, n_syllables, seconds):
    """Syllable steps (P, K) seconds, syllable counts (P,) and line lengths (P,) seconds -> each
    syllable's share of its line (P, K), as rhythm gives them; the last syllable takes what is
    left, at least half an even share (longer steps are scaled down to leave it that)."""
    k, n = np.arange(steps.shape[1]), np.asarray(n_syllables)[:, None]
    seconds = np.maximum(np.asarray(seconds, np.float64)[:, None], 1e-6)
    s = np.where(k < n - 1, steps, 0.0)
    room = seconds * (1 - 0.5 / np.maximum(n, 1))
    s = s * np.minimum(1.0, room / np.maximum(s.sum(1, keepdims=True), 1e-9))
    shares = s / seconds
    return np.where(k == n - 1, 1 - shares.sum(1, keepdims=True), shares).astype(np.float32)


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


def on_pulse(start, seconds, steps, pulse):
    """A block starting at `start` (on the grid) and `seconds` long, put on the grid of `pulse`:
    its end to the nearest pulse, at least one pulse on; a line's syllables (steps: the (n - 1,)
    seconds between them) each a whole number of pulses, at least one, after the one before, and
    the line long enough to hold one pulse of its last. -> (seconds, shares of the line or None)"""
    first = round(start / pulse)
    end = max(round((start + seconds) / pulse), first + 1)
    if steps is None:
        return (end - first) * pulse, None
    onsets = np.concatenate([[0], np.cumsum(np.maximum(np.round(steps / pulse), 1))])  # pulses after the line's start
    pulses = max(end - first, int(onsets[-1]) + 1)
    return pulses * pulse, np.diff(np.append(onsets, pulses)) / pulses


@torch.no_grad()
def plan(model, pieces, style_embedding, style_mask, settings, temperature=1.0, seed=0, cfg_scale=1.0, max_blocks=None,
         pulse=-1.0):
    """Plan a song for the lyric lines `pieces` (from lyric_lines): at each step the only choices
    are the next unsung line, a gap, or the end (once every line is placed), and a role that fits
    where the block stands (allowed_roles). pulse: seconds, the grid the plan is put on; < 0:
    the Composer's; 0: none (as sample.py's --pulse and the plan JSON's).
    -> (list of block dicts (the plan JSON's blocks), the pulse).
    style_embedding (S, D), style_mask (S,) from style.embed_styles; settings: the cache's."""
    config, device = model.config, next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    # the lyric sequence the model cross-attends to: each syllable with its role and line number
    syllables = [(t, ROLES.index(p['role']), n + 1) for n, p in enumerate(pieces) for t in encode(p['tokens'])]
    lyrics = [torch.tensor([column], device=device) for column in zip(*syllables)]
    style = style_embedding[None].to(device), style_mask[None].to(device)
    conditions = [model.conditions(*lyrics, *style)]
    if cfg_scale != 1.0:  # the null style's too, for classifier-free guidance
        conditions.append(model.conditions(*lyrics, *style, drop_style=torch.ones(1, dtype=torch.bool, device=device)))

    def sample(logits, allowed=None):  # logits: one per condition, guided into one
        logits = (logits[0] if len(logits) == 1 else logits[1] + cfg_scale * (logits[0] - logits[1])).float().cpu()
        if allowed is not None:
            logits = logits.masked_fill(~allowed, float('-inf'))
        if temperature <= 0:
            return int(logits.argmax())
        return int(torch.multinomial(F.softmax(logits / temperature, -1), 1, generator=generator))

    def model_input(blocks):  # the plan so far as the model reads it: (1, P, ...) tensors
        table, tokens, _ = plan_arrays(blocks, settings)
        return [torch.from_numpy(a)[None].to(device) for a in (table, tokens, line_numbers(table))]

    if pulse < 0:  # the song's pulse: a choice, like the blocks' below
        pulse = config.pulses[sample([model.pulse_logits(c)[0] for c in conditions])] if config.pulses else 0.0
    blocks, next_line, seconds = [], 0, 0.0
    max_blocks = max_blocks or config.max_blocks - 1
    while True:
        start = model.kind.weight[len(KINDS)].view(1, 1, -1)
        x = torch.cat([start, model.embed(*model_input(blocks))], dim=1)
        h = [model.hidden(x, c)[:, -1:] for c in conditions]  # (1, 1, C) each
        # 1. what the next block is: the next line, a gap (an outro too), or the end once every line is sung
        done = next_line == len(pieces)
        allowed = torch.tensor([not done, len(blocks) < max_blocks, done])
        kind = sample([model.kind_head(h_)[0, 0] for h_ in h], allowed)
        if kind == STOP:
            return blocks + [dict(kind='end', start=round(seconds, 3))], pulse
        # 2. its length, role and finish, given what it is
        block = dict(kind=KINDS[kind], role='none', start=round(seconds, 3), seconds=0.0)
        if kind == LINE:
            block.update(text=pieces[next_line]['text'], pinyin=' '.join(pieces[next_line]['tokens']))
        what = [a[:, -1:] for a in model_input(blocks + [block])]  # (1, 1, ...): the block's content
        out = [model.heads(h_, *what) for h_ in h]
        length_class = sample([o['length'][0, 0] for o in out])
        role = sample([o['role'][0, 0] for o in out], allowed_roles(kind, pieces, next_line))
        finish = sample([o['finish'][0, 0] for o in out])
        length = (config.class_seconds[length_class] if config.class_seconds else
                  class_seconds(length_class, config.n_length_classes, settings['max_block_seconds']))
        block.update(role=ROLES[role], seconds=round(length, 3), finish=bool(finish), length_class=length_class)
        # 3. given its length class too, its seconds inside the class and, for a line, its rhythm: read
        # with the style, unguided (guidance extrapolates, which suits a choice, not a measure)
        out = model.heads(h[0], *[a[:, -1:] for a in model_input(blocks + [block])])
        exact = length * float(torch.exp(out['seconds'][0, 0]))
        if length_class_of(exact, settings['n_length_classes'], settings['max_block_seconds']) == length_class:
            length = block['seconds'] = round(exact, 3)  # else the class's mean: the block keeps the class it was given
        steps = shares = None
        if kind == LINE:  # each syllable's share of the line's time, from the seconds between syllables
            n = len(pieces[next_line]['tokens'])
            steps = torch.exp(out['steps'][0, :, :n].float()).cpu().numpy()  # (1, n)
            shares = step_shares(steps, [n], [length])[0]
        if pulse:
            length, shares = on_pulse(seconds, length, None if steps is None else steps[0, :n - 1], pulse)
            block.update(seconds=round(length, 3), length_class=length_class_of(
                length, settings['n_length_classes'], settings['max_block_seconds']))
        if shares is not None:
            block['rhythm'] = [round(float(x), 4) for x in shares]
        blocks.append(block)
        next_line += kind == LINE
        seconds += length


def cut_plan(blocks, max_seconds):
    """The blocks that end by max_seconds, and the end where the last of them ends: a long plan cut
    between blocks, never inside a line, so the song sung and the plan saved beside it agree.
    Raises ValueError when not even the first block fits."""
    kept = [b for b in blocks[:-1] if b['start'] + b['seconds'] <= max_seconds + 0.01]  # 10 ms for rounding
    if len(kept) == len(blocks) - 1:
        return blocks
    if not kept:
        raise ValueError(f"max_seconds={max_seconds} is shorter than the plan's first block ({blocks[0]['seconds']} s)")
    return kept + [dict(kind='end', start=round(kept[-1]['start'] + kept[-1]['seconds'], 3))]


def write_plan(path, blocks, style_text, pulse=0.0):
    """The plan as JSON; its pulse is there for whoever edits it (rendering needs only the blocks)."""
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(dict(style=style_text, pulse=round(pulse, 5), blocks=blocks), f, ensure_ascii=False, indent=1)


def read_plan(path):
    """A plan JSON (as written by write_plan, maybe edited by hand) -> (blocks, style text, pulse).
    Raises ValueError with the reason when it does not parse or its times overlap."""
    try:
        with open(path, encoding='utf-8') as f:
            saved = json.load(f)
        blocks, style_text, pulse = saved['blocks'], saved.get('style', ''), float(saved.get('pulse', 0.0))
        for i, b in enumerate(blocks):
            if b['kind'] not in KINDS or (b['kind'] != 'end' and (b['role'] not in ROLES or float(b['seconds']) <= 0)):
                raise ValueError(f"block {i} has a bad kind, role or length")
            if b['kind'] == 'line' and not b.get('pinyin', '').split():
                raise ValueError(f"line block {i} has no pinyin")
            shares = b.get('rhythm')
            if shares is not None and (len(shares) != len(b['pinyin'].split()) or min(map(float, shares)) <= 0):
                raise ValueError(f"line block {i}'s rhythm needs one positive share per pinyin syllable")
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"cannot read plan {path}: {type(e).__name__} {e}") from None
    for i, (a, b) in enumerate(zip(blocks, blocks[1:])):
        if float(b['start']) < float(a['start']) + float(a.get('seconds', 0)) - 0.01:  # 10 ms for rounding
            raise ValueError(f"plan {path}: block {i + 1} starts at {b['start']} s, before block {i} ends")
    return blocks, style_text, pulse


