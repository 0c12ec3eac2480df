"""
Lyrics in, blocks out: the text side that prepare.py, the Composer and sample.py share.

    text = read_lyrics('song/lyrics.txt')         # UTF-8, else GB18030
    song = parse_lyrics(text)                     # lines with role and LRC times (or None)
    lines, timing, notes = place_lines(song, seconds)   # times for every line, stamped or estimated
    blocks = build_blocks(song, lines, seconds, fps)   # the song as a plan: line, gap and end blocks
    table, tokens, onsets = plan_arrays(blocks, settings)   # the block table the models read
    blocks = plan_blocks(table, tokens, vocab, fps, onsets)  # and back

One form for a block and one for a syllable's timing, each way. A block is a dict, as planner.py
writes it to a plan's JSON (kind, role, start and seconds, finish, and a line's text, pinyin and
rhythm: its syllables' shares of its time), because people read and edit plans; the models read
the block table (P, len(BLOCK_COLUMNS)), defined here with its column indices (KIND, ...), and
the frame each syllable starts at, onsets (P, K): prepare.py aligns these. rhythm and
rhythm_onsets turn one timing into the other; the Composer's seconds between syllables are its
own (composer.syllable_steps, planner.step_shares).

Written rules for what people actually paste (each has a test):
- Section headers on their own line: [verse], [Verse 2], [PRE-CHORUS], [hook], [inst] ...
  Unknown English words in brackets are headers with role 'none'.
- LRC: one or more [mm:ss], [mm:ss.xx], [mm:ss.xxx] stamps at the start of a line (several =
  the line is sung at each time); a stamp with no text ends the line before it; header tags
  ([ti:], [ar:], [offset:+500] ...) are read, and offset shifts every stamp.
- A song is 'lrc'-timed only if every lyric line has a stamp; otherwise its stamps are ignored
  and times are estimated from syllable counts ('estimated'; prepare.py can align them instead).
- Text: Hanzi become pinyin with tone 1-5 (5 = neutral), read in context for polyphones;
  digits are read one by one in Mandarin; a Latin word becomes one '<en>' token per vowel
  group, less a silent final e (we keep its rhythm, not its sound); punctuation and emoji are
  dropped; other letters (kana, Hangul, bopomofo, Cyrillic ...) are dropped with a note, and a
  character pypinyin has no reading for is sung as '<unk>' with a note.
"""
import functools
import hashlib
import re
import unicodedata

import numpy as np
from pypinyin import Style, lazy_pinyin
from pypinyin.contrib.tone_convert import to_normal
from pypinyin.pinyin_dict import pinyin_dict

from audio import frame_rate

ROLES = ['none', 'intro', 'verse', 'prechorus', 'chorus', 'bridge', 'outro', 'inst']
SECTION_NAMES = {'intro': 'intro', 'verse': 'verse', 'prechorus': 'prechorus', 'chorus': 'chorus',
                 'hook': 'chorus', 'refrain': 'chorus', 'bridge': 'bridge', 'outro': 'outro',
                 'ending': 'outro', 'end': 'outro', 'inst': 'inst', 'instrumental': 'inst',
                 'interlude': 'inst', 'solo': 'inst', 'break': 'inst'}
KINDS = ['line', 'gap', 'end']
SPECIALS = ['<pad>', '<unk>', '<en>']
DIGITS = ['ling2', 'yi1', 'er4', 'san1', 'si4', 'wu3', 'liu4', 'qi1', 'ba1', 'jiu3']
# columns of a song's blocks array, in this order
BLOCK_COLUMNS = ['kind', 'role', 'length_class', 'finish', 'start_frame', 'end_frame', 'n_tokens']
KIND, ROLE, LENGTH, FINISH, START, END, N_TOKENS = range(len(BLOCK_COLUMNS))  # their indices
LINE, GAP, STOP = range(len(KINDS))  # values of the kind column

STAMP = re.compile(r'\s*\[(\d+):(\d{1,2}(?:[.:]\d{1,3})?)\]')
LRC_TAG = re.compile(r'^\[([A-Za-z#]+):(.*)\]$')
HEADER = re.compile(r'^\[\s*([A-Za-z][A-Za-z \-_]*?)[\s\-_]*\d*\s*\]$')
PIECES = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]+|[A-Za-z]+(?:'[A-Za-z]+)*|\d")
VOWEL_GROUPS = re.compile(r'[aeiouy]+')
INITIALS = ('zh', 'ch', 'sh', 'b', 'p', 'm', 'f', 'd', 't', 'n', 'l', 'g', 'k', 'h', 'j', 'q', 'x', 'r', 'z',
            'c', 's', 'y', 'w')  # the two-letter ones first: 'zh' before 'z'


@functools.lru_cache(maxsize=1)
def vocabulary():
    """Every pinyin syllable pypinyin knows, with tones 1-5, after the special tokens. Fixed, so
    that caches and checkpoints made from different corpora share token ids."""
    bases = {to_normal(p) for readings in pinyin_dict.values() for p in readings.split(',')}
    return SPECIALS + [base + tone for base in sorted(bases) for tone in '12345']


@functools.lru_cache(maxsize=1)
def vocabulary_hash():
    """A fingerprint of the vocabulary: another pypinyin could renumber the tokens, so every cache
    and checkpoint keeps this (prepare.py puts it in the settings) and a mismatch is refused."""
    return hashlib.sha1('\n'.join(vocabulary()).encode('utf-8')).hexdigest()[:12]


def split_syllable(token):
    """'zhuang1' -> ['zh', 'uang1'];  'ai4' -> ['ai4'];  'n2' -> ['n2'] (a final needs a vowel's place)."""
    for initial in INITIALS:
        if token.startswith(initial) and len(token) > len(initial) + 1:  # + 1: the tone digit
            return [initial, token[len(initial):]]
    return [token]


@functools.lru_cache(maxsize=1)
def syllable_parts():
    """Every vocabulary token as (initial, final, tone) ids, int64 (V, 3), 0 = none: 'zhuang1' ->
    ('zh', 'uang', 1); 'ai4' -> (none, 'ai', 4); a special token -> (none, none, none). A model
    that embeds a syllable as the sum of its parts learns each vowel from every syllable that
    sings it; there are some 40 finals against some 400 syllables in common use."""
    split = [split_syllable(t) for t in vocabulary()[len(SPECIALS):]]
    finals = sorted({parts[-1][:-1] for parts in split})
    parts = np.zeros((len(vocabulary()), 3), np.int64)
    for i, p in enumerate(split, start=len(SPECIALS)):
        parts[i] = (INITIALS.index(p[0]) + 1 if len(p) == 2 else 0, finals.index(p[-1][:-1]) + 1, int(p[-1][-1]))
    return parts


@functools.lru_cache(maxsize=1)
def token_ids():
    return {token: i for i, token in enumerate(vocabulary())}


def tokenize(text):
    """A line of lyrics -> list of syllable tokens ('ni3', 'hao3', '<en>', ...)."""
    tokens = []
    for piece in PIECES.findall(unicodedata.normalize('NFKC', text)):
        if piece.isdigit():
            tokens.append(DIGITS[int(piece)])
        elif piece.isascii():
            word = piece.lower()
            silent_e = word.endswith('e') and not word.endswith(('le', 'ee'))  # love, time: one syllable
            tokens += ['<en>'] * max(1, len(VOWEL_GROUPS.findall(word)) - silent_e)
        else:  # a run of Hanzi, converted as a whole so that phrases pick the right reading
            pinyin = lazy_pinyin(piece, style=Style.TONE3, neutral_tone_with_five=True)
            tokens += [t if t in token_ids() else '<unk>' for t in pinyin]  # no reading: the character itself
    return tokens


def encode(tokens):
    ids = token_ids()
    return [ids.get(t, ids['<unk>']) for t in tokens]


def read_lyrics(path):
    """Text of a lyrics file: UTF-8 (with or without BOM), else GB18030, else ValueError."""
    data = open(path, 'rb').read()
    for encoding in ('utf-8-sig', 'gb18030'):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    raise ValueError(f"{path} is neither UTF-8 nor GB18030 text; save it as UTF-8")


def _seconds(minutes, seconds):
    return int(minutes) * 60 + float(seconds.replace(':', '.'))


def parse_lyrics(text):
    """Lyrics text -> dict(lines, headers, end_stamps, notes).

    lines: dicts with text, tokens, role, section (a counter that moves at each header), and
    start (seconds from an LRC stamp, or None); a line stamped twice appears twice.
    headers: (section, role) of every header, so that line-less sections ([intro], [inst]) can
    name the gaps they stand for. end_stamps: times of stamps with no text.
    """
    lines, headers, end_stamps, notes = [], [], [], []
    role, section, offset = 'none', 0, 0.0
    for raw in text.splitlines():
        line = raw.strip()
        stamps = []
        while (m := STAMP.match(line)):
            stamps.append(_seconds(*m.groups()))
            line = line[m.end():].strip()
        if not stamps and (m := LRC_TAG.match(line)):
            if m.group(1).lower() == 'offset':
                try:
                    offset = float(m.group(2).strip()) / 1000  # ms; positive = lyrics come sooner
                except ValueError:
                    notes.append(f"ignored unreadable LRC offset {m.group(2)!r}")
            continue
        if (m := HEADER.match(line)):
            name = re.sub(r'[\s\-_]', '', m.group(1)).lower()
            role = SECTION_NAMES.get(name, 'none')
            if name not in SECTION_NAMES:
                notes.append(f"unknown section [{m.group(1)}] read as role 'none'")
            section += 1
            headers.append((section, role))
            continue
        if not line:
            end_stamps += stamps
            continue
        tokens = tokenize(line)
        rest = PIECES.sub('', unicodedata.normalize('NFKC', line))  # what tokenize did not read
        dropped = ''.join(c for c in rest if unicodedata.category(c)[0] in 'LN')  # letters and numerals of it
        if dropped:
            notes.append(f"dropped {dropped!r} from {line!r}: only Hanzi, Latin letters and digits are sung")
        if '<unk>' in tokens:
            notes.append(f"{tokens.count('<unk>')} character(s) of {line!r} have no reading in this pypinyin: "
                         "sung as <unk>")
        if not tokens:
            notes.append(f"dropped a line with no singable syllable: {line!r}")
            end_stamps += stamps  # a stamped line of only punctuation still ends the one before
            continue
        for start in stamps or [None]:
            lines.append(dict(text=line, tokens=tokens, role=role, section=section,
                              start=None if start is None else max(0.0, start - offset)))
    end_stamps = [max(0.0, t - offset) for t in end_stamps]
    return dict(lines=lines, headers=headers, end_stamps=end_stamps, notes=notes)


def place_lines(song, seconds, max_syllable_seconds=1.0):
    """Give every line a start and end in seconds within [0, seconds].

    Returns (lines in sung order, timing 'lrc' or 'estimated', notes). With stamps, a line ends
    at the next stamp (a line's or an empty one) but lasts at most 1 s + max_syllable_seconds
    per syllable; lines are sorted by time, and lines stamped past the end are dropped.
    Without stamps, lines share the song in proportion to syllables + 1 (a one-syllable pause).
    """
    lines, notes = [dict(line) for line in song['lines']], []
    if lines and all(line['start'] is not None for line in lines):
        if any(a['start'] > b['start'] for a, b in zip(lines, lines[1:])):
            notes.append("LRC stamps were out of order; lines sorted by time")
            lines.sort(key=lambda line: line['start'])
        late = [line for line in lines if line['start'] >= seconds]
        if late:
            notes.append(f"dropped {len(late)} line(s) stamped after the audio ends ({seconds:.2f} s)")
            lines = [line for line in lines if line['start'] < seconds]
        stops = sorted([line['start'] for line in lines] + song['end_stamps'] + [seconds])
        for line in lines:
            next_stop = next(t for t in stops if t > line['start'])
            longest = 1.0 + max_syllable_seconds * len(line['tokens'])
            line['end'] = min(next_stop, line['start'] + longest, seconds)
        return lines, 'lrc', notes
    if any(line['start'] is not None for line in lines):
        notes.append("some lines had no LRC stamp; all stamps ignored and times estimated")
    weights = np.array([len(line['tokens']) + 1.0 for line in lines])
    slot_ends = np.cumsum(weights) / max(weights.sum(), 1.0) * seconds
    for line, slot_end, weight in zip(lines, slot_ends, weights):
        slot = seconds * weight / weights.sum()
        line['start'] = float(slot_end - slot)
        line['end'] = float(slot_end - slot / weight)  # leave the pause at the end of the slot
    return lines, 'estimated', notes


def split_line(tokens, max_block_tokens):
    """A line's syllables -> pieces of at most max_block_tokens: a long line is sung as several blocks."""
    return [tokens[k:k + max_block_tokens] for k in range(0, len(tokens), max_block_tokens)]


def length_class(seconds, n_classes, max_block_seconds):
    """Quantize a duration: class c covers [edges[c-1], edges[c]), edges log-spaced from 0.25 s."""
    edges = np.geomspace(0.25, max_block_seconds, n_classes - 1)
    return int(np.searchsorted(edges, seconds, side='right'))


def class_seconds(length_class_index, n_classes, max_block_seconds):
    """A typical duration for a length class: the geometric middle of its range."""
    edges = np.concatenate([[0.125], np.geomspace(0.25, max_block_seconds, n_classes - 1), [max_block_seconds * 1.5]])
    return float(np.sqrt(edges[length_class_index] * edges[length_class_index + 1]))


def _gap_role(song, lines, i):
    """Role of the gap before line i (i == len(lines): after the last line)."""
    before = lines[i - 1]['section'] if i > 0 else -1
    after = lines[i]['section'] if i < len(lines) else float('inf')
    lineless = [role for section, role in song['headers'] if before < section < after]
    if lineless:
        return lineless[-1]
    if i == 0:
        return 'intro'
    if i == len(lines):
        return 'outro'
    return lines[i - 1]['role'] if before == after else 'inst'


def build_blocks(song, lines, seconds, frames_per_second, max_block_seconds=8.0, min_gap_seconds=0.5,
                 n_length_classes=8, max_block_tokens=24):
    """Placed lines -> the song as a plan: blocks covering [0, seconds] in order, then an end
    block, in the form planner.plan writes them (kind, role, start, seconds, finish,
    length_class, and a line's text and pinyin), their times on whole mel frames.

    A pause shorter than min_gap_seconds is absorbed into the block before it; a longer one is
    a gap block, cut into equal pieces of at most max_block_seconds. A line of more than
    max_block_tokens syllables is cut into pieces with times in proportion. A block 'finishes'
    (ends a phrase) when the next block differs from it in kind or role, or is the end.
    """
    blocks = []

    def add(kind, role, start, end, line=None, tokens=()):
        if blocks and start - blocks[-1]['end'] < min_gap_seconds:
            start = blocks[-1]['end'] = max(blocks[-1]['end'], start)  # absorb a short pause
        elif not blocks and start < min_gap_seconds:
            start = 0.0
        blocks.append(dict(kind=kind, role=role, start=start, end=max(start, end), line=line, tokens=tokens))

    def add_gap(role, start, end):
        n = int(np.ceil((end - start) / max_block_seconds - 1e-9))
        for k in range(n):
            add('gap', role, start + (end - start) * k / n, start + (end - start) * (k + 1) / n)

    cursor = 0.0
    for i, line in enumerate(lines):
        start = max(line['start'], cursor)
        if start - cursor >= min_gap_seconds:
            add_gap(_gap_role(song, lines, i), cursor, start)
        sung, n = 0, len(line['tokens'])
        for piece in split_line(line['tokens'], max_block_tokens):  # times in proportion to syllables
            t0, sung = start + (line['end'] - start) * sung / n, sung + len(piece)
            add('line', line['role'], t0, start + (line['end'] - start) * sung / n, line, piece)
        cursor = max(cursor, blocks[-1]['end'])
    if seconds - cursor >= min_gap_seconds:
        add_gap(_gap_role(song, lines, len(lines)), cursor, seconds)
    elif blocks:
        blocks[-1]['end'] = seconds
    plan = []
    for block, following in zip(blocks, blocks[1:] + [None]):
        start, end = (round(t * frames_per_second) / frames_per_second for t in (block['start'], block['end']))
        finish = following is None or following['kind'] != block['kind'] or following['role'] != block['role']
        plan.append(dict(kind=block['kind'], role=block['role'], start=start, seconds=end - start, finish=finish,
                         length_class=length_class(end - start, n_length_classes, max_block_seconds)))
        if block['kind'] == 'line':
            plan[-1].update(text=block['line']['text'], pinyin=' '.join(block['tokens']))
    return plan + [dict(kind='end', start=round(seconds * frames_per_second) / frames_per_second)]


def line_numbers(table):
    """(T, 7) -> (T,) for each block the number of its lyric line (1, 2, ...), 0 before the first."""
    return np.cumsum(table[:, KIND] == LINE)


def even_onsets(table, max_block_tokens):
    """The frame each syllable of a block table starts at, (P, max_block_tokens) int32, when a
    line's syllables share its time evenly: what is known of a song that prepare.py did not
    align, or of a plan line without a rhythm."""
    k, n = np.arange(max_block_tokens), table[:, N_TOKENS, None]
    return rhythm_onsets(table, np.where(k < n, 1.0 / np.maximum(n, 1), 0.0))


def sung_syllables(table, max_block_tokens):
    """(P, K) bool: the syllable slots of the lyric lines that hold a syllable."""
    return (np.arange(max_block_tokens) < table[:, N_TOKENS, None]) & (table[:, KIND, None] == LINE)


def rhythm(table, onsets):
    """Each syllable's share of its line's time, (P, K) float32, from onsets (P, K) frames: the
    first syllable's share runs from the line's start, the last's to its end (0 past a block's
    syllables and in gaps). The Composer learns a line's rhythm as these."""
    K = onsets.shape[1]
    k, n = np.arange(K), table[:, N_TOKENS, None]
    starts = np.where(k == 0, table[:, START, None], onsets)
    ends = np.where(k + 1 < n, np.concatenate([onsets[:, 1:], onsets[:, -1:]], 1), table[:, END, None])
    length = np.maximum(table[:, END] - table[:, START], 1)[:, None]
    shares = np.clip(ends - starts, 0, None) / length
    return np.where((k < n) & (table[:, KIND, None] == LINE), shares, 0).astype(np.float32)


def rhythm_onsets(table, shares):
    """The inverse of rhythm: syllable shares (P, K) of each line's time -> onsets (P, K) int32
    frames (0 past a block's syllables)."""
    k, n = np.arange(shares.shape[1]), table[:, N_TOKENS, None]
    before = np.cumsum(shares, 1) - shares  # the shares of the syllables before each
    onsets = table[:, START, None] + np.round(before * (table[:, END] - table[:, START])[:, None])
    return np.where(k < n, onsets, 0).astype(np.int32)


def plan_blocks(table, tokens, vocab, frames_per_second, onsets=None):
    """A block table (P, 7) and tokens (P, K) as prepare.py caches them, and its onsets (P, K) if
    known -> plan blocks (as planner.plan writes them: a real song's plan can be drawn, edited and
    rendered); the inverse of plan_arrays."""
    blocks, shares = [], None if onsets is None else rhythm(table, onsets)
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
            if shares is not None:
                block['rhythm'] = [round(float(x), 4) for x in shares[len(blocks), :row[N_TOKENS]]]
        blocks.append(block)
    return blocks


def plan_arrays(blocks, settings):
    """Plan blocks (from planner.plan, build_blocks or read_plan) -> the block table (P, 7), tokens
    (P, K) and onsets (P, K) that the models read: each line's syllables start by its 'rhythm'
    (their shares of its time), by an even share where it has none; a length edited by hand
    gets its length class. The inverse of plan_blocks."""
    fps, K = frame_rate(settings), settings['max_block_tokens']
    table = np.zeros((len(blocks), len(BLOCK_COLUMNS)), np.int64)
    tokens = np.zeros((len(blocks), K), np.int64)
    shares = np.zeros((len(blocks), K), np.float32)
    for i, b in enumerate(blocks):
        seconds = float(b.get('seconds', 0.0))
        table[i, [KIND, START, END]] = KINDS.index(b['kind']), round(float(b['start']) * fps), round((float(b['start']) + seconds) * fps)
        table[i, FINISH] = b['kind'] == 'end' or bool(b.get('finish', False))  # the end ends a phrase
        if b['kind'] != 'end':
            table[i, [ROLE, LENGTH]] = (ROLES.index(b['role']),
                                        length_class(seconds, settings['n_length_classes'], settings['max_block_seconds']))
        if b['kind'] == 'line':
            ids = encode(b['pinyin'].split())[:K]
            tokens[i, :len(ids)], table[i, N_TOKENS] = ids, len(ids)
            r = np.asarray(b.get('rhythm') or [], np.float32)
            shares[i, :len(ids)] = r / r.sum() if len(r) == len(ids) and r.sum() > 0 else 1 / max(len(ids), 1)
    return table, tokens, rhythm_onsets(table, shares)
