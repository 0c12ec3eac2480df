"""
Evaluate a checkpoint of any stage on the validation songs of a prepared cache; the stage is
read from the checkpoint. Prints the figures, then as its last line the same figures as one
JSON object.

    python eval.py --ckpt=out-ae-synth/ckpt.pt --data_dir=data/synth
"""
import json
import os

import numpy as np
import torch

# -----------------------------------------------------------------------------
ckpt = 'out-ae-synth/ckpt.pt'
data_dir = 'data/synth'
device = 'cpu'
seam_frames = 2  # frames each side of a segment join that count as "at the join"
# -----------------------------------------------------------------------------


def song_mels(data_dir, meta, split):
    for name in meta['split'][split]:
        yield name, np.load(os.path.join(data_dir, 'songs', name, 'mel.npy')).astype(np.float32)


@torch.no_grad()
def eval_ae(net, meta, data_dir, device):
    """Whole validation songs through encode_song and decode_song: L1 on log-mels, against always
    predicting the training set's mean frame; and the L1 of the frames at segment joins against the rest."""
    total, count = 0.0, 0
    for _, mel in song_mels(data_dir, meta, 'train'):
        total, count = total + mel.sum(0), count + len(mel)
    mean_frame = total / count
    F_ = net.config.segment_frames
    errors, baseline = [], []
    for _, mel in song_mels(data_dir, meta, 'val'):
        x = torch.from_numpy(mel).to(device)
        recon = net.decode_song(net.encode_song(x))[:len(mel)]
        errors.append((recon - x).abs().mean(1).cpu().numpy())  # (frames,) L1 per frame
        baseline.append(np.abs(mel - mean_frame).mean(1))
    at_join = [np.isin(np.arange(len(e)) % F_, list(range(seam_frames)) + list(range(F_ - seam_frames, F_)))
               for e in errors]
    for e, j in zip(errors, at_join):
        j[:seam_frames] = False  # the song's start and end are not joins
        j[(len(e) - 1) // F_ * F_ + F_ - seam_frames:] = False
    errors, at_join, baseline = np.concatenate(errors), np.concatenate(at_join), np.concatenate(baseline)
    figures = dict(val_l1=float(errors.mean()), mean_frame_l1=float(baseline.mean()),
                   seam_ratio=float(errors[at_join].mean() / errors[~at_join].mean()))
    print(f"{len(meta['split']['val'])} validation songs, {len(errors)} frames")
    print(f"val L1 on log-mels      {figures['val_l1']:.4f}  "
          f"({figures['val_l1'] / figures['mean_frame_l1']:.3f} of the mean-frame baseline)")
    print(f"mean-frame baseline L1  {figures['mean_frame_l1']:.4f}")
    print(f"seam ratio              {figures['seam_ratio']:.3f}  (L1 within {seam_frames} frames of a "
          f"segment join / L1 elsewhere)")
    return figures


@torch.no_grad()
def eval_composer(net, meta, data_dir, device, checkpoint):
    """Teacher-forced accuracies on the validation songs (also with every song's style swapped for
    another style's), and plans sampled for their lyrics against their real form."""
    import composer
    from lyrics import KINDS, ROLES
    data = composer.load_data(data_dir, meta, 'val', checkpoint['config'])
    train = composer.load_data(data_dir, meta, 'train', checkpoint['config'])
    songs, styles = data['songs'], data['styles']
    train_table = np.concatenate([s['table'] for s in train['songs']])
    placed_classes = train_table[train_table[:, composer.KIND] != composer.STOP, composer.LENGTH]
    common_class = np.bincount(placed_classes).argmax()

    def accuracies(style_rows=None):
        batch = [x.to(device) for x in composer.collate(songs, styles, style_rows)]
        out, table = net.logits(*batch), batch[0]
        kind = table[..., composer.KIND]
        placed = (kind >= 0) & (kind != composer.STOP)
        hit = lambda name, col: (out[name].argmax(-1) == table[..., col])[placed].float().mean().item()
        gap_hit = (out['kind'][..., :2].argmax(-1) == kind)[placed].float().mean().item()  # line or gap
        baseline = (table[..., composer.LENGTH] == int(common_class))[placed].float().mean().item()
        return hit('length', composer.LENGTH), baseline, gap_hit, hit('role', composer.ROLE)

    length_acc, length_base, gap_acc, role_acc = accuracies()
    # another style for every song: the next style text of the table that differs from its own
    texts = styles['texts']
    others = [next(r for r in range(s['style'] + 1, s['style'] + len(texts)) if texts[r % len(texts)] not in ('', texts[s['style']])) % len(texts)
              for s in songs]
    swapped_acc = accuracies(others)[0]

    in_order, errors = [], []
    vocab = meta['vocab']
    for i, s in enumerate(songs):
        rows = np.flatnonzero(s['table'][:, composer.KIND] == composer.LINE)
        pieces = [dict(text='', tokens=[vocab[t] for t in s['tokens'][r, :s['table'][r, composer.N_TOKENS]]],
                       role=ROLES[s['table'][r, composer.ROLE]]) for r in rows]
        blocks = composer.plan(net, pieces, styles['embeddings'][s['style']], styles['mask'][s['style']],
                               meta['settings'], temperature=1.0, seed=i)
        sung = [b['pinyin'] for b in blocks if b['kind'] == 'line']
        in_order.append(sum(a == ' '.join(p['tokens']) for a, p in zip(sung, pieces)) / len(pieces) if len(sung) == len(pieces) else 0.0)
        real = meta['songs'][s['name']]['seconds']
        errors.append(abs(blocks[-1]['start'] - real) / real)
    figures = dict(length_acc=length_acc, length_acc_baseline=length_base, gap_acc=gap_acc, role_acc=role_acc,
                   lines_in_order=float(np.mean(in_order)), length_error_median=float(np.median(errors)),
                   length_acc_swapped_style=swapped_acc)
    print(f"{len(songs)} validation songs; teacher-forced unless it says sampled")
    print(f"length-class accuracy     {length_acc:.3f}  (always the most common class: {length_base:.3f})")
    print(f"  with another song's style {swapped_acc:.3f}")
    print(f"gap-versus-line accuracy  {gap_acc:.3f}")
    print(f"role accuracy             {role_acc:.3f}")
    print(f"sampled plans: lines placed in order {figures['lines_in_order']:.3f}, "
          f"median |planned - real length| / real {figures['length_error_median']:.3f}")
    return figures


if __name__ == '__main__':
    from configurator import configure
    from train import check_settings, load_checkpoint, load_meta
    configure(globals())
    checkpoint, net = load_checkpoint(ckpt, device)
    meta = load_meta(data_dir)
    check_settings(checkpoint['data_settings'], meta['settings'], ckpt, f"{data_dir}/meta.json")
    if checkpoint['stage'] == 'ae':
        figures = eval_ae(net, meta, data_dir, device)
    else:
        figures = eval_composer(net, meta, data_dir, device, checkpoint)
    print(json.dumps({k: round(v, 5) if isinstance(v, float) else v for k, v in figures.items()}))
