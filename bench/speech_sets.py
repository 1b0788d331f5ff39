"""The evaluation sets of issue 11: speech for WER, factual questions, tool / no-tool requests.

None of these sentences was used to tune the engine. Speech is synthesised with several
espeak-ng voices, flite's voices (``flite:slt``...; the Debian ``flite`` package) and the bundled
Piper voice, and mixed with noise (white, babble, fan, street) at a chosen SNR.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import tempfile
import wave

import numpy as np
import numpy.typing as npt

from tests.support.audio import speak

RATE = 16000
ESPEAK_VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb-scotland", "en-029"]
VOICES = [*ESPEAK_VOICES, "piper:joe"]
# flite's built-in voices: slt (female, US) and rms, awb (Scottish), kal16 (male, US).
FLITE_VOICES = ["flite:slt", "flite:rms", "flite:awb", "flite:kal16"]

UTTERANCES = [
    "How far is the moon from the earth",
    "What is the weather like in Berlin tomorrow",
    "Remind me to call my sister at six",
    "Which planet is closest to the sun",
    "Play some relaxing piano music",
    "How many players are on a soccer team",
    "Turn off the lights in the kitchen",
    "What is the boiling point of water",
    "Who wrote the novel Pride and Prejudice",
    "Set an alarm for seven in the morning",
    "How do you say thank you in Spanish",
    "What is the tallest mountain in the world",
    "Add milk and eggs to my shopping list",
    "How long does it take to boil an egg",
    "What is the square root of sixty four",
    "Translate good morning into French",
    "When did the first person walk on the moon",
    "Send a message to Peter saying I am running late",
    "What is the population of Canada",
    "Which ocean is the largest",
    "Can you spell the word necessary",
    "What does a red traffic light mean",
    "Open the garage door please",
    "How many days are there in a leap year",
    "What is the chemical symbol for gold",
    "Book a table for two at eight tonight",
    "What is the speed of light",
    "Who painted the Mona Lisa",
    "How many continents are there",
    "What is the freezing point of water in Fahrenheit",
    "Start a five minute timer",
    "What language is spoken in Brazil",
    "How many legs does a spider have",
    "What is the largest animal on earth",
    "Call the nearest pharmacy",
    "What year did the second world war end",
    "Which gas do plants absorb from the air",
    "Lower the volume a little",
    "What is the longest river in Africa",
    "How many hours are in a week",
    "Where is the Eiffel Tower",
    "What color do you get when you mix blue and yellow",
]

# (question, accepted answers: any one, lower-case, must appear in the reply)
FACTS = [
    ("What is the capital of France?", ["paris"]),
    ("At what temperature in Celsius does water boil at sea level?", ["100"]),
    ("Which planet is closest to the sun?", ["mercury"]),
    ("How many players does a soccer team have on the field?", ["11", "eleven"]),
    ("What is the largest ocean on Earth?", ["pacific"]),
    ("Who wrote Romeo and Juliet?", ["shakespeare"]),
    ("How many continents are there?", ["7", "seven"]),
    ("What is the chemical symbol for gold?", ["au"]),
    ("What is the capital of Japan?", ["tokyo"]),
    ("How many days are in a leap year?", ["366"]),
    ("What gas do plants absorb from the air?", ["carbon dioxide", "co2"]),
    ("What is the tallest mountain in the world?", ["everest"]),
    ("How many legs does a spider have?", ["8", "eight"]),
    ("What is the freezing point of water in Celsius?", ["0 ", "zero", "0°", "0 °"]),
    ("Which planet is known as the red planet?", ["mars"]),
    ("What is the largest planet in our solar system?", ["jupiter"]),
    ("Who painted the Mona Lisa?", ["leonardo", "da vinci"]),
    ("What is the capital of Italy?", ["rome"]),
    ("How many hours are there in a day?", ["24", "twenty-four", "twenty four"]),
    ("What is the longest river in Africa?", ["nile"]),
    ("What language is mainly spoken in Brazil?", ["portuguese"]),
    ("What is the square root of 64?", ["8", "eight"]),
    ("How many sides does a triangle have?", ["3", "three"]),
    ("What is the capital of Germany?", ["berlin"]),
    ("Which animal is the largest mammal?", ["blue whale"]),
    ("What color do you get when you mix blue and yellow?", ["green"]),
    ("In which country are the pyramids of Giza?", ["egypt"]),
    ("How many minutes are in an hour?", ["60", "sixty"]),
    ("What is the capital of Spain?", ["madrid"]),
    ("What is 7 times 8?", ["56", "fifty-six", "fifty six"]),
    ("Who was the first person to walk on the moon?", ["armstrong"]),
    ("What is the hardest natural substance?", ["diamond"]),
]

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "the city"}},
            "required": ["city"],
        },
    },
    {
        "type": "function",
        "name": "set_timer",
        "description": "Start a countdown timer for a number of minutes",
        "parameters": {
            "type": "object",
            "properties": {"minutes": {"type": "integer", "minimum": 1}},
            "required": ["minutes"],
        },
    },
    {
        "type": "function",
        "name": "control_lights",
        "description": "Switch the lights of a room on or off",
        "parameters": {
            "type": "object",
            "properties": {
                "room": {"type": "string"},
                "state": {"type": "string", "enum": ["on", "off"]},
            },
            "required": ["room", "state"],
        },
    },
]

# (spoken request, expected tool, expected arguments)
TOOL_REQUESTS = [
    ("What is the weather in Paris", "get_weather", {"city": "Paris"}),
    ("What's the weather like in London today", "get_weather", {"city": "London"}),
    ("Tell me the weather in Tokyo", "get_weather", {"city": "Tokyo"}),
    ("How is the weather in Berlin right now", "get_weather", {"city": "Berlin"}),
    ("Is it raining in Seattle", "get_weather", {"city": "Seattle"}),
    ("Weather forecast for Madrid please", "get_weather", {"city": "Madrid"}),
    ("What's the weather in Rome", "get_weather", {"city": "Rome"}),
    ("Check the weather in Chicago", "get_weather", {"city": "Chicago"}),
    ("Set a timer for five minutes", "set_timer", {"minutes": 5}),
    ("Start a timer for ten minutes", "set_timer", {"minutes": 10}),
    ("Set a three minute timer", "set_timer", {"minutes": 3}),
    ("Timer for twenty minutes please", "set_timer", {"minutes": 20}),
    ("Can you set a timer for two minutes", "set_timer", {"minutes": 2}),
    ("Put a fifteen minute timer on", "set_timer", {"minutes": 15}),
    ("Turn on the lights in the kitchen", "control_lights", {"room": "kitchen", "state": "on"}),
    ("Turn off the bedroom lights", "control_lights", {"room": "bedroom", "state": "off"}),
    ("Switch on the living room lights", "control_lights", {"room": "living room", "state": "on"}),
    ("Switch the office lights off", "control_lights", {"room": "office", "state": "off"}),
    ("Lights on in the bathroom please", "control_lights", {"room": "bathroom", "state": "on"}),
    ("Turn the garage lights off", "control_lights", {"room": "garage", "state": "off"}),
]

NO_TOOL_REQUESTS = [
    "What is 2 plus 2",
    "What is the capital of France",
    "Tell me a joke",
    "Who wrote Hamlet",
    "How are you today",
    "What is the speed of light",
    "Why is the sky blue",
    "How many legs does a dog have",
    "What does a thermometer measure",
    "Can you recommend a good book",
    "What is your name",
    "How do I make a cup of tea",
    "What is the biggest city in Canada",
    "Explain what a light year is",
    "What rhymes with cat",
    "Who invented the telephone",
    "Give me a fun fact about Paris",
    "What is the opposite of hot",
    "How many minutes are in an hour",
    "Thank you very much",
]

# Written after the first-token call bias was tuned on the sets above, to check it on requests
# it never saw (``bench/llm_eval.py --held-out``).
HELD_OUT_TOOL_REQUESTS = [
    ("Do I need an umbrella in Dublin today", "get_weather", {"city": "Dublin"}),
    ("What's it like outside in Oslo", "get_weather", {"city": "Oslo"}),
    ("How warm is it in Lisbon", "get_weather", {"city": "Lisbon"}),
    ("Give me the weather for Vienna", "get_weather", {"city": "Vienna"}),
    ("Is it sunny in Athens", "get_weather", {"city": "Athens"}),
    ("What's the temperature in Boston", "get_weather", {"city": "Boston"}),
    ("Remind me in eight minutes with a timer", "set_timer", {"minutes": 8}),
    ("I need a timer for thirty minutes", "set_timer", {"minutes": 30}),
    ("Count down four minutes for me", "set_timer", {"minutes": 4}),
    ("Please turn the hallway lights on", "control_lights", {"room": "hallway", "state": "on"}),
    ("Kill the lights in the study", "control_lights", {"room": "study", "state": "off"}),
    (
        "Can you switch the dining room lights off",
        "control_lights",
        {"room": "dining room", "state": "off"},
    ),
]

HELD_OUT_NO_TOOL_REQUESTS = [
    "What is 7 times 8",
    "How many days are in a week",
    "What colour is a banana",
    "Who painted the Mona Lisa",
    "What do bees make",
    "Say something nice",
    "What is the tallest animal",
    "How many wheels does a bicycle have",
    "What language is spoken in Brazil",
    "Can you spell cat",
    "What is the boiling point of water",
    "Good night",
]


@functools.cache
def _piper() -> object:
    from localvoice.pipeline.tts import PiperTts

    return PiperTts({}, threads=1)


def synth(text: str, voice: str) -> npt.NDArray[np.float32]:
    """Speech for ``text`` at 16 kHz, float32 (``voice``: espeak-ng, ``flite:``, ``piper:``)."""
    if voice.startswith("flite:"):
        return _flite(text, voice[6:])
    if voice.startswith("piper:"):
        import soxr

        tts = _piper()
        pcm = tts.synthesize(text, voice=voice[6:], length_scale=None)  # type: ignore[attr-defined]
        rate = tts.sample_rate(voice[6:])  # type: ignore[attr-defined]
        audio = pcm.astype(np.float32) / 32768.0
        return np.asarray(soxr.resample(audio, rate, RATE), dtype=np.float32)
    pcm = speak(text, RATE, voice=voice)
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


@functools.cache
def _flite(text: str, voice: str) -> npt.NDArray[np.float32]:
    import soxr

    if shutil.which("flite") is None:
        msg = "flite is not installed (apt-get install flite; make setup-test does)"
        raise RuntimeError(msg)
    with tempfile.NamedTemporaryFile(suffix=".wav") as out:
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", out.name], check=True)
        data = out.read()
    with wave.open(io.BytesIO(data)) as wav:
        rate = wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    audio = pcm.astype(np.float32) / 32768.0
    return np.asarray(soxr.resample(audio, rate, RATE), dtype=np.float32)


def family(voice: str) -> str:
    """``espeak-ng``, ``flite`` or ``piper``: the synthesiser behind a voice name."""
    return voice.split(":", 1)[0] if ":" in voice else "espeak-ng"


NOISE_KINDS = ("white", "babble", "fan", "street")


def _pink(rng: np.random.Generator, n: int, exponent: float) -> npt.NDArray[np.float64]:
    """Noise whose power falls as 1/f**exponent (1: pink, 2: brown), unit power."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    freqs[0] = freqs[1]
    shaped = np.fft.irfft(spectrum / freqs ** (exponent / 2), n)
    return np.asarray(shaped / np.sqrt(np.mean(shaped**2)))


@functools.cache
def _babble_bed(seconds: int = 40) -> npt.NDArray[np.float32]:
    """Six talkers at once: sentences the STT is never scored on, every voice, overlapped."""
    rng = np.random.default_rng(7)
    bed = np.zeros(RATE * seconds, dtype=np.float64)
    scored = {text.lower() for text in UTTERANCES}
    talkers = [q for q, _ in FACTS if q.rstrip("?").lower() not in scored]
    for talker in range(6):
        track = np.zeros(0, dtype=np.float32)
        while track.size < bed.size:
            text = talkers[int(rng.integers(len(talkers)))]
            track = np.concatenate([track, synth(text, VOICES[talker % len(VOICES)])])
        track = np.roll(track[: bed.size], int(rng.integers(bed.size)))
        bed += track / max(1e-6, float(np.sqrt(np.mean(track**2))))
    return np.asarray(bed / np.sqrt(np.mean(bed**2)), dtype=np.float32)


def noise(kind: str, n: int, seed: int) -> npt.NDArray[np.float64]:
    """``n`` samples of unit-power noise of one kind.

    ``babble``: six overlapping synthetic talkers (a cafe); ``fan``: brown noise with the hum of
    the blades (120 Hz and harmonics, slowly wobbling); ``street``: pink noise that swells and
    fades as cars pass (a few seconds each), with a short horn now and then.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE
    if kind == "white":
        out = rng.standard_normal(n)
    elif kind == "babble":
        bed = _babble_bed()
        start = int(rng.integers(bed.size))
        out = np.resize(np.roll(bed, -start), n).astype(np.float64)
    elif kind == "fan":
        wobble = 1 + 0.01 * np.sin(2 * np.pi * 0.3 * t)
        hum = sum(np.sin(2 * np.pi * 120 * k * wobble * t) / k for k in (1, 2, 3))
        out = _pink(rng, n, 2.0) + 0.5 * hum / np.sqrt(np.mean(hum**2))
    elif kind == "street":
        passing = 0.3 + np.sin(np.pi * t / 3.7 + rng.uniform(0, np.pi)) ** 2
        out = _pink(rng, n, 1.0) * passing
        horn_at = int(rng.integers(max(1, n - RATE // 3)))
        horn = np.sign(np.sin(2 * np.pi * 420 * t[: RATE // 3]))
        out[horn_at : horn_at + horn.size] += 2.0 * horn[: n - horn_at]
    else:
        msg = f"unknown noise {kind!r}; one of {NOISE_KINDS}"
        raise ValueError(msg)
    return np.asarray(out / np.sqrt(np.mean(out**2)))


def add_noise(
    audio: npt.NDArray[np.float32], snr_db: float | None, seed: int, kind: str = "white"
) -> npt.NDArray:
    """Noise of ``kind`` at ``snr_db`` relative to the speech's power (active part); None: clean."""
    if snr_db is None:
        return audio
    active = audio[np.abs(audio) > 0.01]
    power = float(np.mean((active if active.size else audio) ** 2))
    mixed = audio + noise(kind, audio.size, seed) * np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(mixed, -1, 1).astype(np.float32)
