"""Identity of a policy's weights, and a cache of result tables keyed by what produced them.

Tables are cached in memory (per process) and, when a directory is given, on disk as CSV (plain
text: nothing is unpickled when reading back). A key is the SHA-256 of the JSON of its parts
(weights identity, function, seeds, settings), so a change to any of them is a different entry.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from mazewb.policy import ImpalaPolicy

_TABLES: dict[str, pd.DataFrame] = {}
_LOCK = threading.Lock()


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
    with _LOCK:
        if key in _TABLES:
            return _TABLES[key].copy()
    if cache_dir is not None:
        path = Path(cache_dir) / f"{key}.csv"
        if path.is_file():
            table = pd.read_csv(path, float_precision="round_trip")
            with _LOCK:
                _TABLES[key] = table
            return table.copy()
    return None


def store_table(key: str, table: pd.DataFrame, cache_dir: str | Path | None) -> None:
    """Keep ``table`` under ``key`` in memory and, with ``cache_dir``, on disk (atomically)."""
    with _LOCK:
        _TABLES[key] = table.copy()
    if cache_dir is not None:
        folder = Path(cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{key}.csv.tmp"
        table.to_csv(tmp, index=False)
        tmp.replace(folder / f"{key}.csv")


def clear_memory_cache() -> None:
    with _LOCK:
        _TABLES.clear()
