"""TensorFlow-datasets builders that run without TensorFlow (array_record files, read with ``data_source``).

* ``cifar10_jpeg``: CIFAR-10 from ``cifar10-jpeg.tar.gz`` (``train/<class>/NNNN.jpg``, ``test/...``),
  the JPEG bytes stored as they are; labels in alphabetical folder order.
* ``labelled_folder``: any folder with ``labels.tsv`` (``file``, ``class_index``); one config per
  folder, named by the user; images are converted to RGB by :func:`jaxplain.images.load_image`.

Without TensorFlow, TFDS cannot encode numpy arrays, so images are handed over as encoded bytes or
PIL images; the tarball is read with :mod:`tarfile`, not TFDS's download manager.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxplain.data.folder import read_labels
from jaxplain.images import load_image

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_TARBALL = "cifar10-jpeg.tar.gz"
FILE_FORMAT = "array_record"


class Cifar10Jpeg(tfds.core.GeneratorBasedBuilder):
    """CIFAR-10 (Krizhevsky, 2009) re-encoded as JPEG files: 50,000 train and 10,000 test images."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Built from cifar10-jpeg.tar.gz."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"Place {CIFAR10_TARBALL} in the manual directory (jaxplain passes it)."

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(32, 32, 3), encoding_format="jpeg"),
                "label": tfds.features.ClassLabel(names=CIFAR10_CLASSES),
                "id": tfds.features.Text(),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        tarball = Path(dl_manager.manual_dir) / CIFAR10_TARBALL
        return {split: self._generate_examples(tarball, split) for split in ("train", "test")}

    def _generate_examples(self, tarball: Path, split: str):
        with tarfile.open(tarball) as archive:
            for member in archive:
                parts = Path(member.name).parts
                parts = parts[parts.index(split):] if split in parts else ()
                if not member.isfile() or len(parts) != 3 or not parts[2].lower().endswith((".jpg", ".jpeg")):
                    continue
                _, label, name = parts
                if label not in CIFAR10_CLASSES:
                    raise ValueError(f"{tarball}: unknown class folder {label!r} in {member.name}")
                key = f"{split}/{label}/{name}"
                yield key, {"image": archive.extractfile(member).read(), "label": label, "id": key}


class SpokenDigits(tfds.core.GeneratorBasedBuilder):
    """Spoken digits synthesised with espeak-ng (:mod:`jaxplain.data.speech`): 1-s clips at 16 kHz,
    split by speaker variant into ``train`` and ``test``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "8 accents x 58 speaker variants x 10 words, noise at 10-30 dB SNR."}

    def _info(self) -> tfds.core.DatasetInfo:
        from jaxplain.data import speech

        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "audio": tfds.features.Tensor(shape=(speech.SAMPLE_RATE,), dtype=np.int16),
                "label": tfds.features.ClassLabel(names=speech.WORDS),
                "voice": tfds.features.Text(),
                "id": tfds.features.Text(),
            }),
            supervised_keys=("audio", "label"),
        )

    def _split_generators(self, dl_manager):
        from jaxplain.data import speech

        clips = speech.plan(seed=0)
        return {split: self._generate_examples([c for c in clips if c.split == split]) for split in ("train", "test")}

    def _generate_examples(self, clips):
        import concurrent.futures
        import os

        from jaxplain.data import speech

        executable = speech.espeak()
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # espeak-ng runs as subprocesses
            utterances = pool.map(lambda clip: speech.synthesise(clip, executable), clips)
            for clip, utterance in zip(clips, utterances):
                yield clip.id, {"audio": speech.render(clip, utterance), "label": clip.word, "voice": clip.voice,
                                "id": clip.id}


class LabelledFolder(tfds.core.GeneratorBasedBuilder):
    """Images of a folder with ``labels.tsv``; one split, ``images``. The folder is the config's description."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "Images converted to RGB PNG, labels from labels.tsv.",
                     "1.1.0": "The grid cell of each row (-1 for an ordinary image)."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
                "label": tfds.features.Scalar(np.int64),
                "cell": tfds.features.Scalar(np.int64),
                "id": tfds.features.Text(),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        folder = Path(self.builder_config.description)
        return {"images": self._generate_examples(folder)}

    def _generate_examples(self, folder: Path):
        for file, label, cell in read_labels(folder):
            key = f"{file}@{cell}" if cell >= 0 else file
            yield key, {"image": Image.fromarray(load_image(folder / file)), "label": label, "cell": cell, "id": key}
