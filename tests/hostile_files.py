"""A generator of hostile checkpoints (crafted torch archives), shared by the tests.

``HOSTILE`` maps a case name to (a function writing the file's bytes, a pattern the
``CheckpointError`` message must match). ``write_archive`` lays out any pickle and records as
``torch.save`` does, with whatever shapes, strides and sizes a test wants to declare.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch

from mazewb.policy import ImpalaPolicy

ROOT = Path(__file__).resolve().parents[1]
KEY = "embedder.block1.conv.weight"


# ------------------------------------------------------------------ a torch archive writer
class FakeStorage:
    """A storage record as the pickle declares it (any size, true or not)."""

    def __init__(self, key: str, numel: int, storage_type: str = "FloatStorage") -> None:
        self.key, self.numel, self.storage_type = key, numel, storage_type


class FakeTensor:
    """Pickles exactly like a torch tensor, with whatever shape, stride and storage we declare."""

    def __init__(self, storage: FakeStorage, shape: tuple[int, ...], stride: tuple[int, ...], offset: int = 0):
        self.storage, self.shape, self.stride, self.offset = storage, shape, stride, offset

    def __reduce__(self):  # noqa: ANN204
        args = (self.storage, self.offset, self.shape, self.stride, False, collections.OrderedDict())
        return (torch._utils._rebuild_tensor_v2, args)


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj: object) -> object:
        if isinstance(obj, FakeStorage):
            return ("storage", getattr(torch, obj.storage_type), obj.key, "cpu", obj.numel)
        return None


def write_archive(
    root: object, records: dict[str, bytes], deflate: tuple[str, ...] = (), data_pkl: bytes | None = None
) -> bytes:
    """A zip archive laid out as torch.save writes it: ``x/data.pkl``, ``x/byteorder``, ``x/data/KEY``."""
    if data_pkl is None:
        buf = io.BytesIO()
        _Pickler(buf, protocol=2).dump(root)
        data_pkl = buf.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("x/data.pkl", data_pkl)
        z.writestr("x/byteorder", b"little")
        for key, data in records.items():
            method = zipfile.ZIP_DEFLATED if key in deflate else zipfile.ZIP_STORED
            z.writestr(f"x/data/{key}", data, compress_type=method)
    return out.getvalue()


def legit_parts(scale: int = 1) -> tuple[dict[str, FakeTensor], dict[str, bytes]]:
    """A real policy's state dict as fake tensors plus records (each tensor its own storage)."""
    torch.manual_seed(0)
    sd = ImpalaPolicy(scale).state_dict()
    tensors, records = {}, {}
    for i, (name, value) in enumerate(sd.items()):
        key = str(i)
        value = value.contiguous()
        tensors[name] = FakeTensor(FakeStorage(key, value.numel()), tuple(value.shape), value.stride())
        records[key] = value.numpy().tobytes()
    return tensors, records


def mazewb_file(tensors: dict[str, object], records: dict[str, bytes], **kw: object) -> bytes:
    return write_archive({"format": "mazewb-policy-v1", "state_dict": tensors, "card": {}}, records, **kw)


def patch_declared_size(archive: bytes, name: str, size: int) -> bytes:
    """Rewrite the uncompressed size the central directory declares for record ``name``."""
    buf = bytearray(archive)
    at = buf.find(b"PK\x01\x02")
    while at != -1:
        name_len = struct.unpack_from("<H", buf, at + 28)[0]
        if buf[at + 46 : at + 46 + name_len].decode() == name:
            struct.pack_into("<I", buf, at + 24, size)
            return bytes(buf)
        at = buf.find(b"PK\x01\x02", at + 4)
    raise AssertionError(name)


def torch_saved(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def default_sd() -> dict[str, torch.Tensor]:
    return torch.load(ROOT / "checkpoints" / "default.pt", weights_only=True)["state_dict"]


# ------------------------------------------------------------------ the hostile cases
def _stride0_right_shape() -> bytes:
    sd = default_sd()
    sd[KEY] = torch.zeros(1).expand(sd[KEY].shape)
    return torch_saved({"format": "mazewb-policy-v1", "state_dict": sd, "card": {}})


def _stride0_scale60() -> bytes:
    # Every tensor a stride-0 view of one float, shaped as a scale-60 network: the 12 KB file of the issue.
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in ImpalaPolicy(60).state_dict().items()}
    one = torch.zeros(1)
    return torch_saved({"model_state_dict": {k: one.expand(s) for k, s in shapes.items()}})


def _declared_1e12_elements() -> bytes:
    sd = default_sd()
    sd[KEY] = torch.zeros(1).expand(10**12)
    return torch_saved({"format": "mazewb-policy-v1", "state_dict": sd, "card": {}})


def _declared_width_10_9() -> bytes:
    tensors, records = legit_parts()
    tensors[KEY] = FakeTensor(FakeStorage("0", 16 * 10**9 * 27), (16 * 10**9, 3, 3, 3), (27, 9, 3, 1))
    return mazewb_file(tensors, records)


def _storage_declares_1e12() -> bytes:
    tensors, records = legit_parts()
    t = tensors[KEY]
    tensors[KEY] = FakeTensor(FakeStorage("0", 10**12), t.shape, t.stride)
    return mazewb_file(tensors, records)


def _record_shorter_than_declared() -> bytes:
    tensors, records = legit_parts()
    records["0"] = records["0"][:100]
    return mazewb_file(tensors, records)


def _reaches_past_storage() -> bytes:
    tensors, records = legit_parts()
    t = tensors[KEY]
    tensors[KEY] = FakeTensor(t.storage, t.shape, t.stride, offset=10)
    return mazewb_file(tensors, records)


def _big_storage_small_view() -> bytes:
    tensors, records = legit_parts()
    t = tensors[KEY]
    n = 8 * 2**20  # a 32 MB storage behind a 432-element tensor
    tensors[KEY] = FakeTensor(FakeStorage("0", n), t.shape, t.stride)
    records["0"] = bytes(4 * n)
    return mazewb_file(tensors, records)


def _zip_bomb_record() -> bytes:
    # A deflated record of 64 MiB of zeros (about 64 KB in the file) behind one small tensor.
    tensors, records = legit_parts()
    t = tensors[KEY]
    n = 16 * 2**20
    tensors[KEY] = FakeTensor(FakeStorage("0", n), t.shape, t.stride)
    records["0"] = bytes(4 * n)
    return mazewb_file(tensors, records, deflate=("0",))


def _zip_bomb_declared() -> bytes:
    # A tiny deflated record whose central directory claims 4 GB: refused before reading it.
    tensors, records = legit_parts()
    archive = mazewb_file(tensors, records, deflate=("1",))
    return patch_declared_size(archive, "x/data/1", 2**32 - 1)


def _zip_lies_small() -> bytes:
    # The record expands to more than it declares: only the declared bytes are ever read.
    tensors, records = legit_parts()
    archive = mazewb_file(tensors, records, deflate=("0",))
    return patch_declared_size(archive, "x/data/0", 16)


def _sparse() -> bytes:
    sd = default_sd()
    sd[KEY] = sd[KEY].to_sparse()
    return torch_saved({"model_state_dict": sd})


def _quantized() -> bytes:
    sd = default_sd()
    with warnings.catch_warnings():  # quantized tensors are deprecated: exactly why files may hold old ones
        warnings.simplefilter("ignore")
        sd[KEY] = torch.quantize_per_tensor(sd[KEY], 0.1, 0, torch.qint8)
    return torch_saved({"model_state_dict": sd})


def _wrong_shape() -> bytes:
    sd = default_sd()
    sd["embedder.fc.weight"] = torch.zeros(256, 100)
    return torch_saved({"model_state_dict": sd})


def _missing_key() -> bytes:
    sd = default_sd()
    del sd["fc_value.bias"]
    return torch_saved(sd)


def _extra_key() -> bytes:
    sd = default_sd()
    sd["embedder.block4.conv.weight"] = torch.zeros(3)
    return torch_saved({"model_state_dict": sd})


def _int_weights() -> bytes:
    sd = default_sd()
    sd[KEY] = sd[KEY].to(torch.int32)
    return torch_saved({"model_state_dict": sd})


def _overlapping_strides() -> bytes:
    tensors, records = legit_parts()
    t = tensors[KEY]
    tensors[KEY] = FakeTensor(t.storage, t.shape, (1, 1, 1, 1))
    return mazewb_file(tensors, records)


def _nan_weights() -> bytes:
    sd = default_sd()
    sd["fc_policy.bias"] = torch.full((15,), float("nan"))
    return torch_saved({"model_state_dict": sd})


def _inf_weights() -> bytes:
    sd = default_sd()
    sd["embedder.fc.bias"][3] = float("inf")
    return torch_saved({"model_state_dict": sd})


class _Runs:
    """Unpickling this calls ``func(*args)``: the classic code-running pickle."""

    def __init__(self, func: Callable, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self):  # noqa: ANN204
        return (self.func, self.args)


MARKER = "mazewb_hostile_marker"


def _pickle_os_system() -> bytes:
    return torch_saved({"model_state_dict": {KEY: _Runs(os.system, f"touch {MARKER}")}})


def _pickle_eval() -> bytes:
    return torch_saved({"format": "mazewb-policy-v1", "state_dict": {}, "card": _Runs(eval, "1")})


def _pickle_open_in_plain_pickle() -> bytes:
    return pickle.dumps({"model_state_dict": {KEY: _Runs(open, MARKER, "w")}})


def _pickle_exec_as_rebuild() -> bytes:
    tensors, records = legit_parts()
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump({"model_state_dict": tensors})
    # In place of the tensor rebuild function, exec: a well-formed archive that would run code.
    data_pkl = buf.getvalue().replace(b"ctorch._utils\n_rebuild_tensor_v2\n", b"cbuiltins\nexec\n")
    assert b"exec" in data_pkl
    return write_archive(None, records, data_pkl=data_pkl)


def _random_bytes() -> bytes:
    return bytes(range(256)) * 40


def _legacy_format() -> bytes:
    buf = io.BytesIO()
    torch.save({"model_state_dict": default_sd()}, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def _zip_without_pickle() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("notes.txt", "hello")
    return out.getvalue()


def _corrupt_pickle() -> bytes:
    return write_archive(None, {}, data_pkl=b"\x80\x02}q\x00(X\x01\x00\x00\x00a")


def _card_with_tensor() -> bytes:
    sd = default_sd()
    return torch_saved({"format": "mazewb-policy-v1", "state_dict": sd, "card": {"w": torch.zeros(3)}})


def _card_contradicts() -> bytes:
    sd = default_sd()
    return torch_saved({"format": "mazewb-policy-v1", "state_dict": sd, "card": {"scale": 4}})


def _billion_laughs_card() -> bytes:
    # Each list holds the one before it twice: 80 bytes of pickle, a tree of 2**40 values.
    laugh: list = ["ha"]
    for _ in range(40):
        laugh = [laugh, laugh]
    return torch_saved({"format": "mazewb-policy-v1", "state_dict": default_sd(), "card": {"laughs": laugh}})


def _huge_int_card() -> bytes:
    # An integer Python will not even print (its message would fail while being written).
    return torch_saved({"format": "mazewb-policy-v1", "state_dict": default_sd(), "card": {"scale": 10**5000}})


def _deep_card() -> bytes:
    deep: list = []
    for _ in range(200):  # deeper than any checkpoint needs; torch.save itself recurses
        deep = [deep]
    return torch_saved({"format": "mazewb-policy-v1", "state_dict": default_sd(), "card": {"deep": deep}})


HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "stride0-right-shape": (_stride0_right_shape, "stride-0"),
    "stride0-scale60": (_stride0_scale60, "scale-60 network"),
    "declared-1e12-elements": (_declared_1e12_elements, r"has shape \(1000000000000,\); expected \(16 x scale"),
    "declared-width-1e9": (_declared_width_10_9, "mazewb loads scales 1 to 8"),
    "storage-declares-1e12": (_storage_declares_1e12, "declares 1,000,000,000,000 elements"),
    "record-shorter": (_record_shorter_than_declared, "holds 100 bytes; the pickle declares 1,728"),
    "past-storage-end": (_reaches_past_storage, "past the end of its storage"),
    "big-storage-small-view": (_big_storage_small_view, "declares 8,388,608 elements for tensors that use 432"),
    "zip-bomb-record": (_zip_bomb_record, "declares 16,777,216 elements"),
    "zip-bomb-declared": (_zip_bomb_declared, "zip bomb"),
    "zip-lies-small": (_zip_lies_small, "holds 16 bytes"),
    "sparse": (_sparse, "refused: the file contains a sparse tensor"),
    "quantized": (_quantized, "refused: the file contains a quantized tensor"),
    "wrong-shape": (_wrong_shape, r"wrong shape for embedder.fc.weight: checkpoint has \(256, 100\)"),
    "missing-key": (_missing_key, r"missing keys \['fc_value.bias'\]"),
    "extra-key": (_extra_key, r"unknown keys \['embedder.block4.conv.weight'\]"),
    "int-weights": (_int_weights, "dtype torch.int32, expected floating point"),
    "overlapping-strides": (_overlapping_strides, "overlap or leave gaps"),
    "nan-weights": (_nan_weights, "fc_policy.bias contains NaN"),
    "inf-weights": (_inf_weights, "embedder.fc.bias contains NaN or infinite"),
    "pickle-os-system": (_pickle_os_system, r"could run code \((posix|nt).system\)"),
    "pickle-eval": (_pickle_eval, r"could run code \((builtins|__builtin__).eval\)"),
    "pickle-open-plain": (_pickle_open_in_plain_pickle, "not a PyTorch checkpoint"),
    "pickle-exec-rebuild": (_pickle_exec_as_rebuild, r"could run code \(builtins.exec"),
    "random-bytes": (_random_bytes, r"not a PyTorch checkpoint \(not a zip archive\)"),
    "legacy-format": (_legacy_format, "pre-1.6 format"),
    "zip-without-pickle": (_zip_without_pickle, "not a PyTorch checkpoint"),
    "corrupt-pickle": (_corrupt_pickle, "data.pkl is corrupt"),
    "card-with-tensor": (_card_with_tensor, "the model card holds a tensor"),
    "card-contradicts": (_card_contradicts, "card says scale 4, weights have scale 1"),
    "billion-laughs-card": (_billion_laughs_card, "holds more than 100,000 values"),
    "huge-int-card": (_huge_int_card, "an integer of 16,610 bits"),
    "deep-card": (_deep_card, "nested more than 64 levels deep"),
}


def hostile_checkpoint(case: str) -> bytes:
    """The bytes of hostile case ``case``."""
    return HOSTILE[case][0]()
