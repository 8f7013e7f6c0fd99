"""Identity of a policy's weights, and a cache of result tables keyed by what produced them.

Tables are cached in memory (per process, the ``MAX_TABLES`` most recently used) and, when a
directory is given, on disk as CSV (plain text: nothing is unpickled when reading back). A key is
the SHA-256 of the JSON of its parts (weights identity, function, seeds, settings), so a change
to any of them is a different entry.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Hashable
from pathlib import Path
from typing import Any, Generic, TypeVar

import pandas as pd
import torch

from mazewb.policy import ImpalaPolicy

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_TABLES = 512
"""Result tables kept in memory (a batch of 32 seeds is a table of some 10-20 KB)."""


class LRU(Generic[K, V]):
    """A thread-safe map that keeps its ``max_entries`` most recently used entries (reading an
    entry or storing it makes it the most recent; the least recent is dropped beyond the bound)."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be positive, got {max_entries}")
        self.max_entries = max_entries
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value under ``key`` (now the most recent), or None."""
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._data


_TABLES: LRU[str, pd.DataFrame] = LRU(MAX_TABLES)


def policy_identity(policy: ImpalaPolicy) -> str:
    """A short hex digest of the policy's weights (names, shapes and float32 values): equal for
    equal weights, whatever file or device they came from."""
    digest = hashlib.sha256()
    for name, tensor in sorted(policy.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def cache_key(*parts: Any) -> str:
    """SHA-256 hex of the JSON of ``parts`` (anything JSON can write, tuples as lists)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def cached_table(key: str, cache_dir: str | Path | None) -> pd.DataFrame | None:
    """The table stored under ``key`` in memory or in ``cache_dir``, or None."""
    table = _TABLES.get(key)
    if table is not None:
        return table.copy()
    if cache_dir is not None:
        path = Path(cache_dir) / f"{key}.csv"
        if path.is_file():
            table = pd.read_csv(path, float_precision="round_trip")
            _TABLES.put(key, table)
            return table.copy()
    return None


def store_table(key: str, table: pd.DataFrame, cache_dir: str | Path | None) -> None:
    """Keep ``table`` under ``key`` in memory and, with ``cache_dir``, on disk (atomically)."""
    _TABLES.put(key, table.copy())
    if cache_dir is not None:
        folder = Path(cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{key}.csv.tmp"
        table.to_csv(tmp, index=False)
        tmp.replace(folder / f"{key}.csv")


def clear_memory_cache() -> None:
    _TABLES.clear()
