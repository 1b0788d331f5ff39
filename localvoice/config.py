"""Server settings, filled from the command line.

The defaults name entries of ``pipeline/registry.py`` and ``pipeline/llms/registry.py``; the
registries import this module, not the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything the server needs to know at startup.

    Attributes:
        host: bind address (127.0.0.1 unless told otherwise).
        port: TCP port (0 picks a free one).
        api_key: when set, the ``api-key`` header must equal it.
        accept_bearer: also accept any ``Authorization: Bearer`` token.
        echo: no models; echo appended audio back as audio deltas.
        enable_faults: honour ``localvoice.fault`` client events (tests only).
        max_session_seconds: close sessions after this long (0: no limit).
        voice_map: JSON file mapping Azure/OpenAI voice names to local voices.
        llm: the bundled chat model (``localvoice/pipeline/llms/registry.py``).
        stt: the speech-to-text stage (``localvoice/pipeline/registry.py``): Whisper ``tiny.en``
            or ``base`` (better in noise, worse on clean synthetic speech: docs/benchmarks.md).
        vad: the VAD stage (no flag: ``silero``).
        tts: the text-to-speech stage (no flag: ``piper``).
        end_of_turn: the semantic end-of-turn model (no flag: ``smart-turn-v3.2``).
        words_end_of_turn: semantic end of turn also weighs the words with the chat model
            (``pipeline/words_turn.py``; llama.cpp only).
        llm_model: a chat GGUF instead of the bundled file.
        llm_url: an OpenAI-compatible chat endpoint on this machine instead of llama.cpp.
        piper_voices: extra Piper voices, name -> ``.onnx`` file.
        threads: llama.cpp's threads for prompts and replies' first tokens.
        llm_threads: llama.cpp threads otherwise (default: ``threads``).
        tts_threads: Piper's ONNX Runtime threads.
        first_chunk_words: cap on the first spoken chunk, in words (0: none).
        prefill: evaluate the reply's prompt while the user is still speaking.
        kv_snapshot_mb: memory for each conversation's evaluated prompt (0: none).
        echo_mute: with echo cancellation, mute the VAD's input while a reply plays.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    api_key: str | None = None
    accept_bearer: bool = False
    echo: bool = False
    enable_faults: bool = False
    max_session_seconds: float = 0
    voice_map: Path | None = None
    llm: str = "qwen2.5-0.5b"
    stt: str = "tiny.en"
    vad: str = "silero"
    tts: str = "piper"
    end_of_turn: str = "smart-turn-v3.2"
    words_end_of_turn: bool = True
    llm_model: Path | None = None
    llm_url: str | None = None
    piper_voices: dict[str, Path] = field(default_factory=dict)
    threads: int = 2
    llm_threads: int | None = 1
    # One: Piper on two threads sped one chunk up 1.6x but took the core the chat model's
    # decode of several sessions needed (4 sessions at once, logbook 2026-12-07).
    tts_threads: int = 1
    # Two, not three: one decode step less before the first audio (4 sessions at once p50
    # about -190 ms on the Xeon guest); the pacing keeps the rest from stalling (logbook).
    first_chunk_words: int = 2
    prefill: bool = True
    kv_snapshot_mb: int = 128
    echo_mute: bool = False
