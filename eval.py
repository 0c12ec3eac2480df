"""
Evaluate a checkpoint of any stage on the validation songs of a prepared cache (the stage is
read from the checkpoint, and its model file's `evaluate` measures it), or songs that sample.py
made. Prints the figures, then as its last line the same figures as one JSON object.

    python eval.py --ckpt=out-ae-synth/ckpt.pt --data_dir=data/synth
    python eval.py --ckpt=out-recogniser-synth/ckpt.pt --ae_ckpt=out-ae-synth/ckpt.pt
    python eval.py --samples_dir=samples --data_dir=data/synth     # songs made by sample.py (subfolders too)
"""
import glob
import json
import os

import numpy as np
import soundfile as sf
import torch

import ae
import audio
import composer
import decoder
import planner
import recogniser
from checkpoint import check_settings, load_checkpoint, load_meta
from configurator import configure
from lyrics import plan_arrays
from measures import song_mels, sung_frames, tempo_bpm, tune_memory, voice_band, voiced, whole_song_figures
from recogniser import error_figures, error_rates, read_lines

# -----------------------------------------------------------------------------
ckpt = 'out-ae-synth/ckpt.pt'
data_dir = 'data/synth'
device = 'cpu'
seam_frames = 2  # frames each side of a segment join that count as "at the join"
rollout_seconds = 30.0  # decoder: length of the free-running rollouts
flow_steps = 8  # decoder: Euler steps of the head per row
decoder_temperature = 1.0  # decoder: scale of the head's starting noise (as in sample.py)
decoder_cfg_scale = 2.0  # decoder: classifier-free guidance in the rollouts, 1.0 = off (as in sample.py)
samples_dir = ''  # a folder of sample.py's output: evaluate those songs instead of a checkpoint
recogniser_ckpt = 'out-recogniser-synth/ckpt.pt'  # samples, decoder: reads the songs' lyrics back ('' = not)
ae_ckpt = 'out-ae-synth/ckpt.pt'  # recogniser: it reads this autoencoder's reconstructions too ('' = not)
max_songs = 40  # recogniser: validation songs read (each also through Griffin-Lim: seconds a song)
figure = ''  # decoder: a PNG of the first validation song, real beside generated from its plan
whole_song_seconds = 120.0  # samples: songs at least this long are also judged as whole songs, by thirds
# -----------------------------------------------------------------------------


def load_reader(path, settings, data_dir):
    """The lyric recogniser at path, or None (with a line saying so)."""
    if not (path and os.path.exists(path)):
        print(f"no recogniser at recogniser_ckpt='{path}': the lyrics are not read back")
        return None
    reader_checkpoint, reader = load_checkpoint(path, 'cpu', stage='recogniser')
    check_settings(reader_checkpoint['data_settings'], settings, path, f"{data_dir}/meta.json")
    return reader


def eval_samples(samples_dir, meta, data_dir, reader, whole_song_seconds):
    """Generated songs on the synthetic corpus: where the voice sings (energy in the voice band,
    split per song into on and off) against the plan's lines and gaps, frame by frame; each
    WAV's length against its plan's; the tempo per style text; and silent, clipped or non-finite
    WAVs; with a recogniser (recogniser_ckpt), the syllable error rate of the planned lines. The
    real validation songs' figures are printed beside them as a reference. Songs of
    whole_song_seconds or more are also judged as whole songs: by thirds, and their tunes. Each
    generated song is measured at the real songs' loudness (its mel magnitudes scaled to their
    median mean), as a listener turns a quiet song up: sample.py scales a song to its peak, and
    Griffin-Lim's peaks leave it quieter than the corpus, which the recogniser reads worse."""
    s = meta['settings']
    band = voice_band(s)
    fps = audio.frame_rate(s)

    real_agree, real_tempo, real_read, real_truth, real_whole, real_level = [], {}, [], [], [], []
    tunes = dict(generated=([], []), real=([], []))  # pitch differences of lines with the same words, with other words
    for name, mel in song_mels(data_dir, meta, 'val'):
        table = np.load(os.path.join(data_dir, 'songs', name, 'blocks.npy'))
        real_level.append(np.expm1(mel).mean())  # the mean mel magnitude (mels are log1p of it)
        if len(mel) >= whole_song_seconds * fps:
            real_whole.append(whole_song_figures(mel, len(mel), fps, band))
            for pairs, found in zip(tunes['real'], tune_memory(mel, table, np.load(os.path.join(data_dir, 'songs', name,
                                                                                              'tokens.npy')), s)):
                pairs.extend(found)
        real_agree.append(np.mean(voiced(mel[:, band].mean(1)) == sung_frames(table, len(mel))))
        real_tempo.setdefault(meta['songs'][name].get('style', ''), []).append(tempo_bpm(mel, fps))
        if reader is not None and meta['songs'][name].get('timing') == 'lrc':
            read, truth = read_lines(reader, mel, table, np.load(os.path.join(data_dir, 'songs', name, 'tokens.npy')),
                                     meta['vocab'], s)
            real_read, real_truth = real_read + read, real_truth + truth

    loudness = np.median(real_level)
    paths = sorted(glob.glob(os.path.join(samples_dir, '**', 'sample_*.wav'), recursive=True))
    if not paths:
        raise SystemExit(f"no sample_*.wav in {samples_dir}; make them with sample.py --out_dir={samples_dir}")
    trained = {meta['vocab'][t] for name in meta['split']['train'] if meta['songs'][name].get('n_blocks')
               for t in np.unique(np.load(os.path.join(data_dir, 'songs', name, 'tokens.npy')))}  # syllables sung in training
    agree, length_errors, tempo, bad, sung_read, sung_truth, read_by_style, whole = [], [], {}, 0, [], [], {}, []
    for path in paths:
        wav, sr = sf.read(path, dtype='float32')
        blocks, style_text, _ = planner.read_plan(path[:-len('.wav')] + '.plan.json')
        if sr != s['sample_rate']:
            raise SystemExit(f"{path} is at {sr} Hz, the data at {s['sample_rate']} Hz")
        if not np.isfinite(wav).all() or np.sqrt(np.mean(wav ** 2)) < 1e-3 or np.mean(np.abs(wav) >= 0.999) > 1e-3:
            bad += 1
        mel = audio.mel_spectrogram(torch.from_numpy(wav), sr, s['n_fft'], s['hop_length'], s['n_mels']).numpy()
        magnitude = np.expm1(mel)
        mel = np.log1p(magnitude * loudness / max(magnitude.mean(), 1e-9))  # at the real songs' loudness
        table, tokens, _ = plan_arrays(blocks, s)
        agree.append(np.mean(voiced(mel[:, band].mean(1)) == sung_frames(table, len(mel))))
        if reader is not None:
            read, truth = read_lines(reader, mel, table, tokens, meta['vocab'], s)
            sung_read, sung_truth = sung_read + read, sung_truth + truth
            read_by_style.setdefault(style_text, ([], []))
            read_by_style[style_text][0].extend(read), read_by_style[style_text][1].extend(truth)
        planned = blocks[-1]['start']
        length_errors.append(abs(len(wav) / sr - planned) / planned)
        if planned >= whole_song_seconds:
            whole.append(whole_song_figures(mel, round(planned * fps), fps, band))
            f = whole[-1]  # each whole song on its own line too: which one drifts, and where
            print(f"{os.path.relpath(path, samples_dir)}: {planned:.0f} s; drums last / first third "
                  f"{f['drums_last_over_first']:.2f}; tempo by third {' '.join(f'{t:.0f}' for t in f['tempo_by_third'])}; "
                  f"longest silence {f['longest_silence']:.1f} s")
            for pairs, found in zip(tunes['generated'], tune_memory(mel, table, tokens, s)):
                pairs.extend(found)
        tempo.setdefault(style_text, []).append(tempo_bpm(mel, fps))
    figures = dict(voice_agreement=float(np.mean(agree)), length_error_max=float(max(length_errors)),
                   tempo_by_style={k: round(float(np.mean(v)), 1) for k, v in tempo.items()}, silent_or_clipped=bad)
    print(f"{len(paths)} samples in {samples_dir}")
    print(f"voice activity agrees with the plan on {figures['voice_agreement']:.3f} of frames "
          f"(the real validation songs: {np.mean(real_agree):.3f})")
    print(f"largest |WAV length - plan length| / plan length  {figures['length_error_max']:.4f}")
    for text, bpm in figures['tempo_by_style'].items():
        real = f"{np.mean(real_tempo[text]):.1f}" if text in real_tempo else 'none'
        print(f"tempo {bpm:6.1f} bpm (real songs of this style: {real})  '{text}'")
    print(f"silent, clipped or non-finite WAVs: {bad}")
    for key, songs in (('whole', whole), ('whole_real', real_whole)):
        if songs:  # the medians over the songs; the worst song's silence and tempo spread
            figures[key] = dict(songs=len(songs), drums_last_over_first=float(np.median([f['drums_last_over_first'] for f in songs])),
                                tempo_spread_max=max(f['tempo_spread'] for f in songs),
                                tempo_steady=sum(f['tempo_spread'] <= 0.05 for f in songs),  # one tempo to the end
                                longest_silence_max=max(f['longest_silence'] for f in songs))
        same, different = tunes['generated' if key == 'whole' else 'real']
        if songs and same:  # medians over every two lines of a song, in semitones
            figures[key].update(tune_same_words=float(np.median(same)), tune_other_words=float(np.median(different)))
    for key, name in (('whole', 'generated'), ('whole_real', 'real validation')):
        if key in figures:
            f = figures[key]
            print(f"{f['songs']} {name} songs of {whole_song_seconds:.0f} s or more: drums in the last third / the first "
                  f"{f['drums_last_over_first']:.2f} (median); the same tempo in every third (within 5%) in {f['tempo_steady']} "
                  f"of them, apart by {f['tempo_spread_max']:.1%} at most; "
                  f"longest silence {f['longest_silence_max']:.1f} s")
            if 'tune_same_words' in f:
                print(f"  a line sung again is {f['tune_same_words']:.2f} semitones from its first tune; lines of other "
                      f"words {f['tune_other_words']:.2f} (median pitch-contour difference, folded onto an octave)")
    if reader is not None:
        figures.update(error_figures({'': sung_read}, sung_truth))
        figures['syllable_error_rate_real'], figures['tone_free_error_rate_real'] = error_rates(real_read, real_truth)
        print(f"lyrics read back: syllable error rate {figures['syllable_error_rate']:.3f} "
              f"(tone-free {figures['tone_free_error_rate']:.3f}); the real validation songs "
              f"{figures['syllable_error_rate_real']:.3f} ({figures['tone_free_error_rate_real']:.3f}); "
              f"chance {figures['syllable_error_rate_chance']:.3f} ({figures['tone_free_error_rate_chance']:.3f})")
        figures['syllable_error_rate_by_style'] = {k: round(error_rates(*v)[0], 4) for k, v in read_by_style.items()}
        for text, rate in figures['syllable_error_rate_by_style'].items():
            print(f"  {rate:.3f}  '{text}'")
        # the share of syllables not read as written (insertions aside), split by whether training sang them
        missed = np.concatenate([recogniser.missed(r, t) for r, t in zip(sung_read, sung_truth)])
        seen = np.array([syllable in trained for t in sung_truth for syllable in t])
        for key, part in (('seen', seen), ('unseen', ~seen)):
            figures[f'missed_{key}'] = round(float(missed[part].mean()), 4) if part.any() else None
            figures[f'n_{key}'] = int(part.sum())
        print(f"syllables not read as written: {figures['missed_seen']} of the {figures['n_seen']} that training sang, "
              f"{figures['missed_unseen']} of the {figures['n_unseen']} it never sang")
    return figures

if __name__ == '__main__':
    configure(globals())
    meta = load_meta(data_dir)
    if samples_dir:
        reader = load_reader(recogniser_ckpt, meta['settings'], data_dir)
        print(json.dumps(eval_samples(samples_dir, meta, data_dir, reader, whole_song_seconds)))
        raise SystemExit
    checkpoint, net = load_checkpoint(ckpt, device)
    check_settings(checkpoint['data_settings'], meta['settings'], ckpt, f"{data_dir}/meta.json")
    if checkpoint['stage'] == 'ae':
        figures = ae.evaluate(net, meta, data_dir, device, seam_frames)
    elif checkpoint['stage'] == 'composer':
        figures = composer.evaluate(net, meta, data_dir, device, checkpoint['config'])
    elif checkpoint['stage'] == 'recogniser':
        ae_model = None
        if ae_ckpt:
            ae_checkpoint, ae_model = load_checkpoint(ae_ckpt, device, stage='ae')
            check_settings(ae_checkpoint['data_settings'], meta['settings'], ae_ckpt, f"{data_dir}/meta.json")
        figures = recogniser.evaluate(net, meta, data_dir, device, ae_model, max_songs)
    else:
        figures = decoder.evaluate(net, meta, data_dir, device, checkpoint['config'],
                                   load_reader(recogniser_ckpt, meta['settings'], data_dir), rollout_seconds, flow_steps,
                                   decoder_temperature, decoder_cfg_scale, figure)
    print(json.dumps({k: round(v, 5) if isinstance(v, float) else v for k, v in figures.items()}))
