"""
Cache a dataset folder for training: log-mels, pinyin token ids and block plans as .npy, plus
meta.json with the settings, the vocabulary, the train/val split and every song's status.

    python prepare.py config/prepare_synth.py        # dataset/synth -> data/synth
    python prepare.py --dataset_dir=my_songs --data_dir=data/my_songs --num_workers=8

<dataset_dir>/<song>/audio.wav (or .flac/.ogg/.mp3, any rate, mono or stereo), lyrics.txt
(optional), style.txt (optional). Writes <data_dir>/songs/<song>/mel.npy (float16
[frames, n_mels]), blocks.npy (int32 [n_blocks, len(BLOCK_COLUMNS)]), tokens.npy (int32
[n_blocks, max_block_tokens]) and onsets.npy (int32, as tokens: the frame each syllable starts
at). A song that cannot be used is skipped with a reason in meta.json and the run goes on; a
second run redoes only songs whose files or settings changed.

Lines with LRC stamps are placed where the stamps say ('lrc' in meta.json). Lyrics without
stamps are spread over the song by syllable counts ('estimated'), and a line's syllables share
its time evenly. With a trained recogniser (`align_ckpt`), both come from the audio: lines
without stamps are placed by forced alignment ('aligned'), and every line's syllables too (the
Decoder learns which syllable is sung in which row from them: an even share is off by about a
syllable mid-line). So a corpus is prepared twice: prepare, train the recogniser (it learns from
the 'lrc' songs only), prepare again with --align_ckpt=out-recogniser/ckpt.pt (the songs' blocks
are redone; their mels and latents stay).
"""
import hashlib
import json
import multiprocessing
import os
import shutil
import sys

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly
from tqdm import tqdm

import recogniser
from audio import frame_rate, mel_spectrogram
from checkpoint import check_settings, checkpoint_key, load_checkpoint
from configurator import configure
from lyrics import (BLOCK_COLUMNS, KIND, KINDS, LINE, ROLES, build_blocks, parse_lyrics, plan_arrays,
                    place_lines, read_lyrics, vocabulary, vocabulary_hash)

# -----------------------------------------------------------------------------
dataset_dir = 'dataset/synth'
data_dir = 'data/synth'
sample_rate = 48000
n_fft = 4096
hop_length = 192
n_mels = 256
segment_frames = 256  # the autoencoder's segment; shorter songs are skipped
max_block_seconds = 8.0  # longer gaps are cut into several gap blocks
min_gap_seconds = 0.5  # shorter pauses belong to the line before them
n_length_classes = 8
max_block_tokens = 24  # longer lines are cut into several blocks
val_fraction = 0.1
num_workers = 4
align_ckpt = ''  # a lyric recogniser (train.py model='recogniser'): places unstamped lines and every syllable
# -----------------------------------------------------------------------------

CACHE_VERSION = 1  # bump when what a song's cache holds changes: every song is redone
AUDIO_NAMES = ('audio.wav', 'audio.flac', 'audio.ogg', 'audio.mp3')
SETTING_KEYS = ('sample_rate', 'n_fft', 'hop_length', 'n_mels', 'segment_frames', 'max_block_seconds',
                'min_gap_seconds', 'n_length_classes', 'max_block_tokens')


def find_songs(dataset_dir):
    """Song folders (symbolic links too), sorted by name; loose files are ignored."""
    if not os.path.isdir(dataset_dir):
        raise SystemExit(f"dataset_dir '{dataset_dir}' is not a folder; make one with `python synth.py` "
                         f"or pass --dataset_dir=<folder of song folders>")
    return sorted(name for name in os.listdir(dataset_dir)
                  if os.path.isdir(os.path.join(dataset_dir, name)) and not name.startswith('.'))


def fingerprint(folder):
    """Size and modification time of every file that the cache depends on."""
    stamp = {}
    for name in AUDIO_NAMES + ('lyrics.txt', 'style.txt'):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            info = os.stat(path)
            stamp[name] = [info.st_size, info.st_mtime_ns]
    return stamp


def load_audio(path, sample_rate):
    """-> (mono float32 waveform at sample_rate, notes). Raises ValueError for unusable audio."""
    try:
        wav, rate = sf.read(path, dtype='float32', always_2d=True)
    except Exception as e:  # soundfile raises several kinds for corrupt or unknown files
        raise ValueError(f"cannot read {os.path.basename(path)}: {e}") from None
    notes = []
    if wav.shape[0] == 0:
        raise ValueError(f"{os.path.basename(path)} holds no samples")
    if wav.shape[1] > 1:
        notes.append(f"mixed {wav.shape[1]} channels to mono")
    wav = wav.mean(1)
    if not np.isfinite(wav).all():
        raise ValueError(f"{os.path.basename(path)} holds NaN or infinite samples")
    if rate != sample_rate:
        g = np.gcd(rate, sample_rate)
        wav = resample_poly(wav, sample_rate // g, rate // g).astype(np.float32)
        notes.append(f"resampled from {rate} Hz")
    return wav, notes


_aligners = {}  # a worker's recogniser, loaded once


def aligner(path):
    if path not in _aligners:
        _aligners[path] = load_checkpoint(path, 'cpu', stage='recogniser')[1]
    return _aligners[path]


def prepare_song(job):
    """Cache one song; return its meta.json entry. Never raises for bad input: it reports it."""
    name, folder, out, settings, align, changed = job  # align: (recogniser checkpoint, its key) or None
    torch.set_num_threads(1)  # one song per worker process
    entry = dict(status='skipped', fingerprint=fingerprint(folder), notes=[])
    audio_path = next((os.path.join(folder, n) for n in AUDIO_NAMES if os.path.exists(os.path.join(folder, n))), None)
    if audio_path is None:
        return dict(entry, reason=f"no audio file ({', '.join(AUDIO_NAMES)})")
    try:
        wav, entry['notes'] = load_audio(audio_path, settings['sample_rate'])
    except ValueError as e:
        return dict(entry, reason=str(e))
    mel = mel_spectrogram(torch.from_numpy(wav), settings['sample_rate'], settings['n_fft'],
                          settings['hop_length'], settings['n_mels'])
    seconds = len(wav) / settings['sample_rate']
    if mel.shape[0] < settings['segment_frames']:
        return dict(entry, reason=f"{seconds:.2f} s of audio is shorter than one segment "
                                  f"({settings['segment_frames']} frames)")
    os.makedirs(out, exist_ok=True)
    for stale in os.listdir(out) if changed else []:  # what was made from the song's old files (the latents) goes
        os.remove(os.path.join(out, stale))
    np.save(os.path.join(out, 'mel.npy'), mel.numpy().astype(np.float16))
    entry.update(status='ok', seconds=round(seconds, 3), frames=mel.shape[0], has_lyrics=False, n_blocks=0)
    style_path = os.path.join(folder, 'style.txt')
    entry['style'] = open(style_path, encoding='utf-8', errors='replace').read().strip() if os.path.exists(style_path) else ''

    lyrics_path = os.path.join(folder, 'lyrics.txt')
    song = None
    if not os.path.exists(lyrics_path):
        entry['notes'].append("no lyrics.txt: kept for the autoencoder only")
    else:
        try:
            song = parse_lyrics(read_lyrics(lyrics_path))
            entry['notes'] += song['notes']
        except ValueError as e:
            entry['notes'].append(f"{e}: kept for the autoencoder only")
        if song is not None and not song['lines']:
            entry['notes'].append("lyrics.txt has no singable line: kept for the autoencoder only")
            song = None
    if song is not None:
        lines, timing, notes = place_lines(song, seconds)
        entry['notes'] += notes
        frames_per_second = frame_rate(settings)
        if align is not None:
            model = aligner(align[0])
            log_probs = recogniser.read_song(model, mel)
            entry['aligned_by'] = align[1]
        if timing == 'estimated' and align is not None:
            placed, note = recogniser.align_lines(log_probs, lines, model.config.downsample / frames_per_second)
            entry['notes'].append(note if placed else note + '; times estimated from syllable counts')
            if placed:
                lines, timing = placed, 'aligned'
        blocks = build_blocks(song, lines, seconds, frames_per_second, settings['max_block_seconds'],
                              settings['min_gap_seconds'], settings['n_length_classes'], settings['max_block_tokens'])
        blocks[-1]['start'] = mel.shape[0] / frames_per_second  # cover every mel frame (a centred STFT has one extra)
        blocks[-2]['seconds'] = blocks[-1]['start'] - blocks[-2]['start']
        table, tokens, onsets = plan_arrays(blocks, settings)  # onsets: an even share of each line
        table, tokens = table.astype(np.int32), tokens.astype(np.int32)
        if align is not None:
            onsets, aligned = recogniser.align_syllables(log_probs, table, tokens, model.config.downsample)
            entry['syllables_aligned'] = f"{aligned} of {int(np.sum(table[:, KIND] == LINE))} lines"
        np.save(os.path.join(out, 'blocks.npy'), table)
        np.save(os.path.join(out, 'tokens.npy'), tokens)
        np.save(os.path.join(out, 'onsets.npy'), onsets)
        entry.update(has_lyrics=bool(lines), timing=timing, n_blocks=len(blocks), n_lines=len(lines))
    return entry


def split(names, val_fraction):
    """Deterministic split by a hash of the name: adding songs moves few others."""
    ranked = sorted(names, key=lambda n: hashlib.sha1(n.encode('utf-8')).hexdigest())
    n_val = int(round(len(ranked) * val_fraction))
    if val_fraction > 0 and len(ranked) >= 2:
        n_val = min(max(n_val, 1), len(ranked) - 1)
    return sorted(ranked[n_val:]), sorted(ranked[:n_val])


def prepare(dataset_dir, data_dir, num_workers, val_fraction, align_ckpt='', **settings):
    settings = dict(settings, cache_version=CACHE_VERSION, vocab_hash=vocabulary_hash())
    align, aligned_by = None, None
    if align_ckpt:
        checkpoint, _ = load_checkpoint(align_ckpt, stage='recogniser')
        mel_keys = ('sample_rate', 'n_fft', 'hop_length', 'n_mels', 'vocab_hash')
        check_settings({k: checkpoint['data_settings'][k] for k in mel_keys}, {k: settings[k] for k in mel_keys},
                       align_ckpt, 'these prepare settings')
        aligned_by = checkpoint_key(align_ckpt)
        align = (align_ckpt, aligned_by)
    names = find_songs(dataset_dir)
    if not names:
        raise SystemExit(f"no song folders in '{dataset_dir}'; each song is a folder with audio.wav and lyrics.txt")
    meta_path = os.path.join(data_dir, 'meta.json')
    old = {}
    if os.path.exists(meta_path):
        with open(meta_path, encoding='utf-8') as f:
            previous = json.load(f)
        if previous.get('settings') == settings:
            old = previous['songs']
    songs, jobs = {}, []
    for name in names:
        folder, out = os.path.join(dataset_dir, name), os.path.join(data_dir, 'songs', name)
        entry = old.get(name)
        changed = entry is None or entry['fingerprint'] != fingerprint(folder) or (
            entry['status'] == 'ok' and not os.path.exists(os.path.join(out, 'mel.npy')))
        blocks_stale = entry is not None and entry.get('has_lyrics') and (
            entry.get('aligned_by') != aligned_by or not os.path.exists(os.path.join(out, 'onsets.npy')))
        if changed or blocks_stale:
            jobs.append((name, folder, out, settings, align, changed))  # unchanged files: the latents stay
        else:
            songs[name] = entry
    print(f"{len(names)} song folders in {dataset_dir}: {len(jobs)} to prepare, {len(names) - len(jobs)} unchanged")
    if num_workers > 1 and len(jobs) > 1:
        with multiprocessing.get_context('spawn').Pool(min(num_workers, len(jobs))) as pool:
            entries = list(tqdm(pool.imap(prepare_song, jobs), total=len(jobs), desc='prepare'))
    else:
        entries = [prepare_song(job) for job in tqdm(jobs, desc='prepare')]
    for job, entry in zip(jobs, entries):
        songs[job[0]] = entry
    cached = os.path.join(data_dir, 'songs')
    for gone in set(os.listdir(cached) if os.path.isdir(cached) else []) - set(names):
        shutil.rmtree(os.path.join(cached, gone))  # its folder left the dataset
    train, val = split([n for n, e in songs.items() if e['status'] == 'ok'], val_fraction)
    for name, entry in songs.items():
        entry['split'] = 'val' if name in val else 'train' if name in train else None
    meta = dict(settings=settings, vocab=vocabulary(), roles=ROLES, kinds=KINDS, block_columns=BLOCK_COLUMNS,
                split=dict(train=train, val=val), songs=dict(sorted(songs.items())))
    os.makedirs(data_dir, exist_ok=True)
    with open(meta_path + '.tmp', 'w', encoding='utf-8') as f:
        json.dump(meta, f, ensure_ascii=False, indent=1)
    os.replace(meta_path + '.tmp', meta_path)

    ok = [e for e in songs.values() if e['status'] == 'ok']
    hours = sum(e['seconds'] for e in ok) / 3600
    print(f"{len(ok)} songs ok ({hours:.2f} h, {sum(e['has_lyrics'] for e in ok)} with lyrics; "
          f"{len(train)} train / {len(val)} val), {len(songs) - len(ok)} skipped -> {meta_path}")
    for name, entry in songs.items():
        if entry['status'] != 'ok':
            print(f"  skipped {name}: {entry['reason']}", file=sys.stderr)
    return meta


if __name__ == '__main__':
    prepare(**configure(globals()))
