"""Datasets: TFDS builders on a tiny generated tarball (no network, no TensorFlow), folders, the sampler."""

import io
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

from jaxplain.data import DataSpec, build_folder_dataset, open_source
from jaxplain.data.folder import FolderSource
from jaxplain.data.loader import epoch_order, iterate_batches, process_shard
from jaxplain.data.tfds_builders import CIFAR10_CLASSES
from jaxplain.errors import InputFileError, UsageError
from jaxplain.model import Preprocessing


def jpeg_bytes(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), value, np.uint8)).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tiny_tarball(tmp_path_factory):
    """cifar10-jpeg.tar.gz with 2 train and 1 test image per class; pixel value = 20 * class index."""
    folder = tmp_path_factory.mktemp("raw")
    with tarfile.open(folder / "cifar10-jpeg.tar.gz", "w:gz") as archive:
        for split, count in (("train", 2), ("test", 1)):
            for label, name in enumerate(CIFAR10_CLASSES):
                for i in range(count):
                    data = jpeg_bytes(20 * label)
                    info = tarfile.TarInfo(f"cifar10-jpeg/{split}/{name}/{i:04d}.jpg")
                    info.size = len(data)
                    archive.addfile(info, io.BytesIO(data))
    return folder


def test_cifar10_builder_prepares_from_the_tarball_without_tensorflow(tiny_tarball, tmp_path):
    source, split = open_source("tfds:cifar10_jpeg:train", data_dir=tmp_path, raw_data=tiny_tarball)
    assert split == "train" and len(source) == 20
    labels = sorted(int(source[i]["label"]) for i in range(len(source)))
    assert labels == sorted(list(range(10)) * 2)
    for i in range(len(source)):
        record = source[i]
        assert record["image"].shape == (32, 32, 3)
        assert abs(int(record["image"].mean()) - 20 * int(record["label"])) <= 2  # labels follow folder order
    test, split = open_source("tfds:cifar10_jpeg", data_dir=tmp_path, raw_data=tiny_tarball)
    assert split == "test" and len(test) == 10
    tail, split = open_source("tfds:cifar10_jpeg:train[15:]", data_dir=tmp_path, raw_data=tiny_tarball)
    assert split == "train[15:]" and len(tail) == 5
    np.testing.assert_array_equal(tail[0]["image"], source[15]["image"])  # a slice is rows of its split
    with pytest.raises(UsageError, match="no split 'valid"):
        open_source("tfds:cifar10_jpeg:valid[:5]", data_dir=tmp_path, raw_data=tiny_tarball)
    assert "tensorflow" not in sys.modules


def test_missing_tarball_and_unknown_datasets_are_explained(tmp_path):
    with pytest.raises(InputFileError, match="JAXPLAIN_DATA"):
        open_source("tfds:cifar10_jpeg:test", data_dir=tmp_path, raw_data=tmp_path)
    with pytest.raises(InputFileError, match="not prepared"):
        open_source("tfds:no_such_set", data_dir=tmp_path)
    with pytest.raises(UsageError, match="tfds:NAME"):
        DataSpec.parse("tfds:")


@pytest.fixture
def labelled_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.zeros((20, 30, 4), np.uint8)).save(folder / "a.png")
    Image.fromarray(np.full((40, 30), 9, np.uint8)).save(folder / "b.jpg")
    (folder / "labels.tsv").write_text("file\tclass_index\tname\na.png\t3\tx\nb.jpg\t7\ty\n")
    return folder


def test_labelled_folder_directly_and_through_tfds(labelled_folder, tmp_path):
    direct, _ = open_source(str(labelled_folder), num_classes=10)
    assert len(direct) == 2 and direct[1]["image"].shape == (40, 30, 3) and int(direct[1]["label"]) == 7
    build_folder_dataset(labelled_folder, "mine", data_dir=tmp_path / "tfds")
    source, split = open_source("tfds:labelled_folder/mine", data_dir=tmp_path / "tfds")
    assert split == "images" and len(source) == 2
    records = sorted((int(source[i]["label"]), source[i]["image"].shape) for i in range(2))
    assert records == [(3, (20, 30, 3)), (7, (40, 30, 3))]


def test_folder_errors_name_the_problem(labelled_folder, tmp_path):
    with pytest.raises(UsageError, match="class_index 7 of b.jpg is outside 0..4"):
        FolderSource(labelled_folder, num_classes=5)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="no labels.tsv"):
        FolderSource(tmp_path / "empty")
    (labelled_folder / "labels.tsv").write_text("file\tclass_index\na.png\tcat\n")
    with pytest.raises(InputFileError, match="not an integer"):
        FolderSource(labelled_folder)


def test_sampler_is_deterministic_and_shards_cover_everything_once():
    np.testing.assert_array_equal(epoch_order(10, seed=3, epoch=1), epoch_order(10, seed=3, epoch=1))
    assert not np.array_equal(epoch_order(10, seed=3, epoch=1), epoch_order(10, seed=3, epoch=2))
    order = epoch_order(11, seed=0)
    shards = [process_shard(order, i, 3) for i in range(3)]
    assert sorted(np.concatenate(shards).tolist()) == list(range(11))


def test_batches_carry_indices_and_preprocessed_images(labelled_folder):
    source = FolderSource(labelled_folder)
    batches = list(iterate_batches(source, 1, Preprocessing(16, 16), seed=None))
    assert [b.indices.tolist() for b in batches] == [[0], [1]]
    assert batches[0].images.shape == (1, 16, 16, 3) and batches[0].images.dtype == np.float32
    assert batches[1].ids == ("b.jpg",)


def test_a_tsv_file_selects_a_subset_without_copying(labelled_folder, tmp_path):
    subset = tmp_path / "subset.tsv"
    subset.write_text(f"file\tclass_index\n{labelled_folder / 'b.jpg'}\t7\n")
    source, _ = open_source(str(subset), num_classes=10)
    assert len(source) == 1 and int(source[0]["label"]) == 7 and source[0]["image"].shape == (40, 30, 3)
