import pytest

from configurator import configure, peek


def defaults():
    return dict(batch_size=8, learning_rate=1e-3, compile=False, device='cpu', CONSTANT=3, helper=print)


def test_overrides_from_command_line():
    g = defaults()
    config = configure(g, ['--batch_size=32', '--learning_rate=2', '--compile=True', '--device=cuda:1'])
    assert config == dict(batch_size=32, learning_rate=2.0, compile=True, device='cuda:1')
    assert g['batch_size'] == 32 and type(g['learning_rate']) is float


def test_config_file_then_command_line(tmp_path):
    path = tmp_path / 'c.py'
    path.write_text("import math\nbatch_size = 4\ndevice = 'mps'\n_private = 1\n")
    g = defaults()
    configure(g, [str(path), '--batch_size=16'])
    assert g['batch_size'] == 16 and g['device'] == 'mps'


def test_unknown_key_is_named():
    with pytest.raises(SystemExit, match="unknown config key 'batch_sise'"):
        configure(defaults(), ['--batch_sise=3'])


def test_unknown_key_in_file_is_named(tmp_path):
    path = tmp_path / 'c.py'
    path.write_text("lerning_rate = 0.1\n")
    with pytest.raises(SystemExit, match="lerning_rate"):
        configure(defaults(), [str(path)])


@pytest.mark.parametrize('arg', ['--batch_size=2.5', '--compile=yes', '--batch_size=abc', '--learning_rate=True'])
def test_wrong_type_is_named(arg):
    key = arg[2:].split('=')[0]
    with pytest.raises(SystemExit, match=f"'{key}' wants"):
        configure(defaults(), [arg])


def test_constants_are_not_keys():
    with pytest.raises(SystemExit, match='unknown'):
        configure(defaults(), ['--CONSTANT=4'])


def test_peek_reads_one_key_ahead(tmp_path):
    path = tmp_path / 'c.py'
    path.write_text("model = 'decoder'\nn_layer = 4\n")
    assert peek('model', 'ae', []) == 'ae'
    assert peek('model', 'ae', [str(path)]) == 'decoder'
    assert peek('model', 'ae', [str(path), '--model=recogniser']) == 'recogniser'
