"""sample.py: end to end on tiny checkpoints trained in the tests (WAV, plan, picture; the same
seed gives the same WAV; an edited plan renders; eval.py --samples_dir reads the output), and
every bad input is one line and a non-zero exit."""
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

import audio
import eval as eval_script
import measures
import planner
import sample
import synth
from checkpoint import load_meta
from conftest import TINY_TRAIN, run_script
from lyrics import vocabulary_hash

LYRICS = '[verse]\n我爱你\n你爱我\n[chorus]\n蜜雪冰城甜蜜蜜\n'


def stage_args(stages, out_dir):
    return [f"--ae_ckpt={stages['ae']}", f"--composer_ckpt={stages['composer']}", f"--decoder_ckpt={stages['decoder']}",
            f'--out_dir={out_dir}', '--device=cpu', '--griffin_lim_iters=8']


def test_sample_end_to_end(tiny_stages, tiny_recogniser, tiny_data, tmp_path, monkeypatch):
    lyrics = tmp_path / 'lyrics.txt'
    lyrics.write_text(LYRICS.replace('我爱你', '我爱你さくら'), encoding='utf-8')  # kana: dropped, with a note
    out = run_script('sample.py', f'--lyrics={lyrics}', '--style=slow ballad, 72 bpm', '--num_samples=2',
                     *stage_args(tiny_stages, tmp_path / 'a')).stdout
    assert 'planning' in out and 'Griffin-Lim' in out and 'wrote' in out and "dropped 'さくら'" in out
    for i in range(2):
        name = tmp_path / 'a' / f'sample_{i}'
        info = sf.info(f'{name}.wav')
        assert info.samplerate == 16000 and info.subtype == 'PCM_16'
        blocks, style, pulse = planner.read_plan(f'{name}.plan.json')
        assert style == 'slow ballad, 72 bpm'
        assert pulse == 0.0  # the tiny corpus's syllables are not aligned: no pulse, plans off any grid
        assert [b['pinyin'] for b in blocks if b['kind'] == 'line'] == ['wo3 ai4 ni3', 'ni3 ai4 wo3',
                                                                        'mi4 xue3 bing1 cheng2 tian2 mi4 mi4']
        assert abs(info.duration - blocks[-1]['start']) <= 0.05 * blocks[-1]['start']
        wav, _ = sf.read(f'{name}.wav')
        assert np.isfinite(wav).all() and np.abs(wav).max() > 0.1
        assert (tmp_path / 'a' / f'sample_{i}.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    # the rest in this process (sample.main with its config keys set), which spares a start-up each;
    # on one thread, as run_script's, so that the same seed gives the same bytes
    def sample_again(folder, **keys):
        keys = dict(dict(arg[2:].split('=', 1) for arg in stage_args(tiny_stages, tmp_path / folder)), **keys)
        for key, value in dict(dict(lyrics='', plan='', style='', pulse=-1.0, num_samples=1), **keys).items():
            monkeypatch.setattr(sample, key, type(getattr(sample, key))(value))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            sample.main()
        finally:
            torch.set_num_threads(threads)
    # the same seed gives the same WAV; an edited plan renders as edited
    sample_again('b', lyrics=str(lyrics), style='slow ballad, 72 bpm')
    assert (tmp_path / 'a' / 'sample_0.wav').read_bytes() == (tmp_path / 'b' / 'sample_0.wav').read_bytes()
    plan = json.loads((tmp_path / 'a' / 'sample_0.plan.json').read_text(encoding='utf-8'))
    plan['blocks'][-1]['start'] += 2.0  # two more seconds at the end
    (tmp_path / 'edited.json').write_text(json.dumps(plan, ensure_ascii=False), encoding='utf-8')
    sample_again('c', plan=str(tmp_path / 'edited.json'))
    assert sf.info(tmp_path / 'c' / 'sample_0.wav').duration == pytest.approx(plan['blocks'][-1]['start'], abs=0.05)
    # a pulse given: the plan is on its grid and says so; 0: off any grid
    for pulse, folder in ((0.25, 'd'), (0.0, 'e')):
        sample_again(folder, lyrics=str(lyrics), pulse=pulse)
        blocks, _, used = planner.read_plan(tmp_path / folder / 'sample_0.plan.json')
        assert used == pulse
        assert pulse == 0 or all(abs(b['start'] / pulse - round(b['start'] / pulse)) < 1e-3 for b in blocks)
    # the evaluation of generated songs reads the folder (and, with a recogniser, the songs' words)
    out = run_script('eval.py', f"--samples_dir={tmp_path / 'a'}", f'--data_dir={tiny_data}', '--recogniser_ckpt=').stdout
    figures = json.loads(out.strip().splitlines()[-1])
    assert set(figures) == {'voice_agreement', 'length_error_max', 'tempo_by_style', 'silent_or_clipped'}
    assert 'the lyrics are not read back' in out
    meta = load_meta(tiny_data)
    reader = eval_script.load_reader(tiny_recogniser, meta['settings'], tiny_data)
    figures = eval_script.eval_samples(str(tmp_path / 'a'), meta, str(tiny_data), reader, 120.0)
    for key in ('syllable_error_rate', 'syllable_error_rate_real', 'syllable_error_rate_chance', 'tone_free_error_rate',
                'tone_free_error_rate_real', 'tone_free_error_rate_chance'):
        assert 0.0 <= figures[key] <= 3.0, key
    assert figures['length_error_max'] < 0.05 and figures['silent_or_clipped'] == 0
    assert list(figures['tempo_by_style']) == ['slow ballad, 72 bpm']
    # a song is measured at the real songs' loudness: the same songs at a tenth of the level measure the same
    (tmp_path / 'quiet').mkdir()
    for i in range(2):
        wav, sr = sf.read(tmp_path / 'a' / f'sample_{i}.wav', dtype='float32')
        sf.write(tmp_path / 'quiet' / f'sample_{i}.wav', 0.1 * wav, sr, subtype='FLOAT')
        shutil.copy(tmp_path / 'a' / f'sample_{i}.plan.json', tmp_path / 'quiet')
    quiet = eval_script.eval_samples(str(tmp_path / 'quiet'), meta, str(tiny_data), reader, 120.0)
    for key in ('voice_agreement', 'syllable_error_rate', 'tone_free_error_rate'):
        assert quiet[key] == pytest.approx(figures[key], abs=1e-3), key


@pytest.fixture
def run_sample(tiny_stages, tmp_path, monkeypatch):
    """Run sample.main() in this process with the given keys; -> the message it stopped with."""
    import sample
    defaults = dict(ae_ckpt=tiny_stages['ae'], composer_ckpt=tiny_stages['composer'],
                    decoder_ckpt=tiny_stages['decoder'], out_dir=str(tmp_path / 'out'), device='cpu',
                    dtype='float32', lyrics='', plan='', style='')

    def run(**keys):
        for key, value in dict(defaults, **keys).items():
            monkeypatch.setattr(sample, key, value)
        with pytest.raises(SystemExit) as stop:
            sample.main()
        message = str(stop.value)
        assert message and '\n' not in message
        return message
    return run


def write(path, text):
    path.write_text(text, encoding='utf-8')
    return str(path)


def test_bad_lyrics(run_sample, tmp_path):
    assert 'give one of' in run_sample()
    assert 'does not exist' in run_sample(lyrics=str(tmp_path / 'missing.txt'))
    assert 'is empty' in run_sample(lyrics=write(tmp_path / 'empty.txt', '\n\n'))
    assert 'no singable line' in run_sample(lyrics=write(tmp_path / 'none.txt', '[chorus]\n!!! 😀\n'))


def test_bad_plans(run_sample, tmp_path):
    assert 'cannot read plan' in run_sample(plan=write(tmp_path / 'broken.json', '{"blocks": ['))
    blocks = [dict(kind='gap', role='intro', start=0.0, seconds=2.0, finish=False, length_class=3),
              dict(kind='line', role='verse', start=1.0, seconds=2.0, finish=True, length_class=3, pinyin='wo3'),
              dict(kind='end', start=3.0)]
    message = run_sample(plan=write(tmp_path / 'overlap.json', json.dumps(dict(style='', blocks=blocks))))
    assert 'before block 0 ends' in message
    blocks = [dict(kind='gap', role='intro', start=0.0, seconds=4.0, finish=False, length_class=3),
              dict(kind='end', start=4.0)]
    message = run_sample(plan=write(tmp_path / 'short.json', json.dumps(dict(style='', blocks=blocks))), max_seconds=2.0)
    assert "shorter than the plan's first block" in message


def test_bad_checkpoints(run_sample, tiny_stages, tiny_data, tmp_path):
    lyrics = write(tmp_path / 'lyrics.txt', LYRICS)
    assert 'does not exist' in run_sample(lyrics=lyrics, decoder_ckpt=str(tmp_path / 'missing.pt'))
    assert 'cannot be read' in run_sample(lyrics=lyrics, composer_ckpt=write(tmp_path / 'corrupt.pt', 'not a checkpoint'))
    assert "holds the 'ae' stage where the 'decoder' stage is needed" in run_sample(lyrics=lyrics,
                                                                                   decoder_ckpt=tiny_stages['ae'])
    # a Composer made for other audio settings
    checkpoint = torch.load(tiny_stages['composer'], weights_only=False)
    checkpoint['data_settings'] = dict(checkpoint['data_settings'], n_mels=128)
    torch.save(checkpoint, tmp_path / 'composer.pt')
    message = run_sample(lyrics=lyrics, composer_ckpt=str(tmp_path / 'composer.pt'))
    assert f"n_mels is 64 for {tiny_stages['decoder']} but 128 in {tmp_path / 'composer.pt'}" in message
    # checkpoints made with another pypinyin's vocabulary (tokens may be renumbered)
    for stage in ('ae', 'composer', 'decoder'):
        checkpoint = torch.load(tiny_stages[stage], weights_only=False)
        checkpoint['data_settings'] = dict(checkpoint['data_settings'], vocab_hash='0123456789ab')
        torch.save(checkpoint, tmp_path / f'{stage}.pt')
    message = run_sample(lyrics=lyrics, **{f'{stage}_ckpt': str(tmp_path / f'{stage}.pt') for stage in ('ae', 'composer', 'decoder')})
    assert f"vocab_hash is 0123456789ab for {tmp_path / 'composer.pt'} but {vocabulary_hash()} in this pypinyin's" in message
    # an autoencoder with another latent shape
    run_script('train.py', '--model=ae', f'--data_dir={tiny_data}', f'--out_dir={tmp_path}/ae', '--patch=4',
               '--width=16', '--n_res=1', '--context_rows=2', '--batch_size=2', '--max_iters=1', '--eval_interval=1',
               *TINY_TRAIN)
    message = run_sample(lyrics=lyrics, ae_ckpt=str(tmp_path / 'ae' / 'ckpt.pt'))
    assert 'row_dim is 32 for' in message and 'but 64 in' in message


def test_whole_song_figures_see_drums_fade_tempo_drift_and_silence():
    fps, n_mels = 50, 16
    band = np.arange(n_mels) >= 12  # the voice band: the top bins

    def song(bpm_by_third, drums_by_third, silence=(0, 0)):
        mel = np.full((3 * 60 * fps, n_mels), 0.5, np.float32)
        for third, (bpm, level) in enumerate(zip(bpm_by_third, drums_by_third)):
            t0 = third * 60 * fps
            for beat in np.arange(t0, t0 + 60 * fps, 60 * fps / bpm).astype(int):
                mel[beat:beat + 3, :12] += level
        mel[silence[0]:silence[1]] = 0.0
        return measures.whole_song_figures(mel, len(mel), fps, band)

    steady = song((120, 120, 120), (2.0, 2.0, 2.0))
    assert 0.9 < steady['drums_last_over_first'] < 1.1 and steady['tempo_spread'] < 0.03
    assert steady['longest_silence'] == 0.0 and all(abs(t - 120) < 2 for t in steady['tempo_by_third'])
    faded = song((120, 120, 120), (2.0, 1.0, 0.05), silence=(7000, 7400))
    assert faded['drums_last_over_first'] < 0.1 and abs(faded['longest_silence'] - 8.0) < 0.1
    assert song((120, 120, 96), (2.0, 2.0, 2.0))['tempo_spread'] > 0.2


def test_tune_memory_tells_a_line_sung_again_from_another_tune():
    sr, settings = 16000, dict(sample_rate=16000, n_fft=1024, hop_length=128, n_mels=128)
    rng = np.random.default_rng(0)
    tunes = dict(a=[60, 62, 64, 65], b=[67, 64, 69, 62])  # two lines' notes; 'a' comes back
    wav, table, tokens = [], [], np.zeros((3, 24), np.int64)
    for i, name in enumerate('aba'):
        start = sum(len(w) for w in wav) // settings['hop_length']
        wav += [synth.sing('ma1', midi, 0.4, sr, synth.STYLES['ballad'], rng, 1.0) for midi in tunes[name]]
        table.append([0, 2, 0, 1, start, sum(len(w) for w in wav) // settings['hop_length'], 4])
        tokens[i, :4] = 5 if name == 'a' else 6
    mel = audio.mel_spectrogram(torch.from_numpy(np.concatenate(wav)).float(), sr, 1024, 128, 128).numpy()
    pitch = measures.pitch_track(mel, settings)
    note = [np.median(pitch[round((0.4 * k + 0.15) * 125):round((0.4 * k + 0.3) * 125)]) for k in range(4)]
    assert np.allclose(note, tunes['a'], atol=0.6), note  # the notes, to a quarter tone or so (ma1: no bend)
    same, different = measures.tune_memory(mel, np.array(table), tokens, settings)
    assert len(same) == 1 and len(different) == 2
    assert same[0] < 0.5 and min(different) > 1.5, (same, different)
