"""
Evaluate a checkpoint of any stage on the validation songs of a prepared cache; the stage is
read from the checkpoint. Prints the figures, then as its last line the same figures as one
JSON object.

    python eval.py --ckpt=out-ae-synth/ckpt.pt --data_dir=data/synth
    python eval.py --ckpt=out-recogniser-synth/ckpt.pt --ae_ckpt=out-ae-synth/ckpt.pt
    python eval.py --samples_dir=samples --data_dir=data/synth     # songs made by sample.py (subfolders too)
"""
import glob
import json
import math
import os

import numpy as np
import scipy.linalg
import soundfile as sf
import torch
import torch.nn.functional as F

import audio
import composer
import decoder
import planner
import recogniser
from checkpoint import check_settings, load_checkpoint, load_meta
from configurator import configure
from lyrics import (END, KIND, LENGTH, LINE, N_TOKENS, ROLE, ROLES, START, STOP, even_onsets, place_lines, plan_arrays,
                    plan_blocks, rhythm_onsets, step_shares, sung_syllables)
from sample import plot_song
from synth import VOICE_BAND_HZ

# -----------------------------------------------------------------------------
ckpt = 'out-ae-synth/ckpt.pt'
data_dir = 'data/synth'
device = 'cpu'
seam_frames = 2  # frames each side of a segment join that count as "at the join"
rollout_seconds = 30.0  # decoder: length of the free-running rollouts
flow_steps = 8  # decoder: Euler steps of the head per row
temperature = 1.0  # decoder: scale of the head's starting noise
cfg_scale = 2.0  # decoder: classifier-free guidance in the rollouts (sample.py's decoder_cfg_scale)
samples_dir = ''  # a folder of sample.py's output: evaluate those songs instead of a checkpoint
recogniser_ckpt = 'out-recogniser-synth/ckpt.pt'  # samples, decoder: reads the songs' lyrics back ('' = not)
ae_ckpt = 'out-ae-synth/ckpt.pt'  # recogniser: it reads this autoencoder's reconstructions too ('' = not)
max_songs = 40  # recogniser: validation songs read (each also through Griffin-Lim: seconds a song)
figure = ''  # decoder: a PNG of the first validation song, real beside generated from its plan
whole_song_seconds = 120.0  # samples: songs at least this long are also judged as whole songs, by thirds
# -----------------------------------------------------------------------------


def song_mels(data_dir, meta, split):
    for name in meta['split'][split]:
        yield name, np.load(os.path.join(data_dir, 'songs', name, 'mel.npy')).astype(np.float32)


@torch.no_grad()
def eval_ae(net, meta, data_dir, device):
    """Whole validation songs through encode_song and decode_song: L1 on log-mels, against always
    predicting the training set's mean frame; the L1 of the frames at segment joins against the
    rest; and the sharpness of the reconstructions where the songs sing, which caps the Decoder's
    (rollout_figures)."""
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


@torch.no_grad()
def eval_composer(net, meta, data_dir, device, checkpoint):
    """Teacher-forced accuracies on the validation songs (also with every song's style swapped for
    another style's), and plans sampled for their lyrics against their real form."""
    config = dict(checkpoint['config'], device=device)
    data = composer.load_data(data_dir, meta, 'val', config)
    train = composer.load_data(data_dir, meta, 'train', config)
    songs, styles = data['songs'], data['styles']
    train_table = np.concatenate([s['table'] for s in train['songs']])
    placed_classes = train_table[train_table[:, KIND] != STOP, LENGTH]
    common_class = np.bincount(placed_classes).argmax()

    def accuracies(style_rows=None):
        batch = {k: x.to(device) for k, x in composer.collate(songs, styles, style_rows).items()}
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
    fps, errors = audio.frame_rate(meta['settings']), dict(rhythm=[], even=[])
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


@torch.no_grad()
def load_reader(settings, data_dir):
    """The lyric recogniser at recogniser_ckpt, or None (with a line saying so)."""
    if not (recogniser_ckpt and os.path.exists(recogniser_ckpt)):
        print(f"no recogniser at recogniser_ckpt='{recogniser_ckpt}': the lyrics are not read back")
        return None
    reader_checkpoint, reader = load_checkpoint(recogniser_ckpt, 'cpu', stage='recogniser')
    check_settings(reader_checkpoint['data_settings'], settings, recogniser_ckpt, f"{data_dir}/meta.json")
    return reader


def read_lines(reader, mel, table, tokens, vocab, settings):
    """What the recogniser reads in each lyric line that ends inside mel (T, n_mels), and those
    lines' syllables: two lists."""
    inside = table[:, END] <= len(mel)  # blocks are in time order: a prefix
    lines = recogniser.song_lines(table[inside], tokens[inside], vocab, len(mel), line_margin(settings))
    return reader.read([mel[a:b] for a, b, _ in lines]), [syllables for _, _, syllables in lines]


def eval_decoder(net, meta, data_dir, device, checkpoint):
    """The head's flow loss on the validation songs (a training diagnostic), then what a listener
    would notice in free-running rollouts of rollout_seconds from each validation song's plan:
    their latents' Frechet distance to the same songs' real latents, the sharpness of their
    decoded mels where the plan sings, whether another song's plan takes them further from the
    song (rollout_figures), and with a recogniser (recogniser_ckpt) the syllable error rate of
    the lines they sing, beside the same lines of the songs' autoencoder reconstructions."""
    config = dict(checkpoint['config'], device=device)
    data = decoder.load_data(data_dir, meta, 'val', config)
    _, ae_model = load_checkpoint(config['ae_ckpt'], device, stage='ae')
    songs, shape = data['songs'], data['latent_shape']
    torch.manual_seed(0)
    batch = {k: x.to(device) for k, x in decoder.collate(data, [(i, 0, len(s['latents'])) for i, s in enumerate(songs)]).items()}
    flow_loss = net(**batch).item()
    h = shape[1]
    n = math.ceil(rollout_seconds * data['frames_per_second'] / data['segment_frames']) * h  # rows, whole segments
    lengths = [min(n, len(s['latents']) // h * h) for s in songs]  # a shorter song is measured over its length
    real = [decoder.from_rows(s['latents'][:k], shape) for s, k in zip(songs, lengths)]

    def rollouts(plans=None):
        batch = {k: x.to(device) for k, x in decoder.collate(data, [(i, 0, n) for i in range(len(songs))], plans).items()}
        echo = torch.stack([F.pad(songs[i]['echo'][:n], (0, n - len(songs[i]['echo'][:n])), value=-1)
                            for i in (plans or range(len(songs)))]).to(device)  # (B, n): the rows each plan's repeats echo
        z = net.generate(batch['latents'][:, 0], *[batch[k] for k in ('row_block', 'row_time', 'row_syllable')], echo,
                         *[batch[k] for k in ('plan', 'plan_mask', 'style', 'style_mask')], flow_steps=flow_steps, temperature=temperature,
                         cfg_scale=cfg_scale).cpu()  # (B, n, row_dim)
        return [decoder.from_rows(z[i, :k], shape) for i, k in enumerate(lengths)]

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
    reader = load_reader(meta['settings'], data_dir)
    if reader is not None:  # the lines each rollout sings, read back; the same lines of the reconstructions
        read = dict(generated=[], reconstructed=[])
        for key in read:
            truth = []
            for song, mel in zip(songs, decoded[key]):
                r, t = read_lines(reader, mel, song['table'], song['tokens'], meta['vocab'], meta['settings'])
                read[key], truth = read[key] + r, truth + t
        others = truth[len(truth) // 2:] + truth[:len(truth) // 2]  # another song's lines
        for suffix, r, t in (('', read['generated'], truth), ('_reconstructed', read['reconstructed'], truth),
                             ('_chance', read['generated'], others)):
            figures['syllable_error_rate' + suffix], figures['tone_free_error_rate' + suffix] = recogniser.error_rates(r, t)
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


def line_margin(settings):
    return int(round(0.25 * audio.frame_rate(settings)))  # 0.25 s either side of a line


@torch.no_grad()
def eval_recogniser(net, meta, data_dir, device):
    """Syllable error rates of the validation songs' lines as the recogniser reads them: from the
    real mels, from the autoencoder's reconstructions, and from both through Griffin-Lim (the way
    a generated song comes out); chance: each line's reading scored against another song's line.
    Then the songs' lines placed without their stamps, by forced alignment and by prepare.py's
    estimate from syllable counts: the error of each line's start against its stamp."""
    s = meta['settings']
    fps = audio.frame_rate(s)
    ae_model = None
    if ae_ckpt:
        ae_checkpoint, ae_model = load_checkpoint(ae_ckpt, device, stage='ae')
        check_settings(ae_checkpoint['data_settings'], s, ae_ckpt, f"{data_dir}/meta.json")
    names = [n for n in meta['split']['val'] if meta['songs'][n].get('timing') == 'lrc'][:max_songs]
    reads, truth, start_errors, failed = {}, [], dict(aligned=[], estimated=[]), 0
    for name in names:
        mel = np.load(os.path.join(data_dir, 'songs', name, 'mel.npy')).astype(np.float32)
        table, tokens = (np.load(os.path.join(data_dir, 'songs', name, f)) for f in ('blocks.npy', 'tokens.npy'))
        lines = recogniser.song_lines(table, tokens, meta['vocab'], len(mel), line_margin(s))
        mels = dict(real=mel)
        if ae_model is not None:
            z = ae_model.encode_song(torch.from_numpy(mel).to(device))
            mels['reconstructed'] = ae_model.decode_song(z)[:len(mel)].cpu().numpy()
        for k in list(mels):  # through Griffin-Lim and back, as a generated song comes out
            wav = audio.mel_to_wav(torch.from_numpy(mels[k]), s['sample_rate'], s['n_fft'], s['hop_length'], s['n_mels'])
            name_gl = 'griffin_lim' if k == 'real' else k + '_griffin_lim'
            mels[name_gl] = audio.mel_spectrogram(wav, s['sample_rate'], s['n_fft'], s['hop_length'], s['n_mels']).numpy()
        for k, m in mels.items():
            reads.setdefault(k, []).extend(net.read([m[a:b] for a, b, _ in lines]))
        truth += [syllables for _, _, syllables in lines]
        stamps = table[table[:, KIND] == LINE, START] / fps
        unstamped = [dict(tokens=syllables, start=None) for _, _, syllables in lines]
        estimated, _, _ = place_lines(dict(lines=unstamped, end_stamps=[]), meta['songs'][name]['seconds'])
        aligned, _ = recogniser.align_lines(recogniser.read_song(net, mel), unstamped, net.config.downsample / fps)
        failed += aligned is None
        for k, placed in (('estimated', estimated), ('aligned', aligned or estimated)):
            start_errors[k] += [abs(line['start'] - t) for line, t in zip(placed, stamps)]
    figures = {}
    others = truth[len(truth) // 2:] + truth[:len(truth) // 2]  # half the lines away: another song's
    for k, read in list(reads.items()) + [('chance', reads['real'])]:
        suffix = '' if k == 'real' else '_' + k
        figures['syllable_error_rate' + suffix], figures['tone_free_error_rate' + suffix] = recogniser.error_rates(
            read, others if k == 'chance' else truth)
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


def frechet_distance(a, b):
    """Frechet distance between Gaussians fitted to two sets of vectors (n, d) and (m, d), as in FID / FAD."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():  # a singular product (few samples): offset the diagonals, as FID does
        offset = 1e-6 * np.eye(len(cov_a))
        covmean = scipy.linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


def spectral_flatness(mel, bins):
    """(frames, n_mels) log-mels -> (frames,) spectral flatness of the linear magnitudes in the
    given mel bins: geometric over arithmetic mean, 1 for flat noise, near 0 for a few sharp lines."""
    magnitude = np.expm1(np.clip(mel[:, bins], 0, None)) + 1e-4
    return np.exp(np.log(magnitude).mean(1)) / magnitude.mean(1)


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


def voice_band(settings):
    """Mel bins that lie above synth.py's VOICE_BAND_HZ: there only the voice sings."""
    bank = audio.mel_filterbank(settings['sample_rate'], settings['n_fft'], settings['n_mels'])  # (M, F)
    center_hz = bank.argmax(1).float() * settings['sample_rate'] / settings['n_fft']
    return (center_hz >= VOICE_BAND_HZ).numpy()


def sung_frames(table, n_frames):
    """(n_frames,) bool: the frames that a block table puts inside lyric lines."""
    sung = np.zeros(n_frames, bool)
    for row in table[table[:, KIND] == LINE]:
        sung[row[START]:row[END]] = True
    return sung


def tempo_bpm(mel, frames_per_second, low=60.0, high=200.0):
    """Tempo from the autocorrelation of the onset envelope (positive spectral flux), searched
    between low and high beats per minute, weighted towards 120 (an octave away weighs 0.6), as
    beat trackers do: a pattern repeats at two and four beats too."""
    flux = np.clip(np.diff(mel, axis=0), 0, None).sum(1)
    flux = flux - flux.mean()
    n = len(flux)
    spectrum = np.fft.rfft(flux, 2 * n)
    autocorrelation = np.fft.irfft(spectrum * np.conj(spectrum))[:n]
    lags = np.arange(int(60 * frames_per_second / high), int(60 * frames_per_second / low) + 1)
    prior = np.exp(-0.5 * np.log2(60 * frames_per_second / lags / 120.0) ** 2)
    return 60 * frames_per_second / lags[np.argmax(autocorrelation[lags] * prior)]


def whole_song_figures(mel, n_frames, frames_per_second, band):
    """Does a song hold together to its end? Over its first n_frames (the plan's length), split in
    thirds: the drums and backing (positive spectral flux below the voice band) in the last third
    against the first; the tempo of each third; and the longest silence in seconds (frames whose
    mean log-mel is under a tenth of the song's median)."""
    mel = mel[:n_frames]
    flux = np.clip(np.diff(mel[:, ~band], axis=0), 0, None).sum(1)
    thirds = np.array_split(np.arange(len(mel)), 3)
    tempo = [tempo_bpm(mel[third], frames_per_second) for third in thirds]
    loudness = mel.mean(1)
    quiet = np.concatenate([[0], (loudness < 0.1 * np.median(loudness)).astype(int), [0]])
    runs = np.diff(np.flatnonzero(np.diff(quiet)))[::2]  # lengths of the runs of quiet frames
    return dict(drums_last_over_first=float(flux[thirds[2][:-1]].mean() / max(flux[thirds[0]].mean(), 1e-9)),
                tempo_by_third=[round(float(t), 1) for t in tempo], tempo_spread=float(max(tempo) / min(tempo) - 1),
                longest_silence=float(runs.max() / frames_per_second) if len(runs) else 0.0)


def pitch_track(mel, settings, low_midi=45.0, high_midi=80.0, lowest_hz=VOICE_BAND_HZ, highest_hz=4000.0):
    """The sung pitch (frames,) in MIDI semitones, from a log-mel spectrogram (frames, n_mels): for
    each candidate pitch (a quarter-tone grid), the log-mel summed at its harmonics inside the
    voice band less the sum halfway between them; the best candidate wins. Only the voice sings in
    that band; a sum, not a mean, rules out the pitch's multiples (fewer harmonics), the troughs
    its octave below. Harmonics 150 Hz apart are 2-3 mel bins apart there, so this is a coarse
    tracker, for comparing one line's tune with another's."""
    centres = audio.mel_frequencies(settings['sample_rate'], settings['n_mels']).double().numpy()
    candidates = np.arange(low_midi, high_midi, 0.25)
    comb = np.zeros((len(candidates), len(centres)))
    for i, f0 in enumerate(440.0 * 2 ** ((candidates - 69) / 12)):
        for sign, shift in ((1.0, 0.0), (-1.0, 0.5)):
            hz = (np.arange(np.ceil(lowest_hz / f0 - shift), highest_hz / f0 - shift) + shift) * f0  # harmonics (or between)
            weights = np.maximum(0, 1 - np.abs(np.interp(hz, centres, np.arange(len(centres)))[:, None] - np.arange(len(centres))))
            comb[i] += sign * weights.sum(0)  # (n_mels,): each harmonic spread over the two nearest bins
    return candidates[np.argmax(mel @ comb.T, 1)]


def tune_memory(mel, table, tokens, settings, parts=8):
    """Is a line that comes back sung to the tune it had? Each lyric line's pitch contour (the
    median pitch of its voiced frames in each of `parts` equal parts of the line), then for every
    two lines of the song the median difference of their contours in semitones, folded onto one
    octave (a coarse tracker may jump an octave). -> (differences of the pairs with the same words,
    differences of the pairs with different words)."""
    pitch, sung = pitch_track(mel, settings), voiced(mel[:, voice_band(settings)].mean(1))
    contours, words = [], []
    for row, line_tokens in zip(table, tokens):
        frames = np.arange(row[START], min(row[END], len(mel)))
        if row[KIND] != LINE or len(frames) < parts:
            continue
        contours.append([np.median(pitch[f[sung[f]]]) if sung[f].any() else np.nan for f in np.array_split(frames, parts)])
        words.append(tuple(line_tokens[:row[N_TOKENS]]))
    same, different = [], []
    for i in range(len(contours)):
        for j in range(i):
            d = np.abs(np.array(contours[i]) - np.array(contours[j])) % 12
            d = np.minimum(d, 12 - d)[np.isfinite(d)]
            if len(d):
                (same if words[i] == words[j] else different).append(float(np.median(d)))
    return same, different


def voiced(energy):
    """Frames where a song's voice-band energy (frames,) is on: Otsu's split of its log energy
    into two classes. Per song, because generated songs are quieter than real ones."""
    level = np.log(energy + 1e-5)
    edges = np.linspace(level.min(), level.max(), 65)
    counts = np.histogram(level, edges)[0].astype(np.float64)
    centers = (edges[1:] + edges[:-1]) / 2
    w = np.cumsum(counts)[:-1]  # frames at or below each candidate split
    mean_low = np.cumsum(counts * centers)[:-1] / np.maximum(w, 1)
    mean_high = (np.sum(counts * centers) - np.cumsum(counts * centers)[:-1]) / np.maximum(len(level) - w, 1)
    between = w * (len(level) - w) * (mean_low - mean_high) ** 2
    return level > edges[1:-1][np.argmax(between)]


def eval_samples(samples_dir, meta, data_dir):
    """Generated songs on the synthetic corpus: where the voice sings (energy in the voice band,
    split per song into on and off) against the plan's lines and gaps, frame by frame; each
    WAV's length against its plan's; the tempo per style text; and silent, clipped or non-finite
    WAVs; with a recogniser (recogniser_ckpt), the syllable error rate of the planned lines. The
    real validation songs' figures are printed beside them as a reference."""
    s = meta['settings']
    band = voice_band(s)
    fps = audio.frame_rate(s)
    reader = load_reader(s, data_dir)

    real_agree, real_tempo, real_read, real_truth, real_whole = [], {}, [], [], []
    tunes = dict(generated=([], []), real=([], []))  # pitch differences of lines with the same words, with other words
    for name, mel in song_mels(data_dir, meta, 'val'):
        table = np.load(os.path.join(data_dir, 'songs', name, 'blocks.npy'))
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
        table, tokens = plan_arrays(blocks, s)
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
                                longest_silence_max=max(f['longest_silence'] for f in songs))
        same, different = tunes['generated' if key == 'whole' else 'real']
        if songs and same:  # medians over every two lines of a song, in semitones
            figures[key].update(tune_same_words=float(np.median(same)), tune_other_words=float(np.median(different)))
    for key, name in (('whole', 'generated'), ('whole_real', 'real validation')):
        if key in figures:
            f = figures[key]
            print(f"{f['songs']} {name} songs of {whole_song_seconds:.0f} s or more: drums in the last third / the first "
                  f"{f['drums_last_over_first']:.2f} (median); tempo by third apart by {f['tempo_spread_max']:.1%} at most; "
                  f"longest silence {f['longest_silence_max']:.1f} s")
            if 'tune_same_words' in f:
                print(f"  a line sung again is {f['tune_same_words']:.2f} semitones from its first tune; lines of other "
                      f"words {f['tune_other_words']:.2f} (median pitch-contour difference, folded onto an octave)")
    if reader is not None:
        others = sung_truth[len(sung_truth) // 2:] + sung_truth[:len(sung_truth) // 2]  # another song's lines
        for suffix, read, truth in (('', sung_read, sung_truth), ('_real', real_read, real_truth),
                                    ('_chance', sung_read, others)):
            figures['syllable_error_rate' + suffix], figures['tone_free_error_rate' + suffix] = \
                recogniser.error_rates(read, truth)
        print(f"lyrics read back: syllable error rate {figures['syllable_error_rate']:.3f} "
              f"(tone-free {figures['tone_free_error_rate']:.3f}); the real validation songs "
              f"{figures['syllable_error_rate_real']:.3f} ({figures['tone_free_error_rate_real']:.3f}); "
              f"chance {figures['syllable_error_rate_chance']:.3f} ({figures['tone_free_error_rate_chance']:.3f})")
        figures['syllable_error_rate_by_style'] = {k: round(recogniser.error_rates(*v)[0], 4) for k, v in read_by_style.items()}
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
        print(json.dumps(eval_samples(samples_dir, meta, data_dir)))
        raise SystemExit
    checkpoint, net = load_checkpoint(ckpt, device)
    check_settings(checkpoint['data_settings'], meta['settings'], ckpt, f"{data_dir}/meta.json")
    if checkpoint['stage'] == 'ae':
        figures = eval_ae(net, meta, data_dir, device)
    elif checkpoint['stage'] == 'composer':
        figures = eval_composer(net, meta, data_dir, device, checkpoint)
    elif checkpoint['stage'] == 'recogniser':
        figures = eval_recogniser(net, meta, data_dir, device)
    else:
        figures = eval_decoder(net, meta, data_dir, device, checkpoint)
    print(json.dumps({k: round(v, 5) if isinstance(v, float) else v for k, v in figures.items()}))
