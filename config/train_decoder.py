# the Decoder at a real size, for one GPU: over the latent rows of config/train_ae.py's autoencoder
# (4 x 32 channels-by-columns per row, 31 rows a second at 48 kHz) and the block embeddings of
# config/train_composer.py's Composer
model = 'decoder'
data_dir = 'data/songs'
out_dir = 'out-decoder'
ae_ckpt = 'out-ae/ckpt.pt'
composer_ckpt = 'out-composer/ckpt.pt'
batch_size = 16
block_size = 1024  # latent rows per window: about 33 s of song
n_layer = 12
n_head = 12
n_embd = 768
head_width = 768
head_layers = 3
head_samples = 4  # noise draws per row: 5% of a step over 2 at this size (15.4 against 14.7 TFLOPs an iteration);
# the synthetic config's 2 paid because its head is most of its step
dropout = 0.1
max_iters = 50000
lr_decay_iters = 50000
warmup_iters = 1000
learning_rate = 3e-4
min_lr = 3e-5
weight_decay = 0.1
ema_decay = 0.999  # sample with the weights' moving average: the synthetic Decoder's rollouts read 0.278 against 0.296
# compile and dtype: train.py's defaults on a GPU, torch.compile and bfloat16 (the synthetic runs: the same losses)
eval_interval = 2000
eval_iters = 50
