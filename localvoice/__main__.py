"""``python -m localvoice``: the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from localvoice.config import ServerConfig
from localvoice.pipeline.llms.registry import MODELS
from localvoice.pipeline.registry import STT
from localvoice.pipeline.stages import Pipeline

LLM_CHOICES = tuple(MODELS)
STT_CHOICES = tuple(STT)
DEFAULTS = ServerConfig()  # the flags' defaults are ServerConfig's


def _voice(value: str) -> tuple[str, Path]:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        msg = "expected NAME=/path/to/voice.onnx"
        raise argparse.ArgumentTypeError(msg)
    return name, Path(path)


def parse_args(argv: Sequence[str] | None = None) -> ServerConfig:
    """Turn command-line flags into a :class:`ServerConfig`."""
    parser = argparse.ArgumentParser(
        prog="localvoice",
        description="Offline Azure AI Voice Live compatible server (VAD, STT, LLM, TTS).",
    )
    parser.add_argument(
        "--host", default=DEFAULTS.host, help=f"bind address (default {DEFAULTS.host})"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULTS.port, help=f"port (default {DEFAULTS.port}; 0 = any)"
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("LOCALVOICE_API_KEY") or None,
        help="require this key in the api-key header (default: $LOCALVOICE_API_KEY)",
    )
    parser.add_argument(
        "--no-auth", action="store_true", help="accept clients without a key (tests only)"
    )
    parser.add_argument(
        "--accept-bearer", action="store_true", help="also accept any Authorization: Bearer token"
    )
    parser.add_argument("--echo", action="store_true", help="no models: echo audio back")
    parser.add_argument(
        "--enable-faults", action="store_true", help="honour localvoice.fault events (tests only)"
    )
    parser.add_argument(
        "--max-session-seconds",
        type=float,
        default=DEFAULTS.max_session_seconds,
        help="session limit (0 = none)",
    )
    parser.add_argument("--voice-map", type=Path, help="JSON: voice name -> local voice name")
    parser.add_argument(
        "--llm",
        choices=LLM_CHOICES,
        default=os.environ.get("LOCALVOICE_LLM") or DEFAULTS.llm,
        help=f"bundled chat model (default $LOCALVOICE_LLM or {DEFAULTS.llm})",
    )
    parser.add_argument(
        "--stt",
        choices=STT_CHOICES,
        default=os.environ.get("LOCALVOICE_STT") or DEFAULTS.stt,
        help=f"Whisper model (default $LOCALVOICE_STT or {DEFAULTS.stt})",
    )
    parser.add_argument(
        "--llm-model", type=Path, help="a chat GGUF instead of the bundled file (--llm's format)"
    )
    parser.add_argument("--llm-url", help="OpenAI-compatible chat endpoint on this machine")
    parser.add_argument(
        "--piper-voice",
        type=_voice,
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="add a Piper voice (.onnx with its .onnx.json beside it); repeatable",
    )
    parser.add_argument(
        "--threads", type=int, default=DEFAULTS.threads, help="llama.cpp's threads for prompts"
    )
    parser.add_argument(
        "--llm-threads",
        type=int,
        default=DEFAULTS.llm_threads,
        help=f"llama.cpp threads (default {DEFAULTS.llm_threads}: see docs)",
    )
    parser.add_argument(
        "--tts-threads",
        type=int,
        default=DEFAULTS.tts_threads,
        help=f"Piper's threads (default {DEFAULTS.tts_threads}: see docs)",
    )
    parser.add_argument(
        "--first-chunk-words",
        type=int,
        default=DEFAULTS.first_chunk_words,
        help=f"speak the first N words as soon as they are generated "
        f"(default {DEFAULTS.first_chunk_words}; 0: off)",
    )
    parser.add_argument(
        "--no-prefill",
        dest="prefill",
        action="store_false",
        help="do not evaluate the reply's prompt while the user is still speaking",
    )
    parser.add_argument(
        "--no-words-end-of-turn",
        dest="words_end_of_turn",
        action="store_false",
        help="semantic end of turn judges the audio (Smart Turn) and the last word only, not the "
        "words with the chat model",
    )
    parser.add_argument(
        "--kv-snapshot-mb",
        type=int,
        default=DEFAULTS.kv_snapshot_mb,
        help=f"memory for each conversation's evaluated prompt, so sessions sharing the model "
        f"keep theirs (default {DEFAULTS.kv_snapshot_mb}; 0: off)",
    )
    parser.add_argument(
        "--echo-mute",
        action="store_true",
        help="with echo cancellation, mute the VAD while a reply plays (stops self-interruption "
        "on loudspeakers, but also same-level barge-in)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    args = parser.parse_args(argv)
    if not args.api_key and not args.no_auth:
        # Voice Live never accepts an anonymous client; neither does its local stand-in.
        parser.error(
            "a key is required: set LOCALVOICE_API_KEY (make run writes one to .env) or pass "
            "--api-key; --no-auth accepts any client (tests only)"
        )
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return ServerConfig(
        host=args.host,
        port=args.port,
        api_key=None if args.no_auth else args.api_key,
        accept_bearer=args.accept_bearer,
        echo=args.echo,
        enable_faults=args.enable_faults,
        max_session_seconds=args.max_session_seconds,
        voice_map=args.voice_map,
        llm=args.llm,
        stt=args.stt,
        llm_model=args.llm_model,
        llm_url=args.llm_url,
        piper_voices=dict(args.piper_voice),
        threads=args.threads,
        llm_threads=args.llm_threads,
        tts_threads=max(1, args.tts_threads),
        first_chunk_words=args.first_chunk_words,
        prefill=args.prefill,
        words_end_of_turn=args.words_end_of_turn,
        kv_snapshot_mb=max(0, args.kv_snapshot_mb),
        echo_mute=args.echo_mute,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Load the models (unless ``--echo``) and serve until interrupted."""
    config = parse_args(argv)
    logger = logging.getLogger("localvoice")
    pipeline: Pipeline
    if config.echo:
        from localvoice.pipeline.loopback import echo_pipeline

        pipeline = echo_pipeline()
    else:
        from localvoice.pipeline.loader import load_pipeline
        from localvoice.pipeline.weights import WeightsError

        started = time.perf_counter()
        try:
            pipeline = load_pipeline(config)
        except WeightsError as exc:
            # A missing or damaged model package: say which one, without a traceback.
            logger.error("%s", exc)
            msg = f"localvoice: cannot load the models: {exc}"
            raise SystemExit(msg) from None
        logger.info("models ready in %.2f s", time.perf_counter() - started)
    from localvoice.server.app import serve

    asyncio.run(serve(config, pipeline))


if __name__ == "__main__":
    main()
