#!/usr/bin/env bash
# The whole pipeline on the synthetic corpus, from a fresh clone, on a CPU (two cores: README,
# "Where it stands", for its time). Makes the corpus, caches it, trains the four models, sings
# three whole songs of new lyrics (examples/eval/) in three styles, and measures them: against
# their plans, their words read back (apart for syllables the corpus never sang), and by thirds.
# On a machine where another process holds a core, run it as `OMP_WAIT_POLICY=PASSIVE bash
# demo.sh`: torch's spinning threads collapse there (docs/notes.md, "Audio maths").
set -euo pipefail
pip install -q -r requirements.txt
python synth.py                                   # dataset/synth: 700 songs, 4 styles, a fifth of them whole songs
python prepare.py config/prepare_synth.py         # data/synth: mels, tokens, blocks
python train.py config/train_ae_synth.py          # out-ae-synth/ckpt.pt
python train.py config/train_recogniser_synth.py  # out-recogniser-synth/ckpt.pt
python prepare.py config/prepare_synth.py --align_ckpt=out-recogniser-synth/ckpt.pt  # where each syllable is sung
python train.py config/train_composer_synth.py    # out-composer-synth/ckpt.pt: learns the rhythm from those
python train.py config/train_decoder_synth.py     # out-decoder-synth/ckpt.pt
python sample.py --lyrics=examples/eval/home.txt --out_dir=samples/home --max_seconds=260 \
    --style="slow piano ballad, soft female vocal, brushed drums, 72 bpm"
python sample.py --lyrics=examples/eval/weekend.txt --out_dir=samples/weekend --max_seconds=260 \
    --style="upbeat electronic pop, bright female vocal, synth pad, four-on-the-floor kick, 120 bpm"
python sample.py --lyrics=examples/eval/photo.txt --out_dir=samples/photo --max_seconds=260 \
    --style="fast rock, gritty male vocal, distorted bass guitar, heavy drums, 144 bpm"
python eval.py --samples_dir=samples --data_dir=data/synth
echo "the songs are in samples/home, samples/weekend and samples/photo (sample_0.wav, .plan.json, .png)"
