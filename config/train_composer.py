# the Composer at a real size, for one GPU
model = 'composer'
data_dir = 'data/songs'
out_dir = 'out-composer'
batch_size = 32
n_layer = 8
n_head = 8
n_embd = 512
dropout = 0.1
max_iters = 20000
lr_decay_iters = 20000
warmup_iters = 500
learning_rate = 3e-4
min_lr = 3e-5
weight_decay = 0.1
# compile and dtype: train.py's defaults on a GPU, torch.compile and bfloat16; its compile took over 120 s
# on an H100 (2026-11-23, not timed further): worth it for 20000 steps, set compile=False for a short try
eval_interval = 1000
eval_iters = 50
