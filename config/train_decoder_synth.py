# the Decoder on the synthetic corpus, sized for a 2-core CPU: 6 to 14 minutes, and 3 more to encode
# the corpus's latents the first time. Reads the frozen out-ae-synth and out-composer-synth
# checkpoints (train them first).
model = 'decoder'
data_dir = 'data/synth'
out_dir = 'out-decoder-synth'
ae_ckpt = 'out-ae-synth/ckpt.pt'
composer_ckpt = 'out-composer-synth/ckpt.pt'
device = 'cpu'
dtype = 'float32'
compile = False  # measured with dropout 0.1: 0.70 s against 0.75 s a step here, after a 104 s compile
batch_size = 8
block_size = 256  # latent rows per window: 16 s (a row is 8 frames, 64 ms)
n_layer = 4
n_head = 4
n_embd = 192
head_width = 192
head_layers = 3
head_samples = 2
dropout = 0.0  # train and val losses stay equal without it, and on a CPU its masks cost a quarter of a step
input_noise = 0.0
max_rows = 4096  # 262 s: longer plans are refused by sample.py
max_iters = 1300
lr_decay_iters = 1300
warmup_iters = 50
learning_rate = 2e-3  # 1e-3 for the same steps: val loss 0.336 against 0.297, rollouts read at 0.915 against 0.860
min_lr = 2e-4
weight_decay = 0.1
eval_interval = 250
eval_iters = 10
log_interval = 50
