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


if __name__ == '__main__':
    from configurator import configure
    from train import check_settings, load_checkpoint, load_meta
    configure(globals())
    checkpoint, net = load_checkpoint(ckpt, device)
    meta = load_meta(data_dir)
    check_settings(checkpoint['data_settings'], meta['settings'], ckpt, f"{data_dir}/meta.json")
    evaluations = {'ae': eval_ae}
    figures = evaluations[checkpoint['stage']](net, meta, data_dir, device)
    print(json.dumps({k: round(v, 5) if isinstance(v, float) else v for k, v in figures.items()}))
