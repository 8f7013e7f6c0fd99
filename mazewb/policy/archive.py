"""Reading ``torch.save`` archives as data, checking everything before any tensor is allocated.

A torch checkpoint is a zip archive: ``<name>/data.pkl`` (a pickle describing the objects) and
one record ``<name>/data/<key>`` of raw bytes per tensor storage. ``torch.load`` trusts the
pickle's declared shapes, strides and sizes, so a few kilobytes can make it allocate gigabytes
(stride-0 views, huge declared widths, deflated records that expand whole). Here the pickle is
read by an unpickler that knows a short list of names (``OrderedDict``, the tensor rebuild
functions, storage and dtype names) and turns every tensor into a ``TensorSpec``: its storage
key, dtype, shape, stride and offset, nothing allocated. Any other global is refused, so no
pickled code can run. The caller checks the specs (against the network it expects) and only
then reads the few storage records it needs with :meth:`CheckpointArchive.tensor`, each bounded
by the size the record declares.

Every problem raises ``CheckpointError`` naming it.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import IO, Any

import torch
from torch import Tensor

from mazewb.errors import CheckpointError

MAX_RECORDS = 4096
"""Most records an archive may hold (a state dict with optimizer state has a few hundred)."""
MAX_PICKLE_BYTES = 8 * 2**20
"""Largest ``data.pkl``: it only describes tensors and plain metadata (mazewb's is ~10 KB)."""
MAX_ARCHIVE_BYTES = 1 * 2**30
"""Largest total uncompressed size the archive may declare (a zip bomb declares more)."""
MAX_VALUES = 100_000
"""Most values the unpickled object may hold, counting a shared value once per use: a pickle can
refer to one list many times over, so a few bytes can describe a tree of billions of values
("billion laughs") that any walk over it would take hours to visit."""
MAX_DEPTH = 64
"""Deepest nesting of containers in the unpickled object."""
MAX_INT_BITS = 64
"""Largest integer (in bits, sign aside) in the unpickled object: a pickle can hold an integer of
millions of digits, which Python refuses even to print."""

# pickle.Unpickler loads this magic first in torch's pre-1.6 (non-zip) format.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}
_QUANTIZED_STORAGES = ("QInt8Storage", "QUInt8Storage", "QInt32Storage", "QUInt4x2Storage", "QUInt2x4Storage")
_DTYPE_NAMES = {
    "float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
}  # fmt: skip
_REFUSED_REBUILDS = {
    "_rebuild_sparse_tensor": "a sparse tensor",
    "_rebuild_sparse_csr_tensor": "a sparse tensor",
    "_rebuild_qtensor": "a quantized tensor",
    "_rebuild_nested_tensor": "a nested tensor",
    "_rebuild_wrapper_subclass": "a tensor subclass",
    "_rebuild_meta_tensor_no_storage": "a meta tensor without data",
    "_rebuild_device_tensor_from_numpy": "a tensor pickled through numpy",
    "_rebuild_device_tensor_from_cpu_tensor": "a device tensor",
}


@dataclass(frozen=True)
class StorageSpec:
    """A storage as the pickle declares it: record key, element dtype, element count."""

    key: str
    dtype: torch.dtype
    numel: int


@dataclass(frozen=True)
class TensorSpec:
    """A tensor as the pickle declares it; nothing is allocated for it."""

    storage: StorageSpec
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def dtype(self) -> torch.dtype:
        return self.storage.dtype

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def extent(self) -> int:
        """Elements of the storage this view reaches (offset + last element + 1)."""
        if self.numel == 0:
            return self.offset
        return self.offset + sum((s - 1) * st for s, st in zip(self.shape, self.stride, strict=True)) + 1


class _Marker:
    """A name the unpickler knows, standing in for the torch object (never called by pickle)."""

    def __init__(self, kind: str, value: Any = None) -> None:
        self.kind, self.value = kind, value

    def __reduce__(self) -> Any:  # never pickled back
        raise TypeError("internal marker")


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        raise _Bad(f"tensor {what} must be a tuple of non-negative integers")
    return tuple(value)


class _Bad(Exception):
    """A malformed declaration found while unpickling (becomes a CheckpointError)."""


def _rebuild_tensor_v2(
    storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
    backward_hooks: Any = None, metadata: Any = None,
) -> TensorSpec:  # fmt: skip
    if not isinstance(storage, StorageSpec):
        raise _Bad("a tensor without a storage record")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise _Bad("tensor storage offset must be a non-negative integer")
    shape, strides = _int_tuple(size, "shape"), _int_tuple(stride, "stride")
    if len(shape) != len(strides):
        raise _Bad(f"tensor shape {shape} and stride {strides} differ in length")
    if backward_hooks:
        raise _Bad("tensor carries backward hooks")
    if metadata:
        raise _Bad("tensor carries extra metadata")
    return TensorSpec(storage, offset, shape, strides)


def _rebuild_tensor_v3(
    storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any, backward_hooks: Any,
    dtype: Any, metadata: Any = None,
) -> TensorSpec:  # fmt: skip
    if not (isinstance(dtype, _Marker) and dtype.kind == "dtype" and isinstance(storage, StorageSpec)):
        raise _Bad("a tensor with an unknown dtype")
    storage = StorageSpec(storage.key, dtype.value, storage.numel * storage.dtype.itemsize // dtype.value.itemsize)
    return _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks, metadata)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None, state: Any = None) -> Any:
    if not isinstance(data, TensorSpec):
        raise _Bad("a parameter without tensor data")
    if backward_hooks or state:
        raise _Bad("parameter carries hooks or extra state")
    return data


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> Any:
    # torch uses this for Tensor and Parameter objects with extra attributes.
    if func not in (_rebuild_tensor_v2, _rebuild_parameter) or not isinstance(args, tuple):
        raise _Bad("an unsupported tensor reconstruction")
    if not (isinstance(new_type, _Marker) and new_type.kind == "tensor-type"):
        raise _Bad("a tensor subclass")
    if state:
        raise _Bad("tensor carries extra attributes")
    return func(*args)


class _Refused(Exception):
    """A global the archive reader does not know: possibly code."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(what)
        self.what, self.detail = what, detail


class _SpecUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if full == "collections.OrderedDict":
            return OrderedDict
        if module == "torch._utils":
            if name == "_rebuild_tensor_v2":
                return _rebuild_tensor_v2
            if name == "_rebuild_tensor_v3":
                return _rebuild_tensor_v3
            if name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
                return _rebuild_parameter
            if name in _REFUSED_REBUILDS:
                raise _Refused(_REFUSED_REBUILDS[name], full)
        if full == "torch._tensor._rebuild_from_type_v2":
            return _rebuild_from_type_v2
        if full in ("torch.Tensor", "torch.nn.parameter.Parameter"):
            return _Marker("tensor-type")
        if module in ("torch", "torch.storage"):
            if name in _STORAGE_DTYPES:
                return _Marker("storage", _STORAGE_DTYPES[name])
            if name in _QUANTIZED_STORAGES:
                raise _Refused("a quantized tensor", full)
            if name in _DTYPE_NAMES:
                return _Marker("dtype", getattr(torch, name))
        if full in ("torch.Size", "builtins.tuple"):
            return tuple
        if full.startswith(("torch.sparse", "torch._utils._rebuild_sparse")) or name.startswith("sparse"):
            raise _Refused("a sparse tensor", full)
        if name.startswith(("per_tensor", "per_channel", "q")) and module == "torch":
            raise _Refused("a quantized tensor", full)
        raise _Refused("pickled objects other than tensors and plain data, which could run code", full)

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] in ("storage", b"storage")):
            raise _Bad("an unknown persistent reference")
        _, storage_type, key, _location, numel = pid
        if not (isinstance(storage_type, _Marker) and storage_type.kind == "storage"):
            raise _Bad("a storage of unknown type")
        if isinstance(key, bytes):
            key = key.decode("ascii", "replace")
        if not isinstance(key, str) or not key.isalnum():
            raise _Bad("a storage key that is not a plain name")
        if not isinstance(numel, int) or isinstance(numel, bool) or numel < 0:
            raise _Bad("a storage size that is not a non-negative integer")
        return StorageSpec(key, storage_type.value, numel)


class CheckpointArchive:
    """A ``torch.save`` zip archive, opened and described without allocating any tensor.

    ``root`` is the unpickled object with every tensor replaced by a ``TensorSpec``. ``name`` is
    used in messages. ``source`` is the archive (bytes or a binary file open for reading).
    """

    def __init__(self, source: bytes | IO[bytes], name: str) -> None:
        self.name = name
        stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
        try:
            self._zip = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
            raise CheckpointError(self._not_a_checkpoint(stream)) from None
        infos = self._zip.infolist()
        if len(infos) > MAX_RECORDS:
            raise CheckpointError(f"{name}: the archive has {len(infos):,} records, over the limit of {MAX_RECORDS:,}")
        declared = sum(i.file_size for i in infos)
        if declared > MAX_ARCHIVE_BYTES:
            raise CheckpointError(
                f"{name}: the archive declares {declared:,} bytes uncompressed (from {_compressed_size(infos):,} "
                f"compressed), over the limit of {MAX_ARCHIVE_BYTES:,}: a zip bomb?"
            )
        pickles = [i for i in infos if i.filename.count("/") == 1 and i.filename.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(
                f"{name}: not a PyTorch checkpoint: a zip archive without exactly one '<name>/data.pkl' record"
            )
        self._prefix = pickles[0].filename[: -len("data.pkl")]
        self._records = {i.filename: i for i in infos}
        order = self._records.get(self._prefix + "byteorder")
        if order is not None and self._read(order, 16).strip() != b"little":
            raise CheckpointError(f"{name}: a big-endian checkpoint; mazewb reads little-endian ones only")
        self.root = self._unpickle(pickles[0])
        _check_tree(self.root, name)

    def _not_a_checkpoint(self, stream: IO[bytes]) -> str:
        try:
            stream.seek(0)
            head = stream.read(64)
        except OSError:
            head = b""
        if head.startswith(b"\x80") and _LEGACY_MAGIC.to_bytes(10, "little") in head:
            return (
                f"{self.name}: saved in torch's pre-1.6 format, which mazewb does not read; load it in "
                "an old torch and save it again with a current one"
            )
        return (
            f"{self.name}: not a PyTorch checkpoint (not a zip archive): the file is corrupt, "
            "truncated or of another kind"
        )

    def _read(self, info: zipfile.ZipInfo, limit: int) -> bytes:
        """The record's bytes; at most ``limit`` (checked against the declared size first)."""
        if info.file_size > limit:
            raise CheckpointError(
                f"{self.name}: record {info.filename!r} declares {info.file_size:,} bytes "
                f"({info.compress_size:,} compressed), over the limit of {limit:,}: a zip bomb?"
            )
        try:
            with self._zip.open(info) as f:
                data = f.read(info.file_size + 1)  # zipfile stops at the declared size
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
            raise CheckpointError(
                f"{self.name}: record {info.filename!r} is damaged (corrupt or truncated file): {exc}"
            ) from None
        if len(data) != info.file_size:
            raise CheckpointError(f"{self.name}: record {info.filename!r} is truncated (corrupt file)")
        return data

    def _unpickle(self, info: zipfile.ZipInfo) -> Any:
        data = self._read(info, MAX_PICKLE_BYTES)
        try:
            return _SpecUnpickler(io.BytesIO(data)).load()
        except _Refused as exc:
            raise CheckpointError(f"{self.name}: refused: the file contains {exc.what} ({exc.detail})") from None
        except _Bad as exc:
            raise CheckpointError(f"{self.name}: not a valid checkpoint: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - nothing here runs code; any failure is a damaged pickle
            raise CheckpointError(
                f"{self.name}: the checkpoint's data.pkl is corrupt ({type(exc).__name__})"
            ) from None

    def storage_bytes(self, storage: StorageSpec) -> int:
        """Bytes the storage record holds, as declared by the archive (nothing read)."""
        info = self._records.get(f"{self._prefix}data/{storage.key}")
        if info is None:
            raise CheckpointError(f"{self.name}: storage record {storage.key!r} is missing from the archive")
        return info.file_size

    def tensor(self, spec: TensorSpec) -> Tensor:
        """Read ``spec``'s storage record and return the tensor (a view of it, on the CPU).

        The caller has checked ``spec``: its layout, and that its storage is of a sane size.
        """
        need = spec.storage.numel * spec.dtype.itemsize
        info = self._records.get(f"{self._prefix}data/{spec.storage.key}")
        if info is None:
            raise CheckpointError(f"{self.name}: storage record {spec.storage.key!r} is missing from the archive")
        if info.file_size != need:
            raise CheckpointError(
                f"{self.name}: storage record {spec.storage.key!r} holds {info.file_size:,} bytes; "
                f"the pickle declares {need:,}"
            )
        if spec.extent() > spec.storage.numel:
            raise CheckpointError(f"{self.name}: a tensor reaches past the end of its storage {spec.storage.key!r}")
        raw = bytearray(self._read(info, need))
        flat = torch.frombuffer(raw, dtype=spec.dtype) if need else torch.empty(0, dtype=spec.dtype)
        return flat.as_strided(spec.shape, spec.stride, spec.offset)


    def check_layout(self, specs: dict[str, TensorSpec]) -> int:
        """Check every tensor's layout and storage before anything is read: no stride-0 or
        overlapping views, each storage exactly as large as the tensors using it, and each storage
        record holding the bytes the pickle declares. ``specs`` maps a name (for messages) to a
        spec. Returns the bytes the tensors' storages hold together."""
        users: dict[str, list[TensorSpec]] = {}
        for key, spec in specs.items():
            if any(st == 0 and s > 1 for s, st in zip(spec.shape, spec.stride, strict=True)):
                raise CheckpointError(
                    f"{self.name}: {key} has stride {_short(spec.stride)}: a stride-0 (broadcast) view, refused"
                )
            if not dense_layout(spec.shape, spec.stride):
                raise CheckpointError(
                    f"{self.name}: {key} has strides {_short(spec.stride)} that overlap or leave gaps for shape "
                    f"{_short(spec.shape)}"
                )
            users.setdefault(spec.storage.key, []).append(spec)
        total = 0
        for key, used in users.items():
            storage = used[0].storage
            if any(s.storage != storage for s in used):
                raise CheckpointError(f"{self.name}: storage {key!r} is declared with different types or sizes")
            needed = sum(s.numel for s in used)
            if storage.numel > needed:
                raise CheckpointError(
                    f"{self.name}: storage {key!r} declares {storage.numel:,} elements for tensors that use {needed:,}"
                )
            if max(s.extent() for s in used) > storage.numel:
                raise CheckpointError(f"{self.name}: a tensor reaches past the end of its storage {key!r}")
            held, declared = self.storage_bytes(storage), storage.numel * storage.dtype.itemsize
            if held != declared:
                raise CheckpointError(
                    f"{self.name}: storage record {key!r} holds {held:,} bytes; the pickle declares {declared:,}"
                )
            total += declared
        return total

    def materialise(self, max_bytes: int) -> Any:
        """``root`` with every tensor read from its record, after :meth:`check_layout` on all of
        them and a budget of ``max_bytes`` for their storages together (checked before reading).
        For files of plain data and tensors of any shape (a trainer's saved state)."""
        specs: dict[str, TensorSpec] = {}
        _collect(self.root, "", specs)
        total = self.check_layout(specs)
        if total > max_bytes:
            raise CheckpointError(
                f"{self.name}: its tensors hold {total:,} bytes, over the limit of {max_bytes:,}"
            )
        read: dict[TensorSpec, Tensor] = {}
        for spec in specs.values():
            if spec not in read:
                read[spec] = self.tensor(spec)
        return _replace_specs(self.root, read)


def _check_tree(root: Any, name: str) -> None:
    """Refuse an unpickled object with more than ``MAX_VALUES`` values (shared ones counted per
    use), nesting deeper than ``MAX_DEPTH``, integers over ``MAX_INT_BITS`` bits, or anything
    but plain data (None, bools, numbers, strings, bytes, lists, tuples, dicts) and tensors."""
    stack, count = [(root, 0)], 0
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise CheckpointError(f"{name}: its data is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise CheckpointError(f"{name}: holds an integer of {value.bit_length():,} bits (over {MAX_INT_BITS})")
        if value is None or isinstance(value, (bool, int, float, str, bytes, TensorSpec)):
            continue
        if isinstance(value, dict):
            children = [*value.keys(), *value.values()]
        elif isinstance(value, (list, tuple)):
            children = list(value)
        else:
            kind = (
                f"torch {value.kind}" if isinstance(value, _Marker)
                else "bare storage" if isinstance(value, StorageSpec)
                else type(value).__name__
            )  # fmt: skip
            raise CheckpointError(f"{name}: holds a {kind}; expected tensors and plain data only")
        count += len(children)
        if count > MAX_VALUES:
            raise CheckpointError(
                f"{name}: its data holds more than {MAX_VALUES:,} values (shared values counted each time "
                "they are used): refused"
            )
        stack.extend((child, depth + 1) for child in children)


def _collect(value: Any, path: str, out: dict[str, TensorSpec]) -> None:
    """Every ``TensorSpec`` in ``value`` by its path (``optimizer.state.0.exp_avg``); the tree has
    passed ``_check_tree``, so this recursion is bounded."""
    if isinstance(value, TensorSpec):
        out[path or "the tensor"] = value
    elif isinstance(value, dict):
        for key, item in value.items():
            _collect(item, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _collect(item, f"{path}.{i}" if path else str(i), out)


def _replace_specs(value: Any, read: dict[TensorSpec, Tensor]) -> Any:
    if isinstance(value, TensorSpec):
        return read[value]
    if isinstance(value, dict):
        return type(value)((k, _replace_specs(v, read)) for k, v in value.items())
    if isinstance(value, list):
        return [_replace_specs(v, read) for v in value]
    if isinstance(value, tuple):
        return tuple(_replace_specs(v, read) for v in value)
    return value


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (a declared shape can be long)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _compressed_size(infos: list[zipfile.ZipInfo]) -> int:
    """Total compressed size of the records."""
    return sum(i.compress_size for i in infos)


def is_float(dtype: torch.dtype) -> bool:
    return dtype in _FLOAT_DTYPES


def dense_layout(shape: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    """True when the strides lay the elements out densely without overlap (any dimension order,
    e.g. contiguous or channels-last), so the tensor uses exactly ``numel`` storage elements."""
    dims = sorted((st, s) for s, st in zip(shape, stride, strict=True) if s != 1)
    expected = 1
    for st, s in dims:
        if st != expected:
            return False
        expected *= s
    return True
