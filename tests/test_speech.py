"""The spoken-digits data set (without espeak-ng: its plan and rendering) and the audio trainer's augmentation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxplain.data import speech
from jaxplain.train.speech_classifier import SpeechRecipe, spec_augment


def test_the_plan_is_deterministic_and_split_by_speaker_variant():
    clips = speech.plan(seed=0)
    assert clips == speech.plan(seed=0) and clips != speech.plan(seed=1)
    assert len(clips) == len(speech.ACCENTS) * len(speech.VARIANTS) * len(speech.WORDS)
    train = {c.variant for c in clips if c.split == "train"}
    test = {c.variant for c in clips if c.split == "test"}
    assert not train & test and test == set(speech.TEST_VARIANTS)
    assert {c.word for c in clips if c.split == "test"} == set(speech.WORDS)
    assert len({c.id for c in clips}) == len(clips)


def test_rendering_places_the_utterance_and_adds_noise_at_the_drawn_level():
    clip = speech.plan(seed=0)[7]
    utterance = np.sin(np.linspace(0, 400 * np.pi, 6000)).astype(np.float32)
    a, b = speech.render(clip, utterance), speech.render(clip, utterance)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int16 and a.shape == (speech.SAMPLE_RATE,)
    wave = a.astype(np.float32) / 32768
    energy = np.convolve(wave ** 2, np.ones(400) / 400, mode="same")
    loud = energy > 10 * np.median(energy)
    assert 5000 < loud.sum() < 7000  # the utterance (6000 samples) stands out of the noise floor


@pytest.mark.parametrize("colour", ["white", "pink", "brown"])
def test_coloured_noise_has_unit_power_and_its_slope(colour):
    noise = speech.coloured_noise(np.random.default_rng(0), 16000, colour)
    assert np.mean(noise ** 2) == pytest.approx(1.0, rel=1e-3)
    spectrum = np.abs(np.fft.rfft(noise)) ** 2
    low, high = spectrum[10:100].mean(), spectrum[4000:7000].mean()
    assert {"white": 0.3 < low / high < 3, "pink": low / high > 10, "brown": low / high > 300}[colour]


def test_spec_augment_shifts_in_silence_and_masks_bands():
    x = jnp.ones((8, 32, 16, 1))
    recipe = SpeechRecipe(time_shift=4, freq_masks=1, freq_mask=4, time_masks=1, time_mask=5)
    y = spec_augment(jax.random.key(0), x, recipe)
    assert y.shape == x.shape and set(np.unique(np.asarray(y))) <= {0.0, 1.0}
    silent = 1.0 - np.asarray(y[..., 0]).mean(axis=(1, 2))
    assert 0 < silent.mean() < 0.5  # some bins silenced, most kept
    np.testing.assert_array_equal(spec_augment(jax.random.key(0), x, recipe), y)
