# the lyric recogniser on the synthetic corpus, sized for a 2-core CPU: 4.7 minutes on a fast day (bfloat16).
# Learns from the LRC-timed lines of data/synth (python prepare.py config/prepare_synth.py).
model = 'recogniser'
data_dir = 'data/synth'
out_dir = 'out-recogniser-synth'
ae_ckpt = 'out-ae-synth/ckpt.pt'  # half the lines are read from its reconstructions
device = 'cpu'
compile = False
batch_size = 16
stem_channels = 16  # 2-D convolutions over (frequency, time): 32 read 0.136 for 0.158, in 1.8x the time
width = 192
n_layer = 4  # dilated 1, 2, 4, 8
downsample = 8  # 64 ms steps: a syllable of the fastest style (rock, 0.21 s) gets 3, for its 2 units
dropout = 0.1
max_iters = 4500  # float32, no weight decay: 3300 read real lines at 0.121, reconstructed at 0.165 (through Griffin-Lim 0.179); 4500: 0.104, 0.133 (0.151)
lr_decay_iters = 4500
warmup_iters = 50
learning_rate = 2e-3
min_lr = 2e-4
# it overfits (train loss 0.03, val 0.16): weight decay 0 read real lines at 0.107 and reconstructions through
# Griffin-Lim at 0.159; 0.1 at 0.092 and 0.149; 0.3 at 0.091 and 0.140
weight_decay = 0.3
eval_interval = 500
eval_iters = 10
log_interval = 100
