"""The stages (VAD, STT, LLM, TTS, input clean-up), their registry, and the loader."""
