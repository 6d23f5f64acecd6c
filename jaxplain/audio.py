"""Audio in, model inputs out: clips become log-mel spectrograms that every explainer treats as images.

An audio classifier in jaxplain takes a log-mel spectrogram ``[frames, mels, 1]`` with values in
[0, 1] (0 = silence at -80 dB, 1 = full scale), so saliency maps are time-frequency maps and every
black-box and gradient method applies unchanged; removing a bin (deletion, occlusion, masks) sets it
to silence. :class:`AudioFrontend` is the model's preprocessing: it reads a ``.wav`` file, mixes to
mono, resamples (SciPy's polyphase filter), centres the clip in a fixed duration and computes the
spectrogram. :func:`masked_clip` turns a map back into sound: the mask, spread from mel bands to the
STFT bins they cover, scales the clip's STFT (phase kept) before the inverse STFT, so one can listen
to what a map keeps.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from jaxplain.errors import InputFileError

FLOOR_DB = -80.0


def hz_to_mel(hz):
    """The HTK mel scale: ``2595 log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 20.0, fmax: float | None = None) -> np.ndarray:
    """Triangular filters ``[n_mels, n_fft // 2 + 1]`` equally spaced on the mel scale (peak 1)."""
    fmax = fmax or sample_rate / 2
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None] - lower) / (centre - lower)
    falling = (upper - bins[None]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class AudioFrontend:
    """Waveform -> log-mel ``[frames, n_mels, 1]`` in [0, 1]; the preprocessing of an audio model."""

    sample_rate: int = 16000
    duration: float = 1.0
    n_fft: int = 512
    hop: int = 168
    n_mels: int = 64

    @property
    def samples(self) -> int:
        return int(round(self.sample_rate * self.duration))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (1 + self.samples // self.hop, self.n_mels, 1)

    def stft(self, wave: np.ndarray) -> np.ndarray:
        """Complex STFT ``[frames, n_fft // 2 + 1]`` (Hann window, centred frames, reflect padding)."""
        from scipy.signal import ShortTimeFFT
        from scipy.signal.windows import hann

        transform = ShortTimeFFT(hann(self.n_fft, sym=False), self.hop, self.sample_rate, scale_to="magnitude")
        spectrum = transform.stft(np.asarray(wave, np.float64), padding="even")
        return spectrum.T[: self.input_shape[0]]

    def log_mel(self, wave: np.ndarray) -> np.ndarray:
        """Log-mel energies of a clip of ``samples`` samples, mapped from [-80 dB, 0 dB] to [0, 1]."""
        power = np.abs(self.stft(wave)) ** 2
        mel = power @ mel_filterbank(self.sample_rate, self.n_fft, self.n_mels).T
        decibels = 10.0 * np.log10(np.maximum(mel, 1e-12))
        return np.clip(1.0 - decibels / FLOOR_DB, 0.0, 1.0).astype(np.float32)[..., None]

    def fit(self, wave: np.ndarray) -> np.ndarray:
        """Centres a mono clip in ``samples`` samples: zero padding or a centre cut."""
        wave = np.asarray(wave, np.float32)
        extra = self.samples - len(wave)
        if extra >= 0:
            return np.pad(wave, (extra // 2, extra - extra // 2))
        return wave[-extra // 2: -extra // 2 + self.samples]

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """The model input of a mono clip at ``sample_rate`` (float in [-1, 1] or int16)."""
        wave = np.asarray(wave)
        if wave.dtype == np.int16:
            wave = wave.astype(np.float32) / 32768.0
        return self.log_mel(self.fit(wave))

    def load(self, path: str | Path) -> np.ndarray:
        """Reads a ``.wav`` file and returns the model input; a clip longer than the model hears is refused
        (a crop would explain part of it without a word)."""
        wave = read_wav(path, self.sample_rate)
        if len(wave) > self.samples:
            raise InputFileError(f"{path}: the clip is {len(wave) / self.sample_rate:.2f} s long but the model hears "
                                 f"{self.samples / self.sample_rate:.2f} s; cut out the part to explain (at most "
                                 f"{self.samples / self.sample_rate:.2f} s) and explain that")
        return self(wave)


def read_wav(path: str | Path, sample_rate: int) -> np.ndarray:
    """A ``.wav`` file as mono float32 in [-1, 1] at ``sample_rate`` (resampled if needed)."""
    import struct
    from math import gcd

    from scipy.io import wavfile
    from scipy.signal import resample_poly

    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such audio file; check the path")
    try:
        rate, data = wavfile.read(path)
    except (ValueError, OSError, EOFError, struct.error) as e:
        raise InputFileError(f"{path}: cannot decode audio ({e}); give a PCM .wav file") from e
    if data.size == 0:
        raise InputFileError(f"{path}: the clip is empty")
    if np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
    data = np.asarray(data, np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1)
    if not np.isfinite(data).all():
        raise InputFileError(f"{path}: the clip contains NaN or infinite samples")
    if rate != sample_rate:
        common = gcd(int(rate), sample_rate)
        data = resample_poly(data, sample_rate // common, int(rate) // common).astype(np.float32)
    return data


def write_wav(path: str | Path, wave: np.ndarray, sample_rate: int) -> None:
    """Writes mono float audio as 16-bit PCM (clipped to [-1, 1])."""
    from scipy.io import wavfile

    wavfile.write(path, sample_rate, (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16))


def masked_clip(frontend: AudioFrontend, wave: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The clip with its STFT scaled by a time-mel ``mask`` ``[frames, n_mels]`` in [0, 1] (phase kept).

    Each STFT bin takes the filterbank-weighted mean of the mask over the mel bands that cover it (bins
    outside every band, below ``fmin`` or at Nyquist, take the nearest band's); STFT frames past the
    model's last frame take its mask.
    """
    from scipy.signal import ShortTimeFFT
    from scipy.signal.windows import hann

    wave = frontend.fit(np.asarray(wave, np.float32))
    transform = ShortTimeFFT(hann(frontend.n_fft, sym=False), frontend.hop, frontend.sample_rate,
                             scale_to="magnitude")
    spectrum = transform.stft(np.asarray(wave, np.float64), padding="even")  # [bins, frames]
    bank = mel_filterbank(frontend.sample_rate, frontend.n_fft, frontend.n_mels)  # [mels, bins]
    coverage = bank.sum(0)
    covered = np.flatnonzero(coverage > 0)
    linear = (np.asarray(mask, np.float64) @ bank[:, covered]) / coverage[covered]  # [frames, covered bins]
    bins = np.arange(bank.shape[1])
    linear = np.stack([np.interp(bins, covered, row) for row in linear])  # nearest band outside the bank
    frames = np.minimum(np.arange(spectrum.shape[1]), len(linear) - 1)
    gain = linear[frames].T
    restored = transform.istft(spectrum * gain, k1=len(wave))
    return restored.astype(np.float32)
