"""Datasets by one grammar, shared by every command that reads data (``--data``):

* ``PATH``: a labelled folder (images + ``labels.tsv``), read directly;
* ``tfds:NAME[:SPLIT]``: a TFDS dataset in ``$TFDS_DATA_DIR`` (or ``--tfds-dir``) read through
  ``data_source`` (array_record, no TensorFlow). SPLIT may be sliced as TFDS allows, e.g.
  ``test[5000:]``, so one split can hold a development and a test part. ``cifar10_jpeg`` is prepared on first use from
  ``cifar10-jpeg.tar.gz`` found in ``$JAXPLAIN_DATA`` (or ``--raw-data``); ``spoken_digits`` (audio)
  is synthesised on first use with espeak-ng; ``labelled_folder/NAME`` is prepared by ``jaxplain data
  folder``; any other name must already be prepared with TFDS.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from jaxplain.data.folder import FolderSource
from jaxplain.errors import InputFileError, UsageError

DEFAULT_SPLITS = ("test", "validation", "images", "train")


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """A parsed ``--data`` value."""

    kind: str  # "folder" or "tfds"
    name: str  # folder path or TFDS name (with config)
    split: str | None = None

    @classmethod
    def parse(cls, spec: str) -> "DataSpec":
        if spec.startswith("tfds:"):
            parts = spec[len("tfds:"):].split(":", 1)  # a sliced split may hold a colon: test[5000:]
            if not parts[0] or ":" in parts[0]:
                raise UsageError(f"--data {spec!r}: expected tfds:NAME or tfds:NAME:SPLIT, e.g. tfds:cifar10_jpeg:test")
            return cls("tfds", parts[0], parts[1] if len(parts) == 2 and parts[1] else None)
        return cls("folder", spec)


def tfds_data_dir(data_dir: str | Path | None = None) -> Path:
    return Path(data_dir or os.environ.get("TFDS_DATA_DIR") or Path.home() / "tensorflow_datasets")


def raw_data_dir(raw_data: str | Path | None = None) -> Path | None:
    value = raw_data or os.environ.get("JAXPLAIN_DATA")
    return Path(value) if value else None


def _builder(name: str, data_dir: Path, raw_data: Path | None):
    """A TFDS builder for ``name``, preparing ``cifar10_jpeg`` from the raw tarball when needed."""
    import tensorflow_datasets as tfds

    from jaxplain.data import tfds_builders

    if name == "cifar10_jpeg":
        builder = tfds_builders.Cifar10Jpeg(data_dir=str(data_dir), file_format=tfds_builders.FILE_FORMAT)
        if not builder.is_prepared():
            tarball = raw_data / tfds_builders.CIFAR10_TARBALL if raw_data else None
            if tarball is None or not tarball.is_file():
                raise InputFileError(
                    f"tfds:cifar10_jpeg is not prepared in {data_dir} and {tfds_builders.CIFAR10_TARBALL} was not found "
                    f"in {raw_data or '(unset)'}; set JAXPLAIN_DATA (or --raw-data) to the folder holding it"
                )
            builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(raw_data)))
        return builder
    if name == "spoken_digits":
        builder = tfds_builders.SpokenDigits(data_dir=str(data_dir), file_format=tfds_builders.FILE_FORMAT)
        if not builder.is_prepared():
            builder.download_and_prepare()
        return builder
    folder = data_dir / name
    versions = sorted(folder.glob("*.*.*"), key=lambda p: tuple(int(x) for x in p.name.split(".") if x.isdigit()))
    if versions and (versions[-1] / "dataset_info.json").is_file():
        return tfds.builder_from_directory(str(versions[-1]))
    raise InputFileError(
        f"tfds:{name} is not prepared in {data_dir}; prepare it with TFDS (file_format='array_record'), "
        "or set TFDS_DATA_DIR / --tfds-dir to where it is"
    )


def open_source(spec: str, *, num_classes: int | None = None, data_dir=None, raw_data=None):
    """Returns ``(source, split name)`` for a ``--data`` value; see the module docstring for the grammar."""
    parsed = DataSpec.parse(spec)
    if parsed.kind == "folder":
        return FolderSource(parsed.name, num_classes), "folder"
    builder = _builder(parsed.name, tfds_data_dir(data_dir), raw_data_dir(raw_data))
    splits = list(builder.info.splits)
    split = parsed.split or next((s for s in DEFAULT_SPLITS if s in splits), splits[0])
    if split.split("[")[0] not in splits:
        raise UsageError(f"tfds:{parsed.name} has no split {split!r}; it has: {', '.join(splits)}")
    try:
        source = builder.as_data_source(split=split)
    except (NotImplementedError, ValueError) as e:
        if isinstance(e, ValueError) and "[" in split:
            raise UsageError(f"tfds:{parsed.name}: cannot read the slice {split!r} ({e})") from e
        raise InputFileError(f"tfds:{parsed.name} cannot be read without TensorFlow ({e}); prepare it as array_record") from e
    if num_classes is not None and "label" in builder.info.features:
        label = builder.info.features["label"]
        known = getattr(label, "num_classes", None)
        if known is not None and known != num_classes:
            raise UsageError(f"tfds:{parsed.name} has {known} classes but the model has {num_classes}; pick a matching model")
    return source, split


def build_folder_dataset(folder: str | Path, name: str, data_dir=None) -> Path:
    """Prepares ``labelled_folder/NAME`` from a labelled folder; returns where it was written."""
    import tensorflow_datasets as tfds

    from jaxplain.data import tfds_builders

    folder = Path(folder).resolve()
    FolderSource(folder)  # validates labels.tsv before any file is written
    config = tfds.core.BuilderConfig(name=name, description=str(folder))
    builder = tfds_builders.LabelledFolder(
        data_dir=str(tfds_data_dir(data_dir)), config=config, file_format=tfds_builders.FILE_FORMAT
    )
    builder.download_and_prepare()
    return Path(builder.data_dir)
