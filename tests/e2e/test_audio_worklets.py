"""The audio worklets in Chromium's own audio engine (OfflineAudioContext): rates and aliasing."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.servers import DaphneServer

pytestmark = pytest.mark.e2e

# Renders a sine through pcm-capture-processor and returns the 24 kHz PCM it posted.
CAPTURE = """
async ([url, rate, freq]) => {
  const ctx = new OfflineAudioContext(1, rate, rate);  // one second
  await ctx.audioWorklet.addModule(url);
  const node = new AudioWorkletNode(ctx, 'pcm-capture-processor',
    {numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1]});
  const chunks = [];
  node.port.onmessage = (e) => { if (e.data.type === 'chunk') chunks.push(...e.data.pcm); };
  const osc = new OscillatorNode(ctx, {frequency: freq});
  osc.connect(new GainNode(ctx, {gain: 0.5})).connect(node).connect(ctx.destination);
  osc.start();
  await ctx.startRendering();
  await new Promise((r) => setTimeout(r, 300));  // the last port messages
  return chunks;
}
"""

# Plays one second of a 24 kHz PCM16 sine through pcm-player-processor at the context's rate.
PLAYER = """
async ([url, rate, freq]) => {
  const ctx = new OfflineAudioContext(1, rate, rate);
  await ctx.audioWorklet.addModule(url);
  const node = new AudioWorkletNode(ctx, 'pcm-player-processor',
    {numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1]});
  const pcm = new Int16Array(24000);
  for (let i = 0; i < pcm.length; i++) {
    pcm[i] = Math.round(16384 * Math.sin(2 * Math.PI * freq * i / 24000));
  }
  node.port.postMessage({type: 'chunk', pcm, itemId: 'x'}, [pcm.buffer]);
  node.connect(ctx.destination);
  await new Promise((r) => setTimeout(r, 100));  // the chunk reaches the processor first
  const rendered = await ctx.startRendering();
  return Array.from(rendered.getChannelData(0));
}
"""


def tone_db(samples: list[float], freq: float, rate: int, reference: float) -> float:
    """Level of ``freq`` in ``samples`` relative to an amplitude of ``reference``, in dB."""
    re = sum(s * math.cos(2 * math.pi * freq * i / rate) for i, s in enumerate(samples))
    im = sum(s * math.sin(2 * math.pi * freq * i / rate) for i, s in enumerate(samples))
    amplitude = 2 * math.hypot(re, im) / len(samples)
    return 20 * math.log10(max(amplitude, 1e-12) / reference)


@pytest.fixture
def audio_page(chromium: Any, daphne: DaphneServer) -> Iterator[Any]:
    """A page of the live server, for loading the worklet modules."""
    context = chromium.new_context(base_url=daphne.base_url)
    page = context.new_page()
    page.goto("/accounts/login/")  # same origin as the static files
    yield page
    context.close()


@pytest.mark.parametrize("rate", [48_000, 44_100])
def test_capture_resamples_to_24k_without_aliasing(audio_page: Any, rate: int) -> None:
    """1 kHz passes unchanged; 15 kHz (above 24 kHz's Nyquist) must not fold back to 9 kHz."""
    url = "/static/js/worklets/pcm-capture-processor.js"
    speech = audio_page.evaluate(CAPTURE, [url, rate, 1000])
    assert len(speech) % 2400 == 0  # whole 100 ms chunks
    assert 21_600 <= len(speech) <= 24_000  # 24 kHz: one second in, less the filter's delay
    body = [s / 32768 for s in speech[2400:]]
    assert abs(tone_db(body, 1000, 24_000, 0.5)) < 0.5
    hiss = [s / 32768 for s in audio_page.evaluate(CAPTURE, [url, rate, 15_000])[2400:]]
    alias = 24_000 - 15_000
    assert tone_db(hiss, alias, 24_000, 0.5) < -60


@pytest.mark.parametrize("rate", [48_000, 44_100])
def test_player_resamples_to_the_context_rate_without_images(audio_page: Any, rate: int) -> None:
    """A 3 kHz tone at 24 kHz plays at 3 kHz; linear interpolation's image (21 kHz) is filtered."""
    url = "/static/js/worklets/pcm-player-processor.js"
    out = audio_page.evaluate(PLAYER, [url, rate, 3000])[rate // 10 : rate * 8 // 10]
    assert abs(tone_db(out, 3000, rate, 0.5)) < 0.5
    assert tone_db(out, 21_000, rate, 0.5) < -60
