"""Echo canceller offline: how much echo Silero VAD still hears, with and without the muting.

A Piper reply is played back into a simulated microphone 150 ms late at 0.33 with a second
reflection at 0.1 (as ``tests/localvoice/test_echo_noise.py`` does live); optionally the user
says "stop" over it 3 s in, at the same level or louder. Prints the VAD windows (32 ms) above
0.5 in the raw microphone signal, after cancellation (what STT gets) and after the muting
(what the VAD gets), plus the canceller's CPU share.

    .venv/bin/python -m bench.echo_offline
"""

from __future__ import annotations

import time

import numpy as np

from bench.speech_sets import synth
from localvoice.pipeline.echo import EchoReference, SpeexEchoCanceller
from localvoice.pipeline.vad import SileroVadModel

REPLY = (
    "Paris is a city with many stories, ranging from the French revolution to the building of "
    "the Eiffel Tower. The city has been home to many people and events over the centuries."
)


def main() -> None:
    far = synth(REPLY, "piper:joe")
    user = synth("Stop, stop, please stop talking now.", "en-us")
    delay = 150 * 16
    echo = np.zeros(far.size + delay + 16000, dtype=np.float32)
    echo[delay : delay + far.size] = 0.33 * far
    echo[delay + 192 : delay + 192 + far.size] += 0.1 * far
    echo += np.random.default_rng(0).standard_normal(echo.size).astype(np.float32) * 0.002
    vad = SileroVadModel()
    stream = vad.acquire()
    at = 3 * 16000
    for gain in (0.0, 1.0, 2.5):
        mic = echo.copy()
        mic[at : at + user.size] += gain * user
        ref = EchoReference()
        ref.play(far, 0)
        aec = SpeexEchoCanceller(mute=True)
        gated, cancelled = [], []
        started = time.process_time()
        for i in range(0, mic.size, 320):
            piece = mic[i : i + 320]
            g, c = aec.process(piece, ref.take(i, piece.size), ref.gate_power())
            gated.append(g)
            cancelled.append(c)
        cpu = time.process_time() - started
        for name, signal in (
            ("microphone", mic),
            ("cancelled", np.concatenate(cancelled)),
            ("muted for VAD", np.concatenate(gated)),
        ):
            stream.reset()
            probs = np.array(
                [stream.probability(signal[i : i + 512]) for i in range(0, signal.size - 512, 512)]
            )
            speech = probs > 0.5
            lo, hi = at // 512, (at + user.size) // 512
            during = int(speech[lo:hi].sum()) if gain else 0
            echo_only = int(speech[:lo].sum() + speech[hi:].sum())
            print(
                f"user x{gain:<3} {name:14} windows with speech: echo-only parts {echo_only:4}, "
                f"during the user's words {during:3} of {hi - lo}"
            )
        print(f"          canceller CPU {100 * cpu / (mic.size / 16000):.1f} % of one core")
    vad.release(stream)


if __name__ == "__main__":
    main()
