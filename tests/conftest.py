import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


@pytest.fixture(scope='session')
def tiny_corpus(tmp_path_factory):
    """Four short synthetic songs, one per style, at 16 kHz."""
    import synth
    out = tmp_path_factory.mktemp('corpus')
    synth.main(str(out), n_songs=4, seed=3, sample_rate=16000, min_seconds=12.0, max_seconds=16.0, num_workers=1)
    return out
