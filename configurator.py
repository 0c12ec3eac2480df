"""
Config overrides in the manner of nanoGPT, shared by every script:

    python train.py config/train_ae_synth.py --batch_size=8 --compile=False

A script defines its defaults as module-level names, then calls
`config = configure(globals())`. The config keys are the lower-case module-level names whose
value is a bool, int, float or str (UPPER_CASE names are constants). Each argument is either a config file (plain Python that
reassigns some of those names) or `--key=value`. An unknown key, or a value whose type
differs from the default's, is an error that names the key.
"""
import ast
import sys

CONFIG_TYPES = (bool, int, float, str)


def _is_key(name, value):
    return not name.startswith('_') and not name.isupper() and type(value) in CONFIG_TYPES


def _checked(key, value, defaults, source):
    if key not in defaults:
        known = ', '.join(sorted(defaults))
        raise SystemExit(f"{source}: unknown config key '{key}' (known keys: {known})")
    default = defaults[key]
    if type(value) is int and type(default) is float:
        value = float(value)  # learning_rate = 1 means 1.0
    if type(value) is not type(default):
        raise SystemExit(f"{source}: config key '{key}' wants {type(default).__name__}, "
                         f"got {type(value).__name__} {value!r}")
    return value


def peek(key, default, argv=None):
    """The value `key` will have once configure() has run, read ahead: train.py needs `model`
    to know which stage's keys there are."""
    value = default
    for arg in sys.argv[1:] if argv is None else argv:
        if arg.startswith('--'):
            name, _, text = arg[2:].partition('=')
            value = text if name == key else value
        else:
            scope = {}
            with open(arg, encoding='utf-8') as f:
                exec(compile(f.read(), arg, 'exec'), scope)
            value = scope.get(key, value)
    return value


def configure(defaults, argv=None):
    """Override the config names in `defaults` (a script's globals()) in place; return them as a dict."""
    argv = sys.argv[1:] if argv is None else argv
    keys = {k: v for k, v in defaults.items() if _is_key(k, v)}
    for arg in argv:
        if not arg.startswith('--'):
            with open(arg, encoding='utf-8') as f:
                source = f.read()
            scope = {}
            exec(compile(source, arg, 'exec'), scope)
            for key, value in scope.items():
                if not _is_key(key, value):
                    continue  # imports, helpers, constants, __builtins__
                keys[key] = _checked(key, value, keys, arg)
        else:
            if '=' not in arg:
                raise SystemExit(f"argument '{arg}': write it as --key=value")
            key, text = arg[2:].split('=', 1)
            if isinstance(keys.get(key), str):
                value = text  # strings need no quotes: --device=cuda
            else:
                try:
                    value = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    value = text  # the type check below names the key
            keys[key] = _checked(key, value, keys, f"--{key}")
    defaults.update(keys)
    return keys
