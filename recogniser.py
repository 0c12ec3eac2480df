"""
The lyric recogniser: log-mels -> log-probabilities over pinyin units every `downsample` frames,
trained with CTC on the corpus's LRC-timed lines. Two uses: eval.py reads the lyrics of songs
back (a syllable error rate, the first figure a song model is judged by), and prepare.py places
the lines of songs that have no time stamps by CTC forced alignment (`align_ckpt`).

    python train.py config/train_recogniser_synth.py     # about 5 minutes on a 2-core CPU
    python eval.py --ckpt=out-recogniser-synth/ckpt.pt

Units: a syllable is its initial and its final with the tone ('zhuang1' -> 'zh' 'uang1', 'ai4'
-> 'ai4'). Some 200 units instead of about 2000 tonal syllables, each seen in many more lines, and
what a listener hears: an onset, then a vowel on a pitch contour. A syllable is read back at
every final. Error rates are counted on syllables, with and without the tone.

Input: log(mel + floor) of the cached log1p mels, one floor for every band. The voice's formants
above the backing are quiet (about 0.01 in log1p units): on a linear scale they are invisible and
the CTC loss sits on its all-blank plateau. The faint floor that the autoencoder leaves in bands
that are silent in the real song is as loud, and i.i.d. noise (`input_noise`) does not stand in
for it: with `ae_ckpt`, `recon_share` of the training lines (half) are read from its reconstructions,
so that the recogniser reads what generated songs are made of. A per-band scale (which would
blow that floor up further) is not used.
Model: convolutions only, fast to train on a CPU, and a whole song of any length is read in one
call. A stem of two 2-D convolutions over (frequency, time) first: a vowel is its formants, fixed
in Hz, sampled by harmonics that move with the melody, and a tone is a harmonic's slope; a filter
shared along frequency learns each once for every pitch, where a 1-D convolution over the bands
learns it band by band (on the synthetic corpus it halves the error for 1.6x the time of a step,
docs/experiments.md). Then dilated residual blocks over `downsample`-frame steps.
"""
import functools
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from rapidfuzz.distance import Levenshtein

from ae import song_latents
from audio import frame_rate, mel_spectrogram, mel_to_wav
from checkpoint import check_settings, checkpoint_key, feed_tensor, load_checkpoint
from lyrics import (END, GAP, INITIALS, KIND, LINE, N_TOKENS, SPECIALS, START, even_onsets, place_lines, split_syllable,
                    vocabulary)


@functools.lru_cache(maxsize=1)
def units():
    """'<blank>' (CTC's), every initial and tonal final the vocabulary spells, and '<en>'."""
    finals = {split_syllable(t)[-1] for t in vocabulary()[len(SPECIALS):]}
    return ['<blank>'] + list(INITIALS) + sorted(finals - set(INITIALS)) + ['<en>']


@functools.lru_cache(maxsize=1)
def unit_ids():
    return {u: i for i, u in enumerate(units())}


def to_units(syllables):
    """Syllable tokens -> unit ids; '<unk>' and '<pad>' have no sound and no units."""
    ids = unit_ids()
    return [ids[u] for s in syllables for u in split_syllable(s) if u in ids]


def to_syllables(ids):
    """Unit ids -> syllables: an initial waits for its final; one left waiting is dropped."""
    syllables, initial = [], ''
    for u in (units()[i] for i in ids):
        if u in INITIALS:
            initial = u
        else:
            syllables.append(initial + u)
            initial = ''
    return syllables


@dataclass
class Config:
    n_mels: int = 256  # from the data
    floor: float = 1e-3  # log(mel + floor): the voice above 1.5 kHz lies around 0.01
    feature_mean: float = 0.0  # from the data: log(mel + floor) is standardised with these (one pair for
    feature_std: float = 1.0  # every band); unstandardised, CTC learns 2x slower here
    n_units: int = 0  # from the vocabulary: len(units())
    width: int = 256
    downsample: int = 4  # mel frames per output step, a multiple of 4 (the stem's two strides)
    stem_channels: int = 16  # of the 2-D stem
    n_layer: int = 4  # residual convolution blocks, dilated 1, 2, 4, ...: 4 see 61 steps (4 s at 64 ms)
    dropout: float = 0.1
    input_noise: float = 0.03  # in training: noise on the log1p mels, std drawn per line from [0, input_noise]
    recon_share: float = 0.5  # in training, with ae_ckpt: the share of lines read from the autoencoder's reconstructions


class StepNorm(nn.LayerNorm):
    """Layer norm of each step over its channels, for (B, C, T): a song is read the same whole or in
    pieces (a norm over time too would take its statistics from whatever else the input holds)."""

    def forward(self, x):
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class ResBlock(nn.Module):

    def __init__(self, width, dilation, dropout):
        super().__init__()
        self.norm = StepNorm(width)
        self.conv = nn.Conv1d(width, width, 5, padding=2 * dilation, dilation=dilation)
        self.proj = nn.Conv1d(width, width, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return x + self.dropout(self.proj(F.gelu(self.conv(self.norm(x)))))


class Model(nn.Module):

    def __init__(self, config):
        super().__init__()
        if config.downsample % 4:
            raise ValueError(f"downsample={config.downsample}: the stem's two strides need a multiple of 4")
        self.config = config
        W, C = config.width, config.stem_channels
        self.stem = nn.Sequential(nn.Conv2d(1, C, 3, stride=2, padding=1), nn.GELU(),  # (F, T) -> (F/2, T/2)
                                  nn.Conv2d(C, C, 3, stride=2, padding=1), nn.GELU())  # -> (F/4, T/4)
        k = config.downsample // 4
        self.patch = nn.Conv1d(C * ((config.n_mels + 3) // 4), W, k, stride=k)  # T/4 -> T // downsample
        self.blocks = nn.Sequential(*[ResBlock(W, 2 ** i, config.dropout) for i in range(config.n_layer)])
        self.norm = StepNorm(W)
        self.out = nn.Linear(W, config.n_units)

    def log_probs(self, mel):
        """mel (B, T, n_mels) log1p mels -> (B, T // downsample, n_units) log-probabilities."""
        x = mel.float()
        if self.training and self.config.input_noise > 0:
            x = x + torch.rand(len(x), 1, 1, device=x.device) * self.config.input_noise * torch.randn_like(x)
        x = (torch.log(x.clamp(min=0) + self.config.floor) - self.config.feature_mean) / self.config.feature_std
        T = x.shape[1] // self.config.downsample * self.config.downsample
        x = self.stem(x[:, None, :T].transpose(2, 3))  # (B, C, n_mels/4, T/4)
        x = self.blocks(F.gelu(self.patch(x.flatten(1, 2))))  # (B, width, T // downsample)
        return F.log_softmax(self.out(self.norm(x).transpose(1, 2)).float(), dim=-1)

    def forward(self, mel, mel_lengths, units, unit_lengths):
        """CTC loss of lines: mel (B, T, n_mels) zero-padded, units (B, L) zero-padded."""
        log_probs = self.log_probs(mel).transpose(0, 1)  # (T', B, n_units), as ctc_loss wants
        return F.ctc_loss(log_probs, units, mel_lengths // self.config.downsample, unit_lengths, zero_infinity=True)

    @torch.no_grad()
    def read(self, mels):
        """A list of mels (T_i, n_mels) -> the syllables read in each (greedy CTC: best unit per
        step, repeats merged, blanks dropped)."""
        lengths = [len(m) // self.config.downsample for m in mels]
        device = self.out.weight.device
        best = self.log_probs(pad([torch.as_tensor(m, dtype=torch.float32) for m in mels]).to(device)).argmax(-1).cpu()
        read = []
        for b, n in zip(best, lengths):
            b = b[:n].tolist()
            read.append(to_syllables([u for i, u in enumerate(b) if u != 0 and (i == 0 or u != b[i - 1])]))
        return read


def pad(tensors):
    """(T_i, ...) tensors -> (B, max T_i, ...), zero-padded (log-mel 0 is silence)."""
    return torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True)


def missed(read, truth):
    """For each true syllable, whether a least-edit alignment of the reading to the truth substitutes or
    deletes it: (len(truth),) bool. Insertions belong to no true syllable and are not counted."""
    out = np.zeros(len(truth), bool)
    out[[op.dest_pos for op in Levenshtein.editops(read, truth) if op.tag != 'delete']] = True  # replace, insert
    return out


def error_rates(read, truth):
    """Syllable error rate (edits / true syllables) over lists of syllable lists, and the same
    without tones: (with tone, tone-free)."""
    n = max(sum(map(len, truth)), 1)
    toneless = lambda syllables: [s.rstrip('12345') for s in syllables]
    return (sum(Levenshtein.distance(r, t) for r, t in zip(read, truth)) / n,
            sum(Levenshtein.distance(toneless(r), toneless(t)) for r, t in zip(read, truth)) / n)


def align(log_probs, targets):
    """CTC forced alignment: the most likely path of log_probs (T, n_units) that reads exactly
    `targets` (L unit ids). -> (first step, last step + 1) of each target unit, arrays (L,), and
    each unit's best posterior on its steps (L,); None if T steps cannot hold the units."""
    T, L = len(log_probs), len(targets)
    targets = np.asarray(targets)
    repeats = int(np.sum(targets[1:] == targets[:-1]))  # a blank must part two equal units
    if L == 0 or T < L + repeats:
        return None
    states = np.zeros(2 * L + 1, dtype=np.int64)  # blank, unit 1, blank, unit 2, ..., blank
    states[1::2] = targets
    can_skip = np.zeros(2 * L + 1, dtype=bool)  # a unit may follow the unit before it straight away
    can_skip[3::2] = targets[1:] != targets[:-1]
    score = np.full(2 * L + 1, -np.inf)
    score[:2] = log_probs[0, states[:2]]
    came = np.zeros((T, 2 * L + 1), dtype=np.int8)  # 0: stayed, 1: from the state before, 2: skipped a blank
    for t in range(1, T):  # Viterbi: a loop over steps, vectorised over states
        moves = np.full((3, 2 * L + 1), -np.inf)
        moves[0], moves[1, 1:] = score, score[:-1]
        moves[2, 2:] = np.where(can_skip[2:], score[:-2], -np.inf)
        came[t] = moves.argmax(0)
        score = moves[came[t], np.arange(2 * L + 1)] + log_probs[t, states]
    state = 2 * L if score[2 * L] >= score[2 * L - 1] else 2 * L - 1
    path = np.empty(T, dtype=np.int64)
    for t in range(T - 1, -1, -1):
        path[t] = state
        state -= int(came[t, state])
    first, last, posterior = np.zeros(L, np.int64), np.zeros(L, np.int64), np.zeros(L)
    for j in range(L):
        steps = np.flatnonzero(path == 2 * j + 1)
        first[j], last[j] = steps[0], steps[-1] + 1
        posterior[j] = np.exp(log_probs[steps, targets[j]].max())
    return first, last, posterior


@torch.no_grad()
def read_song(model, mel):
    """A whole song's mel (T, n_mels) -> log-probabilities over units, (T // downsample, n_units) numpy."""
    return model.log_probs(torch.as_tensor(mel, dtype=torch.float32)[None].to(model.out.weight.device))[0].cpu().numpy()


def align_lines(log_probs, lines, step_seconds, min_posterior=0.3):
    """Place lyric lines (dicts with 'tokens') on a song read by read_song (steps of step_seconds)
    by forced alignment of all their units at once. -> (the lines with 'start' and 'end' in
    seconds, a note), or (None, why not): lyrics with more units than the song has steps, or a
    path the recogniser does not believe (median posterior of the units under min_posterior: no
    singing, or other words)."""
    targets = [to_units(line['tokens']) for line in lines]
    found = align(log_probs, [u for t in targets for u in t])
    if found is None:
        return None, (f"alignment impossible: the lyrics have {sum(map(len, targets))} units, more than the "
                      f"{len(log_probs)} steps of the audio can hold")
    first, last, posterior = found
    if np.median(posterior) < min_posterior:
        return None, (f"alignment unsure (median unit posterior {np.median(posterior):.2f} < {min_posterior}): "
                      f"no singing, or not these words")
    ends = np.cumsum([len(t) for t in targets])
    placed = []
    for line, t, end in zip(lines, targets, ends):
        if t:
            placed.append(dict(line, start=float(first[end - len(t)] * step_seconds), end=float(last[end - 1] * step_seconds)))
    return placed, f"lines placed by forced alignment (median unit posterior {np.median(posterior):.2f})"


def align_syllables(log_probs, table, tokens, downsample, min_posterior=0.3):
    """Where each syllable of a song's lines starts: the units of each line block aligned on the
    steps of read_song inside the block. -> onsets (P, K) int32 frames, as lyrics.even_onsets, and
    the number of line blocks aligned; a block the recogniser cannot place keeps the even share."""
    vocab = vocabulary()
    onsets = even_onsets(table, tokens.shape[1])
    aligned = 0
    for r in np.flatnonzero(table[:, KIND] == LINE):
        syllables = [to_units([vocab[t]]) for t in tokens[r, :table[r, N_TOKENS]]]
        lo, hi = int(table[r, START]) // downsample, -(-int(table[r, END]) // downsample)
        found = align(log_probs[lo:hi], [u for units in syllables for u in units])
        if found is None or np.median(found[2]) < min_posterior or not all(syllables):
            continue
        first_unit = np.cumsum([0] + [len(units) for units in syllables[:-1]])
        onsets[r, :len(syllables)] = np.clip((lo + found[0][first_unit]) * downsample, table[r, START], table[r, END] - 1)
        aligned += 1
    return onsets, aligned


def song_lines(table, tokens, vocab, n_frames, margin):
    """A song's lyric lines: (first frame, last frame + 1, syllables), each widened by up to
    `margin` frames either side but never into the lines before and after it."""
    rows = np.flatnonzero(table[:, KIND] == LINE)
    lines = []
    for j, r in enumerate(rows):
        start, end = int(table[r, START]), int(table[r, END])
        before = int(table[rows[j - 1], END]) if j > 0 else 0
        after = int(table[rows[j + 1], START]) if j + 1 < len(rows) else n_frames
        lines.append((max(before, start - margin), min(after, end + margin),
                      [vocab[t] for t in tokens[r, :table[r, N_TOKENS]]]))
    return lines


def load_data(data_dir, meta, split, config=None):
    """The split's songs that are LRC-timed: their mels, and every lyric line as (song, the
    earliest and latest frame its crop may reach, its first and last frame, its unit ids); gaps
    of a second or more in the same form, with no units. With
    config['ae_ckpt'], each song's autoencoder reconstruction too: recon_share of the lines are read from it,
    so that the recogniser reads what generated songs are made of."""
    vocab, s = meta['vocab'], meta['settings']
    config = config or {}
    margin = int(round(0.5 * frame_rate(s)))  # up to 0.5 s of what lies around a line
    ae_model = None
    if config.get('ae_ckpt'):
        device = config.get('device', 'cpu')
        ae_checkpoint, ae_model = load_checkpoint(config['ae_ckpt'], device, stage='ae')
        check_settings(ae_checkpoint['data_settings'], s, config['ae_ckpt'], f"{data_dir}/meta.json")
        ae_key = checkpoint_key(config['ae_ckpt'])
    mels, recons, lines, gaps = [], [], [], []
    for name in meta['split'][split]:
        if meta['songs'][name].get('timing') != 'lrc':
            continue  # only lines whose times were written down by hand teach the recogniser
        folder = os.path.join(data_dir, 'songs', name)
        mel = np.load(os.path.join(folder, 'mel.npy'))
        table, tokens = np.load(os.path.join(folder, 'blocks.npy')), np.load(os.path.join(folder, 'tokens.npy'))
        for (lo, hi, syllables), r in zip(song_lines(table, tokens, vocab, len(mel), margin),
                                          np.flatnonzero(table[:, KIND] == LINE)):
            target = to_units(syllables)
            if target:
                lines.append((len(mels), lo, hi, int(table[r, START]), int(table[r, END]), target))
        for r in np.flatnonzero((table[:, KIND] == GAP) & (table[:, END] - table[:, START] >= 2 * margin)):
            middle = int(table[r, START] + table[r, END]) // 2  # a window around it: backing alone, no words
            gaps.append((len(mels), int(table[r, START]), int(table[r, END]), middle, middle, []))
        mels.append(mel)
        if ae_model is not None:
            with torch.no_grad():
                z = torch.from_numpy(song_latents(ae_model, ae_key, data_dir, name, device)).to(device)
                recons.append(ae_model.decode_song(z)[:len(mel)].cpu().numpy().astype(np.float16))
    if not lines:
        raise SystemExit(f"no LRC-timed lyric line in the {split} split of {data_dir}: the recogniser learns from "
                         f"songs whose lyrics.txt has a time stamp on every line")
    by_length = np.argsort([hi - lo for _, lo, hi, *_ in lines], kind='stable')  # for get_batch's groups
    return dict(mel_feed(mels, recons, config.get('device', 'cpu')), lines=lines, gaps=gaps, by_length=by_length,
                floor=config.get('floor', Config.floor), recon_share=config.get('recon_share', Config.recon_share))


def mel_feed(mels, recons, device):
    """Songs' mels and their reconstructions ([] or one per song), float16 arrays (frames, n_mels) ->
    the feed that get_batch cuts crops from: one tensor, the songs end to end, then the reconstructions
    (a few frames shorter, some), then a silent frame that pads a batch; and the arrays again as views."""
    lengths = np.array([len(mel) for mel in mels + recons])
    feed = np.concatenate(mels + recons + [np.zeros((1, mels[0].shape[1]), np.float16)])
    pieces = np.split(feed[:-1], np.cumsum(lengths)[:-1])  # views: each frame is kept once
    return dict(mels=pieces[:len(mels)], recons=pieces[len(mels):], feed=feed_tensor(feed, device),
                lengths=lengths, offsets=np.cumsum(lengths) - lengths)


def data_args(meta, data):
    x = np.log(np.concatenate([mel[::7] for mel in data['mels']]).astype(np.float32).clip(min=0) + data['floor'])
    return dict(n_mels=meta['settings']['n_mels'], n_units=len(units()), feature_mean=round(float(x.mean()), 4),
                feature_std=round(float(x.std()), 4))


BUCKET_LINES = 512  # lines of about the same length that a batch is drawn from


def get_batch(data, batch_size, rng):
    """Random lines, each cropped from a random point before its start to one after its end
    (within its room), so that the recogniser sees lines start anywhere and silence around them;
    one in ten a stretch of a gap instead, where it must read nothing. From the real mel or (if
    loaded, recon_share of the time) the autoencoder's reconstruction. The lines of a batch come from one
    of the groups of BUCKET_LINES lines of about the same length (each line as likely as
    before): random lines leave 40% of a batch padding, and that much of a step's time wasted.
    The crops are cut from the feed in one gather, on the device it lives on, as cached (float16)."""
    lines, gaps, order, n_songs = data['lines'], data['gaps'], data['by_length'], len(data['mels'])
    n_buckets = max(1, len(order) // BUCKET_LINES)
    k = int(rng.integers(n_buckets))
    bucket = order[k * len(order) // n_buckets:(k + 1) * len(order) // n_buckets]
    first, length, targets = np.zeros(batch_size, np.int64), np.zeros(batch_size, np.int64), []
    for i in range(batch_size):  # only the draws, a few microseconds each, in the order that makes a seed's batches
        song, lo, hi, start, end, target = lines[bucket[rng.integers(len(bucket))]]
        a, b = int(rng.integers(lo, start + 1)), int(rng.integers(end, hi + 1))
        if gaps and rng.random() < 0.1:  # a stretch of a gap as long as the line's crop, where it fits
            song, lo, hi, *_ = gaps[rng.integers(len(gaps))]
            n = min(b - a, hi - lo)
            a = int(rng.integers(lo, hi - n + 1))
            b, target = a + n, []
        piece = song + n_songs * bool(data['recons'] and rng.random() < data['recon_share'])  # the song or its reconstruction
        first[i], length[i] = data['offsets'][piece] + a, max(0, min(b, data['lengths'][piece]) - a)
        targets.append(target)
    feed = data['feed']
    t = np.arange(length.max())
    index = torch.from_numpy(np.where(t < length[:, None], first[:, None] + t, len(feed) - 1)).to(feed.device)  # (B, T)
    unit_lengths = np.array([len(u) for u in targets])
    units = np.zeros((batch_size, unit_lengths.max()), np.int64)
    units[np.arange(units.shape[1]) < unit_lengths[:, None]] = [u for target in targets for u in target]
    return dict(mel=feed.index_select(0, index.view(-1)).view(*index.shape, -1), mel_lengths=torch.from_numpy(length),
                units=torch.from_numpy(units), unit_lengths=torch.from_numpy(unit_lengths))


# -----------------------------------------------------------------------------
# evaluation: reading a song's lines, error rates with chance beside, and eval.py's figures

def line_margin(settings):
    return int(round(0.25 * frame_rate(settings)))  # 0.25 s either side of a line


def read_lines(reader, mel, table, tokens, vocab, settings):
    """What the recogniser reads in each lyric line of a block table that ends inside mel (T,
    n_mels), and those lines' syllables: two lists."""
    inside = table[:, END] <= len(mel)  # blocks are in time order: a prefix
    lines = song_lines(table[inside], tokens[inside], vocab, len(mel), line_margin(settings))
    return reader.read([mel[a:b] for a, b, _ in lines]), [syllables for _, _, syllables in lines]


def error_figures(reads, truth):
    """reads: {name: what was read in each line}; truth: each line's syllables -> the syllable and
    tone-free error rates of each, named syllable_error_rate_<name> ('' names the main reading),
    and _chance: the main reading against the lines half the list away (another song's)."""
    others = truth[len(truth) // 2:] + truth[:len(truth) // 2]
    figures = {}
    for name, read, lines in [(k, r, truth) for k, r in reads.items()] + [('chance', reads[''], others)]:
        suffix = '_' + name if name else ''
        figures['syllable_error_rate' + suffix], figures['tone_free_error_rate' + suffix] = error_rates(read, lines)
    return figures


@torch.no_grad()
def evaluate(net, meta, data_dir, device, ae_model=None, max_songs=40):
    """Syllable error rates of the validation songs' lines as the recogniser reads them: from the
    real mels, from the autoencoder's reconstructions, and from both through Griffin-Lim (the way
    a generated song comes out); chance: each line's reading scored against another song's line.
    Then the songs' lines placed without their stamps, by forced alignment and by prepare.py's
    estimate from syllable counts: the error of each line's start against its stamp. ae_model:
    the autoencoder whose reconstructions are read too (None: not); max_songs: the songs read."""
    s = meta['settings']
    fps = frame_rate(s)
    names = [n for n in meta['split']['val'] if meta['songs'][n].get('timing') == 'lrc'][:max_songs]
    reads, truth, start_errors, failed = {}, [], dict(aligned=[], estimated=[]), 0
    for name in names:
        mel = np.load(os.path.join(data_dir, 'songs', name, 'mel.npy')).astype(np.float32)
        table, tokens = (np.load(os.path.join(data_dir, 'songs', name, f)) for f in ('blocks.npy', 'tokens.npy'))
        lines = song_lines(table, tokens, meta['vocab'], len(mel), line_margin(s))
        mels = dict(real=mel)
        if ae_model is not None:
            z = ae_model.encode_song(torch.from_numpy(mel).to(device))
            mels['reconstructed'] = ae_model.decode_song(z)[:len(mel)].cpu().numpy()
        for k in list(mels):  # through Griffin-Lim and back, as a generated song comes out
            wav = mel_to_wav(torch.from_numpy(mels[k]), s['sample_rate'], s['n_fft'], s['hop_length'], s['n_mels'])
            name_gl = 'griffin_lim' if k == 'real' else k + '_griffin_lim'
            mels[name_gl] = mel_spectrogram(wav, s['sample_rate'], s['n_fft'], s['hop_length'], s['n_mels']).numpy()
        for k, m in mels.items():
            reads.setdefault(k, []).extend(net.read([m[a:b] for a, b, _ in lines]))
        truth += [syllables for _, _, syllables in lines]
        stamps = table[table[:, KIND] == LINE, START] / fps
        unstamped = [dict(tokens=syllables, start=None) for _, _, syllables in lines]
        estimated, _, _ = place_lines(dict(lines=unstamped, end_stamps=[]), meta['songs'][name]['seconds'])
        aligned, _ = align_lines(read_song(net, mel), unstamped, net.config.downsample / fps)
        failed += aligned is None
        for k, placed in (('estimated', estimated), ('aligned', aligned or estimated)):
            start_errors[k] += [abs(line['start'] - t) for line, t in zip(placed, stamps)]
    figures = error_figures({'' if k == 'real' else k: read for k, read in reads.items()}, truth)
    print(f"{len(names)} validation songs, {len(truth)} lines, {sum(map(len, truth))} syllables")
    print("                                    syllable error rate   tone-free")
    for k in list(reads) + ['chance']:
        suffix = '' if k == 'real' else '_' + k
        print(f"  {k.replace('_', ' '):32s}  {figures['syllable_error_rate' + suffix]:.3f}"
              f"                 {figures['tone_free_error_rate' + suffix]:.3f}")
    print(f"line starts without their stamps: |error| median, 90th percentile ({failed} songs not aligned: estimated)")
    for k, errors in start_errors.items():
        figures[f'{k}_start_error_median'], figures[f'{k}_start_error_p90'] = np.median(errors), np.percentile(errors, 90)
        print(f"  {k:10s} {figures[f'{k}_start_error_median']:.3f} s  {figures[f'{k}_start_error_p90']:.3f} s")
    return figures
