# the Decoder on the synthetic corpus, sized for a 2-core CPU: 14 minutes on a fast day in bfloat16 (train.py's
# default on a CPU with AVX512-BF16; in float32 a step takes 1.8x as long), and 3 more to encode the corpus's
# latents the first time. Reads the frozen out-ae-synth and out-composer-synth
# checkpoints (train them first).
model = 'decoder'
data_dir = 'data/synth'
out_dir = 'out-decoder-synth'
ae_ckpt = 'out-ae-synth/ckpt.pt'
composer_ckpt = 'out-composer-synth/ckpt.pt'
device = 'cpu'
compile = False  # a step of 8 x 256 rows in bfloat16: 228 against 234 ms eager, after a 34 s compile (float32 with dropout: 0.70 against 0.75 s)
batch_size = 4  # twice the updates for the same rows: 2400 x 4 read the rollouts at 0.630 where 1200 x 8 read 0.727 (10% longer); 4800 x 2 at 1.009 (at lr 1e-3: 0.664)
block_size = 256  # latent rows per window: 16 s (a row is 8 frames, 64 ms)
n_layer = 2  # the trunk carries the plan and the rows before, the head learns the row: at 6000 x 4 the rollouts read
# 0.296 with 2 layers and a head of 320 (11.4 min), 0.309 with 3 and 256 (13.1), 0.414 with 4 and 192 (12.75)
n_head = 4
n_embd = 192
head_width = 320
head_layers = 3
head_samples = 2  # noise draws per row: the head is most of a step; 2 x 9000 steps read 0.215 where 4 x 7000 read 0.262, same time
dropout = 0.0  # on a CPU its masks cost a quarter of a step; at 9000 x 4 the losses part a little (train 0.111, val 0.129)
input_noise = 0.0
max_iters = 9000  # the time 2 layers and 2 draws save, spent on steps (docs/experiments.md, 2026-12-07)
lr_decay_iters = 9000
warmup_iters = 50
learning_rate = 2e-3  # at 1300 steps 1e-3 read the rollouts at 0.915 against 0.860; 3e-3 at 3000 steps: the same losses
min_lr = 2e-4
weight_decay = 0.1
ema_decay = 0.999  # sample with the weights' moving average: rollouts read 0.278 / 0.294 (two draws) against 0.296 / 0.289
eval_interval = 500
eval_iters = 20
log_interval = 50
