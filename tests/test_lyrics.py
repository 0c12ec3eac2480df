import numpy as np
import pytest

from composer import song_pulse, syllable_steps
from lyrics import (BLOCK_COLUMNS, END, FINISH, KIND, LINE, N_TOKENS, ROLES, START, build_blocks, class_seconds, encode,
                    even_onsets, length_class, parse_lyrics, place_lines, plan_arrays, plan_blocks, read_lyrics, rhythm,
                    rhythm_onsets, tokenize, vocabulary)
from planner import step_shares


# --- tokenization --------------------------------------------------------------------------

def test_tones_and_neutral_tone():
    assert tokenize('你好') == ['ni3', 'hao3']
    assert tokenize('我们的') == ['wo3', 'men5', 'de5']  # neutral tone is 5


@pytest.mark.parametrize('text, expected', [
    ('银行', ['yin2', 'hang2']), ('行走', ['xing2', 'zou3']),
    ('音乐', ['yin1', 'yue4']), ('快乐', ['kuai4', 'le4']),
    ('长大', ['zhang3', 'da4']), ('长城', ['chang2', 'cheng2']),
])
def test_polyphones_read_in_context(text, expected):
    assert tokenize(text) == expected


def test_mixed_scripts():
    # Latin: one <en> per vowel group; digits read one by one; punctuation and emoji dropped
    assert tokenize('爱你 baby!') == ['ai4', 'ni3', '<en>', '<en>']
    assert tokenize('2024年') == ['er4', 'ling2', 'er4', 'si4', 'nian2']
    assert tokenize('心😀，跳……') == ['xin1', 'tiao4']
    assert tokenize('ＯＫ１') == ['<en>', 'yi1']  # full-width forms are normalised first
    assert tokenize('!!! 😀 ...') == []
    assert tokenize('love little time') == ['<en>'] * 4


def test_vocabulary_is_fixed_and_covers_tokens():
    vocab = vocabulary()
    assert vocab[0] == '<pad>' and len(vocab) == len(set(vocab)) > 2000
    ids = encode(tokenize('我们去银行 hello 2024') + ['xx9'])
    assert all(0 < i < len(vocab) for i in ids)
    assert ids[-1] == vocab.index('<unk>') and vocab[ids[0]] == 'wo3'


def test_read_lyrics_encodings(tmp_path):
    text = '[verse]\n我爱你\n'
    (tmp_path / 'a.txt').write_bytes(text.encode('utf-8-sig'))
    (tmp_path / 'b.txt').write_bytes(text.encode('gb18030'))
    assert read_lyrics(tmp_path / 'a.txt') == text
    assert read_lyrics(tmp_path / 'b.txt') == text


# --- section headers and LRC ---------------------------------------------------------------

@pytest.mark.parametrize('header, role', [
    ('[verse]', 'verse'), ('[Verse 2]', 'verse'), ('[VERSE2]', 'verse'), ('[chorus]', 'chorus'),
    ('[Pre-Chorus]', 'prechorus'), ('[pre chorus]', 'prechorus'), ('[prechorus 1]', 'prechorus'),
    ('[Hook]', 'chorus'), ('[bridge]', 'bridge'), ('[intro]', 'intro'), ('[Outro]', 'outro'),
    ('[inst]', 'inst'), ('[Instrumental]', 'inst'), ('[interlude]', 'inst'), ('[ spoken word ]', 'none'),
])
def test_section_headers(header, role):
    song = parse_lyrics(f'{header}\n我爱你\n')
    assert song['lines'][0]['role'] == role
    assert (role == 'none') == bool(song['notes'])


def test_lines_before_any_header_have_role_none():
    assert parse_lyrics('我爱你')['lines'][0]['role'] == 'none'


@pytest.mark.parametrize('stamp, seconds', [
    ('[01:02]', 62.0), ('[01:02.5]', 62.5), ('[01:02.50]', 62.5), ('[01:02.500]', 62.5), ('[1:02.25]', 62.25),
    ('[00:03:50]', 3.5),
])
def test_lrc_stamp_forms(stamp, seconds):
    assert parse_lyrics(f'{stamp}我爱你')['lines'][0]['start'] == pytest.approx(seconds)


def test_several_stamps_repeat_a_line_and_tags_are_read():
    song = parse_lyrics('[ti:歌]\n[ar:someone]\n[offset:+500]\n[00:10.00][00:40.00]我爱你\n[00:20.00]你爱我\n')
    starts = [line['start'] for line in song['lines']]
    assert starts == [9.5, 39.5, 19.5]  # offset +500 ms: lyrics come half a second sooner
    lines, timing, notes = place_lines(song, 60.0)
    assert timing == 'lrc' and [l['start'] for l in lines] == [9.5, 19.5, 39.5]
    assert 'out of order' in notes[0]


def test_empty_stamp_ends_a_line():
    song = parse_lyrics('[00:01.00]我爱你\n[00:03.00]\n[00:10.00]你爱我\n')
    lines, _, _ = place_lines(song, 20.0)
    assert lines[0]['end'] == 3.0
    assert lines[1]['end'] == pytest.approx(min(20.0, 10.0 + 1.0 + 3 * 1.0))  # capped by syllables


def test_stamps_past_the_end_are_dropped():
    song = parse_lyrics('[00:01.00]我爱你\n[00:05.00]你爱我\n[01:30.00]他爱她\n')
    lines, timing, notes = place_lines(song, 10.0)
    assert len(lines) == 2 and any('after the audio ends' in n for n in notes)
    assert max(l['end'] for l in lines) <= 10.0


def test_partly_stamped_lyrics_are_estimated():
    song = parse_lyrics('[00:01.00]我爱你\n你爱我\n')
    lines, timing, notes = place_lines(song, 12.0)
    assert timing == 'estimated' and notes
    assert 0 <= lines[0]['start'] < lines[0]['end'] <= lines[1]['start'] < lines[1]['end'] <= 12.0


def test_estimated_times_share_the_song_by_syllables():
    lines, timing, _ = place_lines(parse_lyrics('[verse]\n一二\n一二三四五六\n'), 10.0)
    assert timing == 'estimated'
    assert lines[0]['start'] == 0 and lines[1]['start'] == pytest.approx(3 / 10 * 10.0)


def test_header_with_no_lines_and_no_lines_at_all():
    song = parse_lyrics('[chorus]\n\n[outro]\n')
    assert song['lines'] == [] and [r for _, r in song['headers']] == ['chorus', 'outro']
    assert parse_lyrics('')['lines'] == []


def test_characters_no_rule_reads_are_dropped_or_unknown_with_a_note():
    song = parse_lyrics('𠀀𠀁 龘 ㄅ さくら\n我\U0002A6EF你\n')
    assert [line['tokens'] for line in song['lines']] == [['he1', 'qi1', 'da2'], ['wo3', '<unk>', 'ni3']]
    assert "dropped 'ㄅさくら'" in song['notes'][0] and 'sung as <unk>' in song['notes'][1]


def test_punctuation_only_line_is_dropped_with_a_note():
    song = parse_lyrics('我爱你\n……！\n')
    assert len(song['lines']) == 1 and 'no singable' in song['notes'][0]


# --- blocks --------------------------------------------------------------------------------

SETTINGS = dict(sample_rate=16000, hop_length=160, max_block_tokens=24, n_length_classes=8, max_block_seconds=8.0)  # 100 frames a second


def blocks_of(text, seconds, **kw):
    song = parse_lyrics(text)
    lines, _, _ = place_lines(song, seconds)
    return build_blocks(song, lines, seconds, frames_per_second=100, **kw)


def end(block):
    return block['start'] + block['seconds']


def test_blocks_cover_the_song_in_order():
    blocks = blocks_of('[intro]\n[verse]\n[00:05.00]我爱你\n[00:07.00]\n[00:20.00]你爱我\n[00:22.00]\n[outro]\n', 40.0)
    kinds = [b['kind'] for b in blocks]
    assert kinds[-1] == 'end' and kinds.count('end') == 1
    assert blocks[0]['start'] == 0 and end(blocks[-2]) == 40.0
    table, _, _ = plan_arrays(blocks, SETTINGS)
    for i, (a, b) in enumerate(zip(blocks, blocks[1:])):
        assert end(a) == pytest.approx(b['start']) and table[i, END] == table[i + 1, START]
    assert blocks[0]['role'] == 'intro' and blocks[-2]['role'] == 'outro'


def test_long_gaps_are_split():
    blocks = blocks_of('[00:20.00]我爱你\n[00:22.00]\n', 30.0, max_block_seconds=8.0)
    intro = [b for b in blocks if b['kind'] == 'gap' and end(b) <= 20.0]
    assert len(intro) == 3 and all(b['seconds'] == pytest.approx(20 / 3, abs=0.01) for b in intro)  # on frames
    assert [b['finish'] for b in intro] == [0, 0, 1]


def test_short_pauses_are_absorbed_and_finish_tags():
    text = '[verse]\n[00:01.00]我爱你\n[00:03.30]你爱我\n[00:05.00]\n[chorus]\n[00:08.00]他爱她\n[00:10.00]\n'
    blocks = blocks_of(text, 12.0, min_gap_seconds=0.5)
    kinds = [(b['kind'], b['role'], b['finish']) for b in blocks[:-1]]
    # 0.3 s pause before line 2 is absorbed: no gap; line 1 runs on into line 2 (no finish)
    assert kinds == [('gap', 'intro', 1), ('line', 'verse', 0), ('line', 'verse', 1), ('gap', 'inst', 1),
                     ('line', 'chorus', 1), ('gap', 'outro', 1)]
    assert blocks[-1] == dict(kind='end', start=12.0) and plan_arrays(blocks, SETTINGS)[0][-1, FINISH] == 1


def test_long_lines_are_split_by_tokens():
    blocks = blocks_of('[00:00.00]' + '我' * 30 + '\n[00:10.00]\n', 12.0, max_block_tokens=24)
    lines = [b for b in blocks if b['kind'] == 'line']
    assert [len(b['pinyin'].split()) for b in lines] == [24, 6]
    assert end(lines[0]) == pytest.approx(8.0)


def test_length_classes():
    n, longest = 8, 8.0
    classes = [length_class(s, n, longest) for s in (0.1, 0.3, 1.0, 2.0, 4.0, 7.9, 8.0, 30.0)]
    assert classes == sorted(classes) and classes[0] == 0 and classes[-1] == n - 1
    for c in range(n):  # each class's typical duration falls back into it
        assert length_class(class_seconds(c, n, longest), n, longest) == c


def test_block_arrays():
    blocks = blocks_of('[verse]\n[00:01.00]我爱你\n[00:03.00]\n', 5.0)
    table, tokens, _ = plan_arrays(blocks, SETTINGS)
    assert table.shape == (len(blocks), len(BLOCK_COLUMNS)) and tokens.shape == (len(blocks), 24)
    line = BLOCK_COLUMNS.index('kind')
    row = np.where(table[:, line] == 0)[0][0]
    assert table[row, BLOCK_COLUMNS.index('role')] == ROLES.index('verse')
    assert table[row, BLOCK_COLUMNS.index('n_tokens')] == 3 and (tokens[row, 3:] == 0).all()
    assert [vocabulary()[i] for i in tokens[row, :3]] == ['wo3', 'ai4', 'ni3']


def test_song_pulse_is_the_grid_of_the_onsets():
    # 40 lines of 5 syllables on a grid of 0.3125 s at a phase of 0.1 s, some held two pulses, the
    # onsets rounded to frames of 1/125 s with a frame of jitter: the median step alone is off by a frame
    rng = np.random.default_rng(0)
    P, K, fps, pulse = 40, 24, 125.0, 0.3125
    pulses = np.cumsum(rng.choice([1, 1, 1, 2], (P, 5)), 1) + 8 * np.arange(P)[:, None]
    table = np.zeros((P, len(BLOCK_COLUMNS)), np.int64)
    table[:, KIND], table[:, N_TOKENS] = LINE, 5
    onsets = np.zeros((P, K), np.int32)
    onsets[:, :5] = np.round((0.1 + pulses * pulse) * fps) + rng.integers(-1, 2, (P, 5))
    assert abs(song_pulse(table, onsets, fps) / pulse - 1) < 1e-3
    table[:, N_TOKENS] = 1  # no line has two syllables: no pulse
    assert song_pulse(table, onsets, fps) == 0.0


def test_rhythm_round_trips_and_plans_without_one_share_evenly():
    blocks = blocks_of('[verse]\n[00:01.00]我爱你们\n[00:03.00]\n', 5.0)
    table, tokens, even = plan_arrays(blocks, SETTINGS)
    row = np.flatnonzero(table[:, KIND] == LINE)[0]
    assert np.array_equal(even, even_onsets(table, 24))
    onsets = even.copy()
    onsets[row, 1:4] += [-20, 10, 20]  # as aligned: a quick second syllable, a late last one
    shares = rhythm(table, onsets)
    assert abs(shares[row].sum() - 1) < 1e-6 and not shares[np.arange(len(table)) != row].any()
    assert np.array_equal(rhythm_onsets(table, shares), onsets)
    # the Composer's steps (seconds to the next syllable) give the same shares in the line's length
    steps = syllable_steps(table, onsets, 100.0)
    assert np.allclose(steps[row, :3], np.diff(onsets[row, :4]) / 100.0) and not steps[row, 3:].any()
    seconds = (table[:, END] - table[:, START]) / 100.0
    assert np.allclose(step_shares(steps, table[:, N_TOKENS], seconds)[row], shares[row], atol=1e-6)
    # steps longer than the line leave its last syllable half an even share
    held = step_shares(steps * 10, table[:, N_TOKENS], seconds)[row, :4]
    assert abs(held.sum() - 1) < 1e-6 and abs(held[3] - 0.125) < 1e-6
    # a plan: its rhythm where a line has one, an even share where it has none or a wrong one
    plan = plan_blocks(table, tokens, vocabulary(), 100.0, onsets)
    for a, b in zip(plan_arrays(plan, SETTINGS), (table, tokens, onsets)):
        assert np.array_equal(a, b)
    for rhythm_ in (None, [1.0]):
        plan[row]['rhythm'] = rhythm_
        assert np.array_equal(plan_arrays(plan, SETTINGS)[2], even)
