"""Spoken digits generated offline with the ``espeak-ng`` speech synthesiser: jaxplain's audio data set.

Every clip is one word (``zero`` .. ``nine``) said by one *voice*, an English accent (8, from
American to Scottish) combined with a speaker variant (``male1``, ``female3``, ``klatt2``, ``Alicia``, ...),
at a random speed and pitch, placed at a random time in a 1-s clip at 16 kHz with a random gain,
and mixed with white, pink or brown noise at a random signal-to-noise ratio. The split is by speaker
variant: the ``test`` voices use variants no ``train`` voice uses, so accuracy on ``test`` measures
generalisation to unheard speakers. Everything is a pure function of the seed, so the data set is
rebuilt identically anywhere ``espeak-ng`` is installed.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import subprocess

import numpy as np

from jaxplain.errors import UsageError

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
VARIANTS = (
    "male1", "male2", "male3", "male4", "male5", "male6", "male7", "male8",
    "female1", "female2", "female3", "female4", "female5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6",
    "Adam", "Alex", "Alicia", "Andy", "Annie", "Auntie", "Belinda", "Benjamin", "Boris", "Caleb", "David",
    "Ed", "Edward", "Gene", "Henrique", "Hugo", "Jacky", "John", "Lee", "Linda", "Marco", "Max", "Michael",
    "Mike", "Paul", "Pedro", "Rob", "Robert", "Steph", "Storm", "Zac", "anika", "croak", "grandma",
    "grandpa", "norbert", "shelby", "travis", "victor",
)
TEST_VARIANTS = VARIANTS[2::5]  # one speaker variant in five is never heard in training
SAMPLE_RATE = 16000
ESPEAK_RATE = 22050


@dataclasses.dataclass(frozen=True)
class Clip:
    """The recipe of one clip: what is said, by whom, and how it is rendered."""

    index: int
    word: str
    accent: str
    variant: str
    speed: int  # words per minute
    pitch: int  # 0..99
    seed: int

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant}"

    @property
    def split(self) -> str:
        return "test" if self.variant in TEST_VARIANTS else "train"

    @property
    def id(self) -> str:
        return f"{self.index:05d}_{self.word}_{self.voice}"


def plan(seed: int = 0, renditions: int = 1) -> list[Clip]:
    """Every clip of the data set: each word by each voice ``renditions`` times, speed and pitch drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    clips = []
    for accent in ACCENTS:
        for variant in VARIANTS:
            for word in WORDS:
                for _ in range(renditions):
                    clips.append(Clip(len(clips), word, accent, variant, int(rng.integers(110, 211)),
                                      int(rng.integers(20, 81)), int(rng.integers(2 ** 31))))
    return clips


def espeak() -> str:
    """The ``espeak-ng`` executable; installs it with apt-get when possible, else says how to."""
    found = shutil.which("espeak-ng")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt and hasattr(os, "geteuid") and os.geteuid() == 0:
        print("espeak-ng is missing; installing it with apt-get (Debian package espeak-ng)")
        subprocess.run([apt, "install", "-y", "espeak-ng"], check=False, capture_output=True)
        if not shutil.which("espeak-ng"):
            subprocess.run([apt, "update"], check=False, capture_output=True)
            subprocess.run([apt, "install", "-y", "espeak-ng"], check=False, capture_output=True)
        found = shutil.which("espeak-ng")
        if found:
            return found
    raise UsageError("the spoken-digits data set is synthesised with espeak-ng, which is not installed; "
                     "install it (Debian/Ubuntu: sudo apt-get install espeak-ng; macOS: brew install espeak-ng)")


def synthesise(clip: Clip, executable: str) -> np.ndarray:
    """The raw utterance as float32 at 16 kHz."""
    from math import gcd

    from scipy.io import wavfile
    from scipy.signal import resample_poly

    result = subprocess.run([executable, "-v", clip.voice, "-s", str(clip.speed), "-p", str(clip.pitch), "--stdout",
                             clip.word], capture_output=True, check=True)
    rate, data = wavfile.read(io.BytesIO(result.stdout))
    wave = data.astype(np.float32) / 32768.0
    common = gcd(rate, SAMPLE_RATE)
    return resample_poly(wave, SAMPLE_RATE // common, rate // common).astype(np.float32)


def coloured_noise(rng: np.random.Generator, length: int, colour: str) -> np.ndarray:
    """Unit-power white, pink (1/f) or brown (1/f^2) noise."""
    spectrum = np.fft.rfft(rng.normal(size=length))
    frequencies = np.maximum(np.fft.rfftfreq(length), 1.0 / length)
    spectrum *= {"white": 1.0, "pink": frequencies ** -0.5, "brown": frequencies ** -1.0}[colour]
    noise = np.fft.irfft(spectrum, n=length)
    return (noise / np.sqrt(np.mean(noise ** 2))).astype(np.float32)


def render(clip: Clip, utterance: np.ndarray, duration: float = 1.0) -> np.ndarray:
    """The finished clip as int16 ``[16000]``: the utterance at a random offset and gain, plus noise."""
    rng = np.random.default_rng(clip.seed)
    length = int(SAMPLE_RATE * duration)
    speech = utterance[:length]
    start = int(rng.integers(0, length - len(speech) + 1))
    wave = np.zeros(length, np.float32)
    wave[start:start + len(speech)] = speech / max(float(np.abs(speech).max()), 1e-6) * rng.uniform(0.3, 0.9)
    signal_power = float(np.mean(speech_power_window(wave)))
    snr_db = rng.uniform(10.0, 30.0)
    noise = coloured_noise(rng, length, str(rng.choice(["white", "pink", "brown"])))
    wave = wave + noise * np.sqrt(signal_power / 10 ** (snr_db / 10))
    return (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16)


def speech_power_window(wave: np.ndarray) -> np.ndarray:
    """Squared samples where the clip is not silent (the signal power a signal-to-noise ratio refers to)."""
    active = np.abs(wave) > 1e-4
    return wave[active] ** 2 if active.any() else np.zeros(1, np.float32)
