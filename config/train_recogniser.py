# the lyric recogniser at a real size, for one GPU: 48 kHz mels (hop 192, 250 frames a second),
# learning from the songs whose lyrics.txt is LRC-timed. Then place the lines of the songs without
# stamps: python prepare.py --dataset_dir=... --data_dir=data/songs --align_ckpt=out-recogniser/ckpt.pt
model = 'recogniser'
data_dir = 'data/songs'
out_dir = 'out-recogniser'
ae_ckpt = 'out-ae/ckpt.pt'  # half the lines are read from its reconstructions (train it first)
batch_size = 32
width = 512
n_layer = 6  # dilated 1 ... 32: 253 steps (16 s) of context
downsample = 16  # 64 ms steps, as on the synthetic corpus
dropout = 0.1
max_iters = 30000
lr_decay_iters = 30000
warmup_iters = 500
learning_rate = 1e-3
min_lr = 1e-4
weight_decay = 0.3  # it overfits: on the synthetic corpus 0.3 read real lines at 0.091 against 0.107 without
# compile and dtype: train.py's defaults on a GPU, torch.compile and bfloat16 (the synthetic runs: the same losses)
eval_interval = 1000
eval_iters = 50
