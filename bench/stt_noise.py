"""WER of the STT models on clean and noisy speech, with and without noise suppression.

Every utterance of ``speech_sets.UTTERANCES`` is spoken by one of the synthetic voices in turn
(``--voices``; by default five espeak-ng voices, four flite voices and Piper joe), padded with
300 ms of silence on each side (and
a second of lead-in the denoisers hear but the STT does not), mixed
with white, babble (six synthetic talkers), fan and street noise at 20 and 10 dB SNR,
optionally denoised as a live stream would be (20 ms pieces through one denoiser state: Speex,
RNNoise, or the product's) and transcribed. ``gated`` is the product's noise reduction: Whisper
hears the original, and a clip the SNR gate found noisy is transcribed as the engine does it
(``SttOptions(noisy=True)``: tiny.en hands it to Whisper base); ``speex-20db`` is what shipped
before 2026-12-07 (Speex mixed in around 20 dB). Models run side by side in one process, both
with one CPU thread as the engine runs them; WER is also given per synthesiser.

    taskset -c 0,1 .venv/bin/python -m bench.stt_noise --models tiny.en,base --denoisers gated
    .venv/bin/python -m bench.stt_noise --models tiny.en,base --denoisers "" --every-voice \
        --noises white --voices en-us,flite:slt,piper:joe
    .venv/bin/python -m bench.stt_noise --models tiny.en --noises white --denoisers gated
    .venv/bin/python -m bench.stt_noise --models base --limit 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.speech_sets import (
    FLITE_VOICES,
    NOISE_KINDS,
    RATE,
    UTTERANCES,
    VOICES,
    add_noise,
    family,
    synth,
)
from localvoice.pipeline.cleanup import NOISY_BELOW_DB, SPEEX_AROUND_20_DB, make_denoiser
from localvoice.pipeline.denoise import RnNoise, SpeexNoise
from localvoice.pipeline.snr_gate import FrameDenoiser, SnrGate
from localvoice.pipeline.stages import SttOptions
from localvoice.pipeline.stt import WhisperStt
from tests.support.audio import word_error_rate, words

SNRS = (20.0, 10.0)
MODELS = {"tiny.en": 1, "base": 1}  # model -> CPU threads (the engine's: pipeline/stt.py)


# ``gated`` is the product's (localvoice/pipeline/cleanup.py); ``speex-20db`` the one before.
DENOISERS: dict[str, Callable[[], FrameDenoiser]] = {
    "rnnoise": RnNoise,
    "speex": SpeexNoise,
    "gated": make_denoiser,
    "speex-20db": lambda: make_denoiser(SPEEX_AROUND_20_DB),
}


def denoise(audio: np.ndarray, make: Callable[[], FrameDenoiser]) -> tuple[np.ndarray, float, bool]:
    """Denoise as a live stream does; returns the audio, the CPU seconds it took, and whether
    the SNR gate (if it is one) found the room noisy at the end."""
    ns = make()
    started = time.process_time()
    pieces = [ns.process(audio[i : i + 320]) for i in range(0, audio.size, 320)]
    pieces.append(ns.process(np.zeros(960, dtype=np.float32)))  # flush the resampler delay
    cpu = time.process_time() - started
    ns.close()
    estimate = ns.estimate_db if isinstance(ns, SnrGate) else None
    noisy = estimate is not None and estimate < NOISY_BELOW_DB
    return np.concatenate(pieces).astype(np.float32), cpu, noisy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--denoisers", default="gated,speex-20db")
    parser.add_argument("--noises", default=",".join(NOISE_KINDS))
    parser.add_argument("--limit", type=int, default=len(UTTERANCES))
    parser.add_argument("--voices", default=",".join([*VOICES, *FLITE_VOICES]))
    parser.add_argument("--every-voice", action="store_true", help="each utterance in each voice")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    conditions: dict[str, tuple[str, float | None]] = {"clean": ("white", None)}
    for kind in args.noises.split(","):
        for level in SNRS:
            conditions[f"{kind} {level:g} dB"] = (kind, level)
    models = {m: WhisperStt(model=m, cpu_threads=MODELS[m]) for m in args.models.split(",")}
    for stt in models.values():
        stt.multilingual()  # what the engine loads in the background on its first noisy room
    pad = np.zeros(RATE * 3 // 10, dtype=np.float32)
    lead_in = np.zeros(RATE, dtype=np.float32)
    voices = args.voices.split(",")
    clips = []
    pairs = [
        (text, voices[i % len(voices)] if not args.every_voice else voice)
        for i, text in enumerate(UTTERANCES[: args.limit])
        for voice in (voices if args.every_voice else voices[:1])
    ]
    for text, voice in pairs:
        speech = np.concatenate([pad, synth(text, voice), pad])
        clips.append((text, speech, family(voice)))
    results: dict[str, dict[str, object]] = {}
    ns_cpu: dict[str, float] = {}
    ns_audio: dict[str, float] = {}
    for cond, (kind, snr) in conditions.items():
        for ns in ["off", *filter(None, args.denoisers.split(","))]:
            inputs = []
            for index, (text, speech, _) in enumerate(clips):
                # A live stream hears the room before anyone speaks: one second of it first,
                # cut off again before transcription.
                audio = add_noise(np.concatenate([lead_in, speech]), snr, seed=index, kind=kind)
                noisy = False
                if ns != "off":
                    audio, cpu, noisy = denoise(audio, DENOISERS[ns])
                    noisy = noisy and ns == "gated"  # only the product switches models
                    ns_cpu[ns] = ns_cpu.get(ns, 0.0) + cpu
                    ns_audio[ns] = ns_audio.get(ns, 0.0) + audio.size / RATE
                inputs.append((text, audio[lead_in.size :], SttOptions(noisy=noisy)))
            flagged = sum(options.noisy for _, _, options in inputs)
            for name, stt in models.items():
                errors: dict[str, float] = {}
                total: dict[str, int] = {}
                started = time.process_time()
                for (text, audio, options), (_, _, synthesiser) in zip(inputs, clips, strict=True):
                    n = len(words(text))
                    wrong = word_error_rate(text, stt.transcribe(audio, options)) * n
                    for group in ("all", synthesiser):
                        errors[group] = errors.get(group, 0.0) + wrong
                        total[group] = total.get(group, 0) + n
                cpu = (time.process_time() - started) / len(inputs)
                key = f"{name} | {cond} | NS {ns}"
                wer = {group: round(100 * errors[group] / total[group], 1) for group in errors}
                results[key] = {
                    "wer_pct": wer["all"],
                    "cpu_s_per_clip": cpu,
                    "by_voice": wer,
                    "noisy_clips": flagged,
                }
                per_voice = "  ".join(f"{g} {v:5.1f}" for g, v in wer.items() if g != "all")
                print(
                    f"{key:40} WER {wer['all']:5.1f} %  CPU {cpu:.3f} s/clip  "
                    f"noisy {flagged}/{len(inputs)}  ({per_voice})"
                )
    for ns, cpu in ns_cpu.items():
        share = cpu / ns_audio[ns]
        print(f"{ns}: {100 * share:.1f} % of one core per live stream ({ns_audio[ns]:.0f} s audio)")
        results[f"{ns}_core_share"] = {"value": share}
    print(f"{len(clips)} utterances, voices: {', '.join(voices)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
