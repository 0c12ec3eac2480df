# the synthetic corpus (python synth.py): 16 kHz audio, so smaller FFTs and mels than the
# prototype's 48 kHz settings; one segment is 128 frames = 1.02 s
dataset_dir = 'dataset/synth'
data_dir = 'data/synth'
sample_rate = 16000
n_fft = 1024
hop_length = 128
n_mels = 128
segment_frames = 128
num_workers = 2
