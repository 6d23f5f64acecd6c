"""Top-1 / top-5 accuracy of a teacher on any ``--data`` source."""

from __future__ import annotations

import math

import numpy as np
from tqdm import tqdm

from jaxplain.data import open_source
from jaxplain.data.loader import iterate_batches
from jaxplain.model import Model
from jaxplain.runner import predict
from jaxplain.validation import check_labels


def accuracy(model: Model, data: str, *, limit: int | None = None, batch_size: int = 64,
             data_dir=None, raw_data=None) -> dict:
    """Returns ``{"top1", "top5", "n"}`` for ``model`` on the first ``limit`` items of ``data``."""
    source, _ = open_source(data, num_classes=model.num_classes, data_dir=data_dir, raw_data=raw_data)
    n = len(source) if limit is None else min(limit, len(source))
    top1 = top5 = 0
    batches = iterate_batches(source, batch_size, model.preprocessing, indices=np.arange(n))
    for batch in tqdm(batches, total=math.ceil(n / batch_size), desc="accuracy", unit="batch"):
        labels = check_labels(batch.labels, model.num_classes, len(batch.labels), name=f"labels of {data}")
        ranked = np.argsort(-predict(model, batch.images, batch_size=batch_size), axis=-1)[:, :5]
        top1 += int((ranked[:, 0] == labels).sum())
        top5 += int((ranked == labels[:, None]).any(axis=-1).sum())
    return {"top1": top1 / max(n, 1), "top5": top5 / max(n, 1), "n": n}
