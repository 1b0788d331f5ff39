"""WER of the STT models on clean and noisy speech, with and without noise suppression.

Every utterance of ``speech_sets.UTTERANCES`` is spoken by one of six synthetic voices (five
espeak-ng voices and Piper joe, in turn), padded with 300 ms of silence on each side, mixed
with white noise at 20 and 10 dB SNR, optionally denoised as a live stream would be (20 ms
pieces through the session's RNNoise state) and transcribed with localvoice's own cut-window
decoding. Old (tiny.en, 2 threads) and new (base, 1 thread) run side by side in one process.

    taskset -c 0,1 .venv/bin/python -m bench.stt_noise
    .venv/bin/python -m bench.stt_noise --models base --limit 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.speech_sets import RATE, UTTERANCES, VOICES, add_noise, synth
from localvoice.pipeline.denoise import RnNoise, SpeexNoise
from localvoice.pipeline.stt import WhisperStt
from tests.support.audio import word_error_rate, words

CONDITIONS: dict[str, float | None] = {"clean": None, "20 dB": 20.0, "10 dB": 10.0}
MODELS = {"tiny.en": 2, "base": 1}  # model -> CPU threads (old default 2; new 1)


DENOISERS = {"rnnoise": RnNoise, "speex": SpeexNoise}


def denoise(audio: np.ndarray, kind: str) -> tuple[np.ndarray, float]:
    """Denoise as a live stream does; returns the audio and the CPU seconds it took."""
    ns = DENOISERS[kind]()
    started = time.process_time()
    pieces = [ns.process(audio[i : i + 320]) for i in range(0, audio.size, 320)]
    pieces.append(ns.process(np.zeros(960, dtype=np.float32)))  # flush the resampler delay
    cpu = time.process_time() - started
    ns.close()
    return np.concatenate(pieces).astype(np.float32), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--denoisers", default="rnnoise,speex")
    parser.add_argument("--limit", type=int, default=len(UTTERANCES))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    models = {m: WhisperStt(model=m, cpu_threads=MODELS[m]) for m in args.models.split(",")}
    pad = np.zeros(RATE * 3 // 10, dtype=np.float32)
    clips = []
    for index, text in enumerate(UTTERANCES[: args.limit]):
        speech = np.concatenate([pad, synth(text, VOICES[index % len(VOICES)]), pad])
        clips.append((text, speech))
    results: dict[str, dict[str, float]] = {}
    ns_cpu: dict[str, float] = {}
    ns_audio: dict[str, float] = {}
    for cond, snr in CONDITIONS.items():
        for ns in ["off", *args.denoisers.split(",")]:
            inputs = []
            for index, (text, speech) in enumerate(clips):
                audio = add_noise(speech, snr, seed=index)
                if ns != "off":
                    audio, cpu = denoise(audio, ns)
                    ns_cpu[ns] = ns_cpu.get(ns, 0.0) + cpu
                    ns_audio[ns] = ns_audio.get(ns, 0.0) + audio.size / RATE
                inputs.append((text, audio))
            for name, stt in models.items():
                errors = total = 0.0
                started = time.process_time()
                for text, audio in inputs:
                    n = len(words(text))
                    errors += word_error_rate(text, stt.transcribe(audio)) * n
                    total += n
                cpu = (time.process_time() - started) / len(inputs)
                key = f"{name} | {cond} | NS {ns}"
                results[key] = {"wer_pct": 100 * errors / total, "cpu_s_per_clip": cpu}
                print(f"{key:32} WER {100 * errors / total:5.1f} %  CPU {cpu:.3f} s/clip")
    for ns, cpu in ns_cpu.items():
        share = cpu / ns_audio[ns]
        print(f"{ns}: {100 * share:.1f} % of one core per live stream ({ns_audio[ns]:.0f} s audio)")
        results[f"{ns}_core_share"] = {"value": share}
    print(f"{len(clips)} utterances, voices: {', '.join(VOICES)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
