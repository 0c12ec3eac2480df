#!/usr/bin/env bash
# The whole pipeline on the synthetic corpus, from a fresh clone, on a CPU: 22 to 40 minutes on
# two cores. Makes the corpus, caches it, trains the four models, sings two lyric files in two
# styles, and measures the songs: against their plans, and their words read back. On a machine
# where another process holds a core, run it as `OMP_WAIT_POLICY=PASSIVE bash demo.sh`: torch's
# spinning threads collapse there (docs/notes.md, "Audio maths"); on an idle machine it is slower.
set -euo pipefail
pip install -q -r requirements.txt
python synth.py                                   # dataset/synth: 1000 songs, 4 styles
python prepare.py config/prepare_synth.py         # data/synth: mels, tokens, blocks
python train.py config/train_ae_synth.py          # out-ae-synth/ckpt.pt
python train.py config/train_recogniser_synth.py  # out-recogniser-synth/ckpt.pt
python prepare.py config/prepare_synth.py --align_ckpt=out-recogniser-synth/ckpt.pt  # where each syllable is sung
python train.py config/train_composer_synth.py    # out-composer-synth/ckpt.pt: learns the rhythm from those
python train.py config/train_decoder_synth.py     # out-decoder-synth/ckpt.pt
python sample.py --lyrics=examples/moon.txt --out_dir=samples/ballad \
    --style="slow piano ballad, soft female vocal, brushed drums, 72 bpm"
python sample.py --lyrics=examples/road.txt --out_dir=samples/rock \
    --style="fast rock, gritty male vocal, distorted bass guitar, heavy drums, 144 bpm"
python eval.py --samples_dir=samples --data_dir=data/synth
echo "the songs are in samples/ballad and samples/rock (sample_0.wav, .plan.json, .png)"
