"""French on localvoice: espeak-ng French through Whisper base (WER), and the 0.5B's answers.

The questions of ``bench/french.json`` (everyday questions, with the accepted answers and wrong
claims ``bench/facts.py`` scores strictly) are spoken by espeak-ng French voices through the
engine's own synthesiser (``localvoice/pipeline/espeak_tts.py``: the libespeak-ng inside
piper-tts, what the French voice of localvoice is), clean and with white noise at 20 dB, and
transcribed:

* ``engine``: the engine's STT path, ``WhisperStt.transcribe`` with the session's language
  ``fr`` (Whisper base, window cut to the utterance, language token forced);
* ``transcribe fr`` / ``transcribe auto``: faster-whisper's plain ``transcribe()`` (30 s window)
  with the language forced, or detected (what the offline-models survey measured), on
  ``--plain-voices`` only (they cost about ten times as much).

WER is pooled per condition (word errors over reference words, French-aware normalisation:
accents kept, punctuation and hyphens dropped). The chat model then answers every question
as written, and as heard from ``--heard-voice``, with the French profile's instructions.

    taskset -c 0,1 .venv/bin/python -m bench.french
    .venv/bin/python -m bench.french --voices fr,fr+m3 --no-llm --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import re
import time
import unicodedata
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr

from bench import facts
from bench.speech_sets import RATE, add_noise
from localvoice.pipeline.espeak_tts import EspeakTts
from localvoice.pipeline.stages import SttOptions
from localvoice.pipeline.stt import WhisperStt
from tests.support.audio import edit_distance

FRENCH_FILE = Path(__file__).with_name("french.json")
VOICES = ("fr", "fr+f3", "fr+m3", "fr-be", "fr-be+f3", "fr-be+m3", "fr-ch", "fr-ch+f3", "fr-ch+m3")
CONDITIONS: dict[str, float | None] = {"clean": None, "white 20 dB": 20.0}
_NUMBERS = "zéro un deux trois quatre cinq six sept huit neuf dix onze douze"
_DIGITS = {str(value): word for value, word in enumerate(_NUMBERS.split())}


def french_words(text: str) -> list[str]:
    """Lower-case words, accents kept, punctuation and hyphens gone ("a-t-il": a t il)."""
    text = unicodedata.normalize("NFC", text.lower()).replace("\u2019", "'")
    tokens = re.sub(r"[^\w' ]+|_", " ", text).split()
    return [_DIGITS.get(token, token) for token in tokens]


def word_errors(reference: str, hypothesis: str) -> int:
    """Substitutions + deletions + insertions between the two texts' words."""
    return edit_distance(french_words(reference), french_words(hypothesis))


def speech(tts: EspeakTts, text: str, voice: str) -> npt.NDArray[np.float32]:
    """``text`` spoken by one espeak-ng voice, at 16 kHz float32 with 0.3 s of silence around."""
    pcm = tts.synthesize(text, voice=voice, length_scale=None)
    audio = soxr.resample(pcm.astype(np.float32) / 32768.0, tts.sample_rate(voice), RATE)
    pad = np.zeros(RATE * 3 // 10, dtype=np.float32)
    return np.concatenate([pad, np.asarray(audio, dtype=np.float32), pad])


def plain_transcribe(stt: WhisperStt, audio: npt.NDArray[np.float32], language: str | None) -> str:
    """faster-whisper's own ``transcribe()`` (30 s window, beam 1), language forced or detected."""
    model = stt.multilingual().model
    segments, _ = model.transcribe(audio, language=language, beam_size=1)
    return " ".join(segment.text.strip() for segment in segments)


def measure_wer(
    questions: list[facts.Fact], voices: list[str], plain_voices: list[str], repeats: int = 1
) -> tuple[dict[str, dict[str, object]], dict[str, str]]:
    """WER and CPU per clip by (voice, condition, decoding); and what the engine heard, clean.

    espeak-ng varies a little from one call to the next (a few samples of length, its pitch
    jitter), so each question is spoken ``repeats`` times and the WER pooled over all of them.
    """
    tts = EspeakTts({voice: voice for voice in voices})
    stt = WhisperStt(model="base", cpu_threads=1)
    options = SttOptions(languages=("fr",))
    decoders = {
        "engine": lambda audio: stt.transcribe(audio, options),
        "transcribe fr": lambda audio: plain_transcribe(stt, audio, "fr"),
        "transcribe auto": lambda audio: plain_transcribe(stt, audio, None),
    }
    spoken = [q for q in questions for _ in range(repeats)]
    reference_words = sum(len(french_words(q.question)) for q in spoken)
    results: dict[str, dict[str, object]] = {}
    heard: dict[str, str] = {}
    for voice in voices:
        clips = [speech(tts, q.question, voice) for q in spoken]
        for condition, snr in CONDITIONS.items():
            noisy = [add_noise(clip, snr, seed=i) for i, clip in enumerate(clips)]
            for decoding, decode in decoders.items():
                if decoding != "engine" and voice not in plain_voices:
                    continue
                errors = empty = 0
                started = time.process_time()
                samples: list[str] = []
                for fact, audio in zip(spoken, noisy, strict=True):
                    text = decode(audio)
                    clip_errors = word_errors(fact.question, text)
                    errors += clip_errors
                    empty += not text.strip()
                    if decoding == "engine" and snr is None:
                        heard[f"{voice}|{fact.question}"] = text
                    if len(samples) < 3 and clip_errors:
                        samples.append(f"{fact.question} -> {text}")
                cpu = (time.process_time() - started) / len(spoken)
                wer = round(100 * errors / reference_words, 1)
                key = f"{voice} | {condition} | {decoding}"
                results[key] = {
                    "wer_pct": wer,
                    "cpu_s_per_clip": round(cpu, 3),
                    "empty": f"{empty}/{len(spoken)}",
                    "misheard": samples,
                }
                print(
                    f"{key:42} WER {wer:5.1f} %  CPU {cpu:.3f} s/clip  empty {empty}/{len(spoken)}",
                    flush=True,
                )
                for sample in samples:
                    print(f"    {sample}")
    return results, heard


async def answers(questions: list[facts.Fact], heard: dict[str, str] | None) -> dict[str, object]:
    """Strict accuracy of the default chat model on the questions, as written and as heard."""
    from bench.llm_eval import reply
    from localvoice.config import ServerConfig
    from localvoice.pipeline.llm import LlamaChat
    from localvoice.pipeline.llms import registry
    from localvoice.pipeline.weights import resolve

    profile = importlib.import_module("assistant.migrations.0006_talk_modes")
    instructions = str(profile.FRENCH_INSTRUCTIONS)
    key = ServerConfig().llm
    fmt = registry.get(key)
    assert fmt.weights is not None
    llm = LlamaChat(resolve(fmt.weights), fmt, n_threads=1, n_threads_batch=2)
    result: dict[str, object] = {"model": key}
    inputs = {"typed": {q.question: q.question for q in questions}}
    if heard is not None:
        inputs["heard"] = heard
    for mode, said in inputs.items():
        right, wrong, cpu = 0, [], 0.0
        for fact in questions:
            history = [{"role": "user", "content": said[fact.question]}]
            text, _, spent = await reply(llm, fmt.messages(instructions, history))
            cpu += spent
            verdict = facts.verdict(fact, text)
            right += verdict == "right"
            if verdict != "right":
                wrong.append(f"[{verdict}] {said[fact.question]} -> {text.strip()[:100]}")
        result[mode] = {
            "right": f"{right}/{len(questions)}",
            "cpu_s_per_answer": round(cpu / len(questions), 2),
            "wrong": wrong,
        }
        print(f"{key} {mode}: {right}/{len(questions)} right", flush=True)
        for line in wrong:
            print(f"    {line}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", default=",".join(VOICES), help="espeak-ng voices")
    parser.add_argument("--plain-voices", default="fr", help="voices also run through transcribe()")
    parser.add_argument("--repeats", type=int, default=1, help="times each question is spoken")
    parser.add_argument("--heard-voice", default="", help="the chat model also answers as heard")
    parser.add_argument("--no-llm", action="store_true", help="speech recognition only")
    parser.add_argument("--json", type=Path, help="write every result here")
    args = parser.parse_args()
    questions = facts.load(FRENCH_FILE)
    voices = args.voices.split(",")
    plain = [v for v in args.plain_voices.split(",") if v]
    results, heard = measure_wer(questions, voices, plain, args.repeats)
    print(
        f"{len(questions)} questions, {sum(len(french_words(q.question)) for q in questions)} words"
    )
    out: dict[str, object] = {"wer": results}
    if not args.no_llm:
        by_voice = None
        if args.heard_voice:
            by_voice = {q.question: heard[f"{args.heard_voice}|{q.question}"] for q in questions}
        out["answers"] = asyncio.run(answers(questions, by_voice))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
