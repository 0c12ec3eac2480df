# the Decoder on the synthetic corpus, sized for a 2-core CPU: a few minutes. Reads the frozen
# out-ae-synth and out-composer-synth checkpoints (train them first).
model = 'decoder'
data_dir = 'data/synth'
out_dir = 'out-decoder-synth'
ae_ckpt = 'out-ae-synth/ckpt.pt'
composer_ckpt = 'out-composer-synth/ckpt.pt'
device = 'cpu'
dtype = 'float32'
compile = False
batch_size = 8
block_size = 64  # every synthetic song fits in one window
n_layer = 4
n_head = 4
n_embd = 256
dropout = 0.1
input_noise = 0.5  # against drift in free-running rollouts (README, "The decoder")
max_iters = 1500
lr_decay_iters = 1500
warmup_iters = 50
learning_rate = 1e-3
min_lr = 1e-4
weight_decay = 0.1
eval_interval = 500
eval_iters = 10
log_interval = 50
