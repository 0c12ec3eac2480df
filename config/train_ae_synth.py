# the autoencoder on the synthetic corpus (python synth.py; python prepare.py config/prepare_synth.py),
# sized for a 2-core CPU: 2 minutes on a fast day in bfloat16. 128 frames x 128 mels -> 4 x 16 x 16 latents.
model = 'ae'
data_dir = 'data/synth'
out_dir = 'out-ae-synth'
device = 'cpu'
compile = False
batch_size = 16
patch = 8
width = 256
n_res = 4
context_rows = 4
max_iters = 2000
lr_decay_iters = 2000
warmup_iters = 50
learning_rate = 2e-3
min_lr = 2e-4
eval_interval = 500
eval_iters = 10
log_interval = 50
