#!/usr/bin/env bash
# The whole pipeline on the synthetic corpus, from a fresh clone, on a CPU: makes the corpus, caches it,
# trains the four models, sings three songs of new lyrics (examples/eval/) in three styles, and
# measures them: against their plans, their words read back (apart for syllables the corpus never
# sang), and by thirds (README, "Where it stands", for both runs' figures and times).
#   bash demo.sh        # the quick run, 22 minutes on 2 cores: 150 songs, an eighth to a fifth of the
#                       # configs' steps, the first 60 s of each song: it shows the chain runs, not how well it sings
#   bash demo.sh full   # about 2 hours on 2 cores: 700 songs, the configs' own steps, whole songs
# On a machine where another process holds a core, run it as `OMP_WAIT_POLICY=PASSIVE bash
# demo.sh`: torch's spinning threads collapse there (docs/notes.md, "Audio maths").
set -euo pipefail
if [ "${1:-}" = full ]; then
    songs=700 ae=2000 recogniser=4500 composer=1500 decoder=9000 seconds=260
else
    songs=150 ae=400 recogniser=700 composer=200 decoder=1100 seconds=60
fi
timed() { local start=$SECONDS; "$@"; echo "demo: $2 took $((SECONDS - start)) s"; }
pip install -q -r requirements.txt
timed python synth.py --n_songs=$songs          # dataset/synth: 4 styles, a fifth of the songs whole
timed python prepare.py config/prepare_synth.py # data/synth: mels, tokens, blocks
timed python train.py config/train_ae_synth.py --max_iters=$ae --lr_decay_iters=$ae  # out-ae-synth/ckpt.pt
timed python train.py config/train_recogniser_synth.py --max_iters=$recogniser --lr_decay_iters=$recogniser
timed python prepare.py config/prepare_synth.py --align_ckpt=out-recogniser-synth/ckpt.pt  # where each syllable is sung
timed python train.py config/train_composer_synth.py --max_iters=$composer --lr_decay_iters=$composer  # learns the rhythm
timed python train.py config/train_decoder_synth.py --max_iters=$decoder --lr_decay_iters=$decoder
timed python sample.py --lyrics=examples/eval/home.txt --out_dir=samples/home --max_seconds=$seconds \
    --style="slow piano ballad, soft female vocal, brushed drums, 72 bpm"
timed python sample.py --lyrics=examples/eval/weekend.txt --out_dir=samples/weekend --max_seconds=$seconds \
    --style="upbeat electronic pop, bright female vocal, synth pad, four-on-the-floor kick, 120 bpm"
timed python sample.py --lyrics=examples/eval/photo.txt --out_dir=samples/photo --max_seconds=$seconds \
    --style="fast rock, gritty male vocal, distorted bass guitar, heavy drums, 144 bpm"
timed python eval.py --samples_dir=samples --data_dir=data/synth
echo "demo: $((SECONDS / 60)) min in all; the songs are in samples/home, samples/weekend and samples/photo (sample_0.wav, .plan.json, .png)"
