"""
Lyrics + style -> song. The Composer plans the song's blocks from the lyrics, the Decoder
renders the plan as autoencoder latents, the autoencoder decodes them to a log-mel
spectrogram, and Griffin-Lim turns that into audio. Per sample it writes sample_<i>.wav,
sample_<i>.plan.json (edit it and render it again with --plan=) and sample_<i>.png (the
spectrogram, with the plan's lines and gaps marked above it).

    python sample.py --lyrics=examples/moon.txt --style="slow piano ballad, 72 bpm"
    python sample.py --plan=samples/sample_0.plan.json
"""
import os
from contextlib import nullcontext

import numpy as np
import soundfile as sf
import torch

import audio
import composer
import decoder
import planner
import style as style_encoder
from audio import frame_rate
from checkpoint import load_checkpoint, load_stages
from configurator import configure
from lyrics import line_numbers, parse_lyrics, plan_arrays, read_lyrics
from measures import plot_song

# -----------------------------------------------------------------------------
lyrics = ''  # a lyrics.txt (section headers, optional LRC stamps); or
plan = ''  # a plan JSON written by sample.py, maybe edited by hand
style = ''  # style text; with --plan, '' keeps the plan's own
ae_ckpt = 'out-ae-synth/ckpt.pt'
composer_ckpt = 'out-composer-synth/ckpt.pt'
decoder_ckpt = 'out-decoder-synth/ckpt.pt'
out_dir = 'samples'
num_samples = 1
seed = 1337
composer_temperature = 1.0  # the Composer's sampling temperature (0: its most likely plan)
composer_cfg_scale = 1.0  # classifier-free guidance for the Composer's style (1.0 = off): 3.0 pulls plans off the corpus's timing
pulse = -1.0  # seconds: the grid the plan's blocks and syllables are put on (planner.py); -1: the Composer's; 0: none
decoder_temperature = 1.0  # the Decoder's: scales the noise its head starts from
decoder_cfg_scale = 2.0  # classifier-free guidance for the Decoder's plan and style; 1.0 = off
flow_steps = 8  # Euler steps of the Decoder's head per latent row
max_seconds = 300.0  # a longer plan ends with its last block that fits (planner.cut_plan)
griffin_lim_iters = 64
device = 'cuda' if torch.cuda.is_available() else 'cpu'
dtype = 'bfloat16' if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else 'float32'
compile = False  # torch.compile the autoencoder's decoder (fixed shapes; the Decoder's steps grow)
# -----------------------------------------------------------------------------


def render(blocks, style_embedding, style_mask, ae_model, composer_model, decoder_model, settings, ctx, **sampling):
    """A plan -> log-mels (frames, n_mels) of the song, as long as the plan.
    sampling: the Decoder's flow_steps, temperature and cfg_scale."""
    table, tokens, onsets = plan_arrays(blocks, settings)
    song = dict(table=table, tokens=tokens, lines=line_numbers(table),
                lyrics=composer.lyric_sequence(table, tokens), style=0)
    styles = dict(embeddings=style_embedding[None], mask=style_mask[None])
    dev = style_embedding.device
    frames_per_second = frame_rate(settings)
    frames = round(blocks[-1]['start'] * frames_per_second)
    h = decoder_model.config.latent_rows
    n_rows = -(-frames // settings['segment_frames']) * h  # whole segments
    with ctx:
        plan_embeddings = composer_model.block_embeddings(**{k: x.to(dev) for k, x in composer.collate([song], styles).items()})
        rows = decoder.plan_rows(table, tokens, onsets, n_rows, settings['segment_frames'] // h, frames_per_second)
        rows = [torch.from_numpy(r)[None].to(dev) for r in rows]
        first = decoder.silence_row(ae_model, settings, dev)[None].to(dev)
        plan_mask = torch.ones(1, len(table), dtype=torch.bool, device=dev)
        latents = decoder_model.generate(first, *rows, plan_embeddings, plan_mask, style_embedding[None],
                                         style_mask[None], **sampling)  # (1, n_rows, row_dim)
        mel = ae_model.decode_song(decoder.from_rows(latents[0], ae_model.latent_shape))
    return mel[:frames].float()


def main():

    if bool(lyrics) == bool(plan):
        raise SystemExit("give one of --lyrics=<lyrics.txt> or --plan=<plan.json>")
    if lyrics:
        if not os.path.isfile(lyrics):
            raise SystemExit(f"lyrics file {lyrics} does not exist")
        try:
            text = read_lyrics(lyrics)
        except (OSError, ValueError) as e:
            raise SystemExit(f"cannot read lyrics file {lyrics}: {e}") from None
        if not text.strip():
            raise SystemExit(f"lyrics file {lyrics} is empty")
    else:
        try:
            fixed_blocks, plan_style, plan_pulse = planner.read_plan(plan)
        except ValueError as e:
            raise SystemExit(str(e)) from None
    style_text = style if lyrics or style else plan_style

    torch.manual_seed(seed)
    decoder_checkpoint, decoder_model = load_checkpoint(decoder_ckpt, device, stage='decoder')
    settings = decoder_checkpoint['data_settings']  # the frozen stages must have been made for the same data
    ae_model, composer_model, composer_config = load_stages(ae_ckpt, composer_ckpt, settings, decoder_ckpt, device,
                                                            decoder_model, decoder_ckpt)
    if lyrics:
        try:
            pieces = planner.lyric_lines(text, composer_model.config.max_block_tokens)
        except ValueError as e:
            raise SystemExit(f"{lyrics}: {e}") from None
        for note in parse_lyrics(text)['notes']:  # what was dropped or read as unknown, and why
            print(f"{lyrics}: {note}")
    if compile:
        ae_model.decoder = torch.compile(ae_model.decoder)
    device_type = 'cuda' if device.startswith('cuda') else 'cpu'
    ptdtype = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}[dtype]
    ctx = nullcontext() if dtype == 'float32' else torch.autocast(device_type=device_type, dtype=ptdtype)
    style_embedding, style_mask = style_encoder.embed_styles([style_text], composer_config['style_model'],
                                                             composer_config['style_tokens'])
    style_embedding, style_mask = style_embedding[0].to(device), style_mask[0].to(device)
    os.makedirs(out_dir, exist_ok=True)
    sr = settings['sample_rate']
    for i in range(num_samples):
        name = os.path.join(out_dir, f'sample_{i}')
        if lyrics:
            print(f"sample {i}: planning {len(pieces)} lines")
            with ctx:
                blocks, song_pulse = planner.plan(composer_model, pieces, style_embedding, style_mask, settings,
                                                  composer_temperature, seed + i, composer_cfg_scale, pulse=pulse)
            if song_pulse:
                print(f"sample {i}: on a pulse of {song_pulse:.3f} s ({60 / song_pulse:.1f} pulses a minute)")
        else:
            blocks, song_pulse = fixed_blocks, plan_pulse
        try:
            cut = planner.cut_plan(blocks, max_seconds)
        except ValueError as e:
            raise SystemExit(str(e)) from None
        if len(cut) < len(blocks):
            print(f"sample {i}: the plan's {blocks[-1]['start']:.1f} s cut to {cut[-1]['start']:.1f} s (max_seconds)")
        blocks = cut
        planner.write_plan(name + '.plan.json', blocks, style_text, song_pulse)
        print(f"sample {i}: rendering {blocks[-1]['start']:.1f} s ({sum(b['kind'] == 'line' for b in blocks)} lines, "
              f"{len(blocks) - 1} blocks)")
        mel = render(blocks, style_embedding, style_mask, ae_model, composer_model, decoder_model, settings, ctx,
                     flow_steps=flow_steps, temperature=decoder_temperature, cfg_scale=decoder_cfg_scale)
        print(f"sample {i}: Griffin-Lim, {griffin_lim_iters} iterations")
        wav = audio.mel_to_wav(mel, sr, settings['n_fft'], settings['hop_length'], settings['n_mels'],
                               griffin_lim_iters).cpu().numpy()
        wav = wav * min(1.0, 0.95 / max(np.abs(wav).max(), 1e-9))  # never clip
        sf.write(name + '.wav', wav, sr, subtype='PCM_16')
        plot_song(name + '.png', [(f'{name}: {style_text}', mel)], blocks, settings)
        print(f"sample {i}: wrote {name}.wav ({len(wav) / sr:.1f} s), {name}.plan.json, {name}.png")


if __name__ == '__main__':
    configure(globals())
    main()
