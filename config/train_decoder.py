# the Decoder at a real size, for one GPU: over the latents of config/train_ae.py's autoencoder
# (4 x 32 x 32 per second) and the block embeddings of config/train_composer.py's Composer
model = 'decoder'
data_dir = 'data/songs'
out_dir = 'out-decoder'
ae_ckpt = 'out-ae/ckpt.pt'
composer_ckpt = 'out-composer/ckpt.pt'
batch_size = 16
block_size = 256  # about four minutes of song per window
n_layer = 12
n_head = 12
n_embd = 768
dropout = 0.1
input_noise = 0.5
max_iters = 50000
lr_decay_iters = 50000
warmup_iters = 1000
learning_rate = 3e-4
min_lr = 3e-5
weight_decay = 0.1
eval_interval = 2000
eval_iters = 50
