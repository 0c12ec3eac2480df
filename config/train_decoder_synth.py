# the Decoder on the synthetic corpus, sized for a 2-core CPU: 12 minutes on a fast day in bfloat16 (train.py's
# default on a CPU with AVX512-BF16; in float32 a step takes 1.8x as long), and 3 more to encode the corpus's
# latents the first time. Reads the frozen out-ae-synth and out-composer-synth
# checkpoints (train them first).
model = 'decoder'
data_dir = 'data/synth'
out_dir = 'out-decoder-synth'
ae_ckpt = 'out-ae-synth/ckpt.pt'
composer_ckpt = 'out-composer-synth/ckpt.pt'
device = 'cpu'
compile = False  # measured with dropout 0.1: 0.70 s against 0.75 s a step here, after a 104 s compile
batch_size = 8
block_size = 256  # latent rows per window: 16 s (a row is 8 frames, 64 ms)
n_layer = 4
n_head = 4
n_embd = 192
head_width = 192
head_layers = 3
head_samples = 4  # noise draws per row: 2 read the rollouts at 0.506 (sharpness 0.788), 4 at 0.475 (0.754), 5% slower
dropout = 0.0  # train and val losses stay equal without it, and on a CPU its masks cost a quarter of a step
input_noise = 0.0
max_rows = 4096  # 262 s: longer plans are refused by sample.py
max_iters = 3000  # 1300 (float32's, in about 8 minutes) read the rollouts at 0.733; 3000 at 0.547 (before the logit-normal times and 4 draws)
lr_decay_iters = 3000
warmup_iters = 50
learning_rate = 2e-3  # at 1300 steps 1e-3 read the rollouts at 0.915 against 0.860; 3e-3 at 3000 steps: the same losses
min_lr = 2e-4
weight_decay = 0.1
eval_interval = 250
eval_iters = 10
log_interval = 50
