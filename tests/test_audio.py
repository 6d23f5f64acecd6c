"""Audio: the log-mel front end by hand, masked clips, and explaining a .wav end to end on a tiny model."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxplain.audio import AudioFrontend, hz_to_mel, masked_clip, mel_filterbank, mel_to_hz, read_wav, write_wav
from jaxplain.errors import InputFileError
from jaxplain.model import SPECTROGRAM, from_linen
from jaxplain.models.layers import tap

FRONTEND = AudioFrontend(sample_rate=8000, duration=0.5, n_fft=256, hop=125, n_mels=16)


def tone(frequency: float, seconds: float = 0.5, rate: int = 8000, start: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t) * (t >= start)).astype(np.float32)


def test_mel_scale_and_filterbank():
    assert float(hz_to_mel(700.0)) == pytest.approx(2595.0 * np.log10(2.0))
    assert float(mel_to_hz(hz_to_mel(1234.5))) == pytest.approx(1234.5)
    bank = mel_filterbank(8000, 256, 16)
    assert bank.shape == (16, 129) and bank.max() <= 1.0 + 1e-6
    assert (bank.argmax(axis=1) == np.sort(bank.argmax(axis=1))).all()  # bands rise with frequency


def test_log_mel_puts_a_tone_in_its_band_and_time():
    x = FRONTEND(tone(2000.0, start=0.25))  # silent first half, then 2 kHz
    assert x.shape == FRONTEND.input_shape == (33, 16, 1) and 0 <= x.min() and x.max() <= 1
    band = int(np.argmax(mel_filterbank(8000, 256, 16)[:, round(2000 / 8000 * 256)]))
    loud = x[..., 0]
    assert loud[:10].max() == 0.0  # silence maps to 0
    assert int(np.argmax(loud[25])) == band and loud[25, band] > 0.7


def test_masked_clip_keeps_all_or_nothing():
    wave = tone(440.0) + tone(2500.0)
    whole = masked_clip(FRONTEND, wave, np.ones(FRONTEND.input_shape[:2]))
    np.testing.assert_allclose(whole, wave, atol=1e-5)
    assert np.abs(masked_clip(FRONTEND, wave, np.zeros(FRONTEND.input_shape[:2]))).max() < 1e-6
    low_only = np.zeros(FRONTEND.input_shape[:2])
    low_only[:, :6] = 1.0  # the bands up to ~1 kHz
    kept = masked_clip(FRONTEND, wave, low_only)
    spectrum = np.abs(np.fft.rfft(kept))
    frequencies = np.fft.rfftfreq(len(kept), 1 / 8000)
    assert spectrum[np.argmin(np.abs(frequencies - 440))] > 20 * spectrum[np.argmin(np.abs(frequencies - 2500))]


def test_wav_files_are_read_resampled_and_checked(tmp_path):
    write_wav(tmp_path / "a.wav", tone(1000.0, rate=16000), 16000)
    wave = read_wav(tmp_path / "a.wav", 8000)
    assert len(wave) == 4000 and np.abs(wave).max() == pytest.approx(0.5, abs=0.02)
    (tmp_path / "bad.wav").write_bytes(b"RIFF1234WAVEjunk")
    with pytest.raises(InputFileError, match="cannot decode audio"):
        read_wav(tmp_path / "bad.wav", 8000)


class TinyAudioNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = tap(self, "head", nn.relu(nn.Conv(4, (3, 3), strides=2)(x)))
        return nn.Dense(3)(h.mean(axis=(1, 2)))


def tiny_audio_model():
    module = TinyAudioNet()
    variables = module.init(jax.random.key(0), jnp.zeros((1, *FRONTEND.input_shape)))
    return from_linen("tiny_audio", module, variables, class_names=["a", "b", "c"], preprocessing=FRONTEND,
                      normalisation=SPECTROGRAM)


def test_explaining_a_clip_writes_a_spectrogram_overlay_and_masked_clips(tmp_path, monkeypatch):
    from jaxplain.cli import main
    from jaxplain.zoo import MODELS

    monkeypatch.setitem(MODELS, "tiny_audio", tiny_audio_model)
    write_wav(tmp_path / "word.wav", tone(1500.0, rate=8000, start=0.2), 8000)
    out = tmp_path / "out"
    code = main(["explain", str(tmp_path / "word.wav"), "--model", "tiny_audio", "--method", "occlusion,gradcam",
                 "--out", str(out), "--set", "occlusion.window=4", "--set", "occlusion.stride=4",
                 "--set", "occlusion.chunk=8"])
    assert code == 0
    record = json.loads((out / "results.json").read_text())["images"][0]
    overlay = np.asarray(Image.open(out / record["overlays"]["occlusion"]))
    assert min(overlay.shape[:2]) >= 64 and overlay.std() > 1  # the spectrogram enlarged, not a blank picture
    heard = read_wav(out / record["clip"], 8000)
    masked = read_wav(out / record["masked_clips"]["gradcam"], 8000)
    assert len(heard) == len(masked) == 4000 and 0 < np.abs(masked).max() <= 1.2 * np.abs(heard).max()
    assert np.load(out / "results.npz")["maps_occlusion"].shape == (1, 33, 16)
    page = (out / "index.html").read_text()
    assert page.count("<audio") == 3  # the clip and one masked clip per method


@pytest.mark.real_model
@pytest.mark.parametrize("method, settings", [("gradcam", {}),
                                              ("occlusion", {})])
def test_the_map_of_a_spoken_digit_covers_the_word_not_the_silence(method, settings):
    from jaxplain import runner
    from jaxplain.assets import clips
    from jaxplain.zoo import load_model

    model = load_model("spoken_digits_cnn")
    clip = next(c for c in clips() if c.name.startswith("one_"))
    x = model.preprocessing.load(clip)[None]
    assert int(runner.predict(model, x).argmax()) == 1
    energy = x[0, ..., 0].mean(axis=1)
    word = energy > energy.min() + 0.5 * (energy.max() - energy.min())  # the frames where the word is said
    assert 10 < word.sum() < 60
    saliency = runner.explain(model, method, x, [1], key=0, **settings)[0]
    assert saliency[word].mean() > 2 * saliency[~word].mean(), (saliency[word].mean(), saliency[~word].mean())
