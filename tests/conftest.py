import json
import os
import pathlib
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from filelock import FileLock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
if os.environ.get('PYTEST_XDIST_WORKER'):  # `pytest -n auto`: one thread a worker, or torch's threads spin on each other's cores
    os.environ['OMP_NUM_THREADS'] = '1'


def shared(tmp_path_factory, name, make):
    """A session fixture made once for all of pytest-xdist's workers: the first to ask runs
    make(folder) -> a JSON value; the others wait for it and read it."""
    root = tmp_path_factory.getbasetemp()
    root = root.parent if os.environ.get('PYTEST_XDIST_WORKER') else root
    done = root / f'{name}.json'
    with FileLock(f'{done}.lock'):
        if not done.exists():
            (root / name).mkdir()
            done.write_text(json.dumps(make(root / name)))
    return json.loads(done.read_text())


@pytest.fixture(scope='session')
def tiny_corpus(tmp_path_factory):
    """Four short synthetic songs, one per style, at 16 kHz."""
    import synth

    def make(out):
        synth.main(str(out), n_songs=4, seed=3, sample_rate=16000, min_seconds=12.0, max_seconds=16.0, num_workers=1)
        return str(out)
    return pathlib.Path(shared(tmp_path_factory, 'corpus', make))


TINY_SETTINGS = dict(sample_rate=16000, n_fft=512, hop_length=128, n_mels=64, segment_frames=32, max_block_seconds=8.0,
                     min_gap_seconds=0.5, n_length_classes=8, max_block_tokens=24)


@pytest.fixture(scope='session')
def tiny_data(tiny_corpus, tmp_path_factory):
    """tiny_corpus prepared with small audio settings: 64 mels, 32-frame segments; 3 train / 1 val songs."""
    import prepare

    def make(data):
        prepare.prepare(str(tiny_corpus), str(data), num_workers=1, val_fraction=0.25, **TINY_SETTINGS)
        return str(data)
    return pathlib.Path(shared(tmp_path_factory, 'data', make))


def run_script(*args, cwd=ROOT, check=True, timeout=600, env=None):
    """Run `python <args>` in the repo root; -> CompletedProcess with text output."""
    import subprocess
    full_env = dict(os.environ, OMP_NUM_THREADS='1', **(env or {}))
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope='session')
def tiny_bert(tmp_path_factory):
    def make(folder):
        import torch
        from transformers import BertConfig, BertModel, BertTokenizerFast
        words = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + 'slow fast pop rock folk ballad piano guitar bpm , 72 96 120 144'.split()
        (folder / 'vocab.txt').write_text('\n'.join(words) + '\n')
        BertTokenizerFast(vocab_file=str(folder / 'vocab.txt')).save_pretrained(folder)
        torch.manual_seed(0)
        BertModel(BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=64, max_position_embeddings=64)).save_pretrained(folder)
        return str(folder)
    return shared(tmp_path_factory, 'tiny-bert', make)


TINY_TRAIN = ['--device=cpu', '--compile=False', '--dtype=float32', '--warmup_iters=10', '--eval_iters=2',
              '--log_interval=100']


@pytest.fixture(scope='session')
def tiny_models(tiny_data, tiny_bert, tmp_path_factory):
    """A tiny autoencoder, Composer and Decoder, and a tiny lyric recogniser, trained on tiny_data
    by train.py (the recogniser beside the other three, which follow each other): their
    checkpoint paths, and the Decoder's training log ('decoder_log')."""
    def make(out):
        paths = {stage: str(out / stage / 'ckpt.pt') for stage in ('ae', 'composer', 'decoder', 'recogniser')}
        common = TINY_TRAIN + [f'--data_dir={tiny_data}']
        with ThreadPoolExecutor(1) as pool:
            reading = pool.submit(run_script, 'train.py', '--model=recogniser', f'--out_dir={out}/recogniser',
                                  '--batch_size=8', '--ae_ckpt=', '--width=96', '--n_layer=3', '--downsample=4',
                                  '--stem_channels=8', '--dropout=0.0', '--max_iters=500', '--lr_decay_iters=500',
                                  '--learning_rate=3e-3', '--min_lr=3e-4', '--eval_interval=500', *common)
            common.append(f'--style_model={tiny_bert}')
            run_script('train.py', '--model=ae', f'--out_dir={out}/ae', '--batch_size=16', '--patch=8', '--width=32',
                       '--n_res=1', '--context_rows=2', '--max_iters=300', '--lr_decay_iters=300',
                       '--learning_rate=2e-3', '--eval_interval=300', *common)
            run_script('train.py', '--model=composer', f'--out_dir={out}/composer', '--batch_size=4', '--n_layer=1',
                       '--n_head=2', '--n_embd=32', '--max_iters=100', '--eval_interval=100', *common)
            paths['decoder_log'] = run_script(
                'train.py', '--model=decoder', f'--out_dir={out}/decoder', f"--ae_ckpt={paths['ae']}",
                f"--composer_ckpt={paths['composer']}", '--batch_size=4', '--block_size=64', '--n_layer=2',
                '--n_head=2', '--n_embd=64', '--head_width=64', '--max_iters=300', '--lr_decay_iters=300',
                '--eval_interval=300', *common).stdout
            reading.result()
        return paths
    return shared(tmp_path_factory, 'models', make)


@pytest.fixture(scope='session')
def tiny_stages(tiny_models):
    """tiny_models' autoencoder, Composer and Decoder: {'ae': path, ..., 'decoder_log': text}."""
    return {k: v for k, v in tiny_models.items() if k != 'recogniser'}


@pytest.fixture(scope='session')
def tiny_recogniser(tiny_models):
    """tiny_models' lyric recogniser, trained on tiny_data's three training songs: its checkpoint."""
    return tiny_models['recogniser']
