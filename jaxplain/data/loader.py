"""One batching layer for training, evaluation and explanation jobs: an index sampler over a data source.

A *data source* is anything with ``len()`` and ``source[i] -> {"image": uint8[H, W, 3], "label": int}``
(or ``{"audio": int16[samples], ...}`` for audio)
(a :class:`~jaxplain.data.folder.FolderSource` or a TFDS ``data_source``). The sampler decides which
indices each process reads, in which order (a seeded permutation per epoch, identical on every host),
and decodes items on a thread pool. Batches carry the dataset indices of their items, so a job can
record what it finished and resume exactly where it stopped.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from typing import Iterator, Protocol, Sequence

import numpy as np

from jaxplain.model import Preprocessing


class DataSource(Protocol):
    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict: ...


@dataclasses.dataclass(frozen=True)
class Batch:
    images: np.ndarray  # float32 [B, H, W, 3] in [0, 1], or uint8 when raw
    labels: np.ndarray  # int32 [B]
    indices: np.ndarray  # int64 [B], positions in the data source
    ids: tuple[str, ...]
    cells: np.ndarray | None = None  # int32 [B]: grid cell of each item, -1 for an ordinary image


def epoch_order(length: int, *, seed: int | None, epoch: int = 0) -> np.ndarray:
    """All indices of one epoch: ``arange`` without a seed, else a permutation fixed by ``(seed, epoch)``."""
    if seed is None:
        return np.arange(length)
    return np.random.default_rng([seed, epoch]).permutation(length)


def process_shard(indices: np.ndarray, process_index: int, process_count: int) -> np.ndarray:
    """The contiguous share of ``indices`` read by one host (sizes differ by at most one)."""
    return np.array_split(indices, process_count)[process_index]


def _item_id(record: dict, index: int) -> str:
    value = record.get("id", record.get("file_name", index))
    return value.decode() if isinstance(value, bytes) else str(value)


def read_item(source: DataSource, index: int, preprocessing: Preprocessing | None):
    """One record as ``(image, label, id, cell)``; the image is preprocessed unless ``preprocessing`` is None.

    ``cell`` is the record's grid cell (``jaxplain data grids``) or -1."""
    record = source[int(index)]
    raw = np.asarray(record["image"] if "image" in record else record["audio"])
    if "image" in record and (raw.ndim == 2 or raw.shape[-1] == 1):
        raw = np.repeat(raw.reshape(*raw.shape[:2], 1), 3, axis=-1)
    item = raw if preprocessing is None else preprocessing(raw)
    return item, int(record["label"]), _item_id(record, int(index)), int(record.get("cell", -1))


def collate(items: Sequence[tuple], indices: Sequence[int]) -> Batch:
    images, labels, ids, cells = zip(*items)
    cells = np.asarray(cells, np.int32)
    return Batch(np.stack(images), np.asarray(labels, np.int32), np.asarray(indices, np.int64), tuple(ids), cells)


def load_items(source: DataSource, indices: Sequence[int], preprocessing: Preprocessing | None) -> Batch:
    """Reads and preprocesses the given items into one batch (``preprocessing=None`` keeps raw uint8)."""
    return collate([read_item(source, i, preprocessing) for i in indices], indices)


def iterate_batches(
    source: DataSource,
    batch_size: int,
    preprocessing: Preprocessing | None,
    *,
    indices: np.ndarray | None = None,
    seed: int | None = None,
    epoch: int = 0,
    process_index: int = 0,
    process_count: int = 1,
    drop_remainder: bool = False,
    num_threads: int = 8,
) -> Iterator[Batch]:
    """Yields batches over ``indices`` (default: one epoch of the whole source, shuffled if ``seed``).

    Items are decoded on a thread pool, one batch ahead of the consumer.
    """
    if indices is None:
        indices = epoch_order(len(source), seed=seed, epoch=epoch)
    indices = process_shard(np.asarray(indices), process_index, process_count)
    stop = len(indices) - len(indices) % batch_size if drop_remainder else len(indices)
    chunks = [indices[start:min(start + batch_size, stop)] for start in range(0, stop, batch_size)]
    with concurrent.futures.ThreadPoolExecutor(num_threads) as pool:
        submit = lambda chunk: [pool.submit(read_item, source, i, preprocessing) for i in chunk]
        pending = submit(chunks[0]) if chunks else None
        for n, chunk in enumerate(chunks):
            following = submit(chunks[n + 1]) if n + 1 < len(chunks) else None
            yield collate([f.result() for f in pending], chunk)
            pending = following


def load_arrays(source: DataSource, indices=None, preprocessing: Preprocessing | None = None,
                *, batch_size: int = 1024, num_threads: int = 16, description: str = "loading") -> Batch:
    """Reads a whole (small) dataset into memory as one :class:`Batch`, with a progress bar."""
    from tqdm import tqdm

    indices = np.arange(len(source)) if indices is None else np.asarray(indices)
    parts = list(tqdm(iterate_batches(source, batch_size, preprocessing, indices=indices, num_threads=num_threads),
                      total=-(-len(indices) // batch_size), desc=description, unit="batch", leave=False))
    return Batch(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]),
                 np.concatenate([p.indices for p in parts]), tuple(i for p in parts for i in p.ids),
                 np.concatenate([p.cells for p in parts]))
