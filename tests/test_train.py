"""train.py end to end on a tiny prepared cache: exact resume, DDP under torchrun, compile + bf16,
refusals. Each run is a subprocess, as a user runs it."""
import os
import re

import pytest
import torch

from checkpoint import load_checkpoint
from conftest import run_script

TINY_AE = ['--model=ae', '--device=cpu', '--dtype=float32', '--compile=False', '--batch_size=4', '--width=32',
           '--patch=4', '--n_res=1', '--context_rows=2', '--eval_iters=2', '--log_interval=1', '--warmup_iters=2']


def losses(stdout):
    return {int(i): float(v) for i, v in re.findall(r'^iter (\d+): loss ([-\d.eE+naif]+)', stdout, re.M)}


TINY_RECOGNISER = ['--model=recogniser', '--device=cpu', '--dtype=float32', '--compile=False', '--batch_size=4',
                   '--width=32', '--n_layer=2', '--downsample=4', '--stem_channels=4', '--ae_ckpt=', '--eval_iters=2',
                   '--log_interval=1', '--warmup_iters=2']


@pytest.mark.parametrize('stage', [TINY_AE, TINY_RECOGNISER])
def test_resume_matches_an_uninterrupted_run(stage, tiny_data, tmp_path):
    """Batches (cut from the feed) and noise depend only on seed, rank and iteration: a run stopped
    and resumed takes the same steps as one that was not."""
    common = stage + [f'--data_dir={tiny_data}', '--eval_interval=4', '--lr_decay_iters=8', '--ema_decay=0.5']
    whole = losses(run_script('train.py', *common, '--max_iters=8', f'--out_dir={tmp_path / "whole"}').stdout)
    first = losses(run_script('train.py', *common, '--max_iters=4', f'--out_dir={tmp_path / "split"}').stdout)
    second = losses(run_script('train.py', *common, '--max_iters=8', f'--out_dir={tmp_path / "split"}',
                               '--init_from=resume').stdout)
    assert sorted(first) == [0, 1, 2, 3] and sorted(second) == [4, 5, 6, 7]
    for it, loss in {**first, **second}.items():
        assert abs(loss - whole[it]) < 1e-5, (it, loss, whole[it])
    resumed, uninterrupted = (torch.load(tmp_path / d / 'ckpt.pt', weights_only=False) for d in ('split', 'whole'))
    assert resumed['iter_num'] == 8
    ema = uninterrupted['ema']
    for k in ema:  # the moving average resumes too, and is not the last weights
        assert torch.allclose(resumed['ema'][k], ema[k], atol=1e-6), k
    assert any(not torch.equal(ema[k], uninterrupted['model'][k]) for k in ema)
    net = load_checkpoint(tmp_path / 'whole' / 'ckpt.pt')[1]  # what sample.py and eval.py read
    assert all(torch.equal(v, ema[k]) for k, v in net.state_dict().items())


@pytest.mark.parametrize('stage', ['ae', 'composer', 'decoder'])
def test_ddp_ranks_hold_the_same_weights(stage, tiny_data, tiny_bert, tiny_stages, tmp_path):
    args = {'ae': TINY_AE,
            'composer': ['--model=composer', '--n_layer=1', '--n_head=2', '--n_embd=32', f'--style_model={tiny_bert}'],
            'decoder': ['--model=decoder', '--n_layer=1', '--n_head=2', '--n_embd=32', '--head_width=32',
                        '--block_size=32', f"--ae_ckpt={tiny_stages['ae']}", f"--composer_ckpt={tiny_stages['composer']}"]}
    common = ['--device=cpu', '--dtype=float32', '--compile=False', '--batch_size=4', '--eval_iters=2',
              '--log_interval=1', '--warmup_iters=2']
    # a wrapper runs train.py in each rank's process, then saves that rank's weights
    wrapper = tmp_path / 'run_rank.py'
    wrapper.write_text(
        "import os, runpy, sys, torch\n"
        f"sys.path.insert(0, {os.getcwd()!r})\n"
        "g = runpy.run_path('train.py', run_name='__main__')\n"
        f"torch.save(g['raw_model'].state_dict(), os.path.join({str(tmp_path)!r}, 'rank%s.pt' % os.environ['RANK']))\n")
    run_script('-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', wrapper, *common, *args[stage],
               f'--data_dir={tiny_data}', '--max_iters=3', '--eval_interval=3', f'--out_dir={tmp_path / "out"}')
    a, b = torch.load(tmp_path / 'rank0.pt'), torch.load(tmp_path / 'rank1.pt')
    start = torch.load(tmp_path / 'out' / 'ckpt.pt', weights_only=False)['model']
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
        assert torch.equal(a[k], start[k]), k  # the checkpoint holds the same weights


def test_compile_and_bfloat16_on_cpu(tiny_data, tmp_path):
    out = run_script('train.py', *TINY_AE, f'--data_dir={tiny_data}', '--max_iters=2', '--eval_interval=2',
                     '--compile=True', '--dtype=bfloat16', f'--out_dir={tmp_path}').stdout
    assert all(map(lambda v: v == v, losses(out).values())) and len(losses(out)) == 2
    assert os.path.exists(tmp_path / 'ckpt.pt')


def test_a_diverging_run_stops_and_keeps_its_checkpoint(tiny_data, tmp_path):
    args = TINY_AE + [f'--data_dir={tiny_data}', f'--out_dir={tmp_path}', '--eval_interval=2']
    run_script('train.py', *args, '--max_iters=2')
    before = torch.load(tmp_path / 'ckpt.pt', weights_only=False)
    proc = run_script('train.py', *args, '--max_iters=40', '--init_from=resume', '--learning_rate=1e30',
                      '--grad_clip=0.0', '--warmup_iters=0', '--decay_lr=False', check=False)
    assert proc.returncode != 0 and 'the loss became' in proc.stderr and 'Traceback' not in proc.stderr
    after = torch.load(tmp_path / 'ckpt.pt', weights_only=False)
    assert after['iter_num'] == 2 and all(torch.equal(after['model'][k], v) for k, v in before['model'].items())
    assert all(torch.isfinite(v).all() for v in after['model'].values() if v.is_floating_point())


def test_other_audio_settings_are_refused(tiny_data, tiny_corpus, tmp_path):
    import prepare
    from conftest import TINY_SETTINGS
    run_script('train.py', *TINY_AE, f'--data_dir={tiny_data}', '--max_iters=1', '--eval_interval=1', f'--out_dir={tmp_path}')
    other = tmp_path / 'other'
    prepare.prepare(str(tiny_corpus), str(other), num_workers=1, val_fraction=0.25, **dict(TINY_SETTINGS, n_mels=32))
    proc = run_script('train.py', *TINY_AE, f'--data_dir={other}', '--max_iters=2', '--init_from=resume',
                      f'--out_dir={tmp_path}', check=False)
    assert proc.returncode != 0 and 'n_mels is 64 for' in proc.stderr and 'but 32 in' in proc.stderr


@pytest.mark.parametrize('args, message', [
    (['--model=gpt'], 'choose one of ae, composer, decoder, recogniser'),
    (['--init_from=resume'], 'does not exist'),
    (['--data_dir=/nonexistent'], 'prepare.py'),
])
def test_bad_config_is_one_line(tiny_data, tmp_path, args, message):
    proc = run_script('train.py', *TINY_AE, f'--data_dir={tiny_data}', f'--out_dir={tmp_path}', *args, check=False)
    assert proc.returncode != 0 and message in proc.stderr and 'Traceback' not in proc.stderr
