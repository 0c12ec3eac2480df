# the autoencoder at the prototype's size, for one GPU: 256 frames x 256 mels (48 kHz, hop 192:
# about one second) -> 4 x 32 x 32 latents. Cache with prepare.py's defaults first.
model = 'ae'
data_dir = 'data/songs'
out_dir = 'out-ae'
batch_size = 64
patch = 8
width = 512
n_res = 6
context_rows = 8
max_iters = 50000
lr_decay_iters = 50000
warmup_iters = 1000
learning_rate = 1e-3
min_lr = 1e-4
eval_interval = 2000
eval_iters = 50
log_interval = 50
# compile and dtype: train.py's defaults on a GPU, torch.compile and bfloat16 (the synthetic runs: the same losses)
gan_weight = 0.0  # 0.1 adds the patch discriminator with feature matching
