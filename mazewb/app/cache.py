"""A bounded, thread-safe result cache in which concurrent requests for one key compute once.

Keys are hashable values built from what a result depends on: the checkpoint's content hash,
the ``Maze`` (a frozen, hashable value) and the intervention spec. Every entry has a size in
bytes (estimated); the least recently used entries are dropped when the total passes
``max_bytes``. When several callbacks (or several users) ask for the same missing key at
once, the first computes it and the others wait for its result ("single flight").
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def size_of(value: Any) -> int:
    """A rough size in bytes: exact for numpy arrays and bytes, an estimate otherwise."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes) + 128
    if isinstance(value, (bytes, bytearray, str)):
        return len(value) + 64
    if isinstance(value, (list, tuple)):
        return 64 + sum(size_of(v) for v in value)
    if isinstance(value, dict):
        return 64 + sum(size_of(k) + size_of(v) for k, v in value.items())
    if hasattr(value, "__dataclass_fields__"):
        return 64 + sum(size_of(getattr(value, f)) for f in value.__dataclass_fields__)
    try:
        import torch

        if isinstance(value, torch.Tensor):
            return value.element_size() * value.nelement() + 128
    except ImportError:  # pragma: no cover
        pass
    return sys.getsizeof(value)


class ResultCache:
    """LRU cache bounded by total bytes, with single-flight computation per key."""

    def __init__(self, max_bytes: int = 256 * 2**20, max_entries: int = 4096) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._data: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._pending: dict[Hashable, threading.Event] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached value for ``key``, computing it with ``compute()`` if absent.

        Exceptions from ``compute`` are not cached; waiting callers then compute themselves.
        """
        while True:
            with self._lock:
                if key in self._data:
                    self._data.move_to_end(key)
                    self.hits += 1
                    return self._data[key][0]
                event = self._pending.get(key)
                if event is None:
                    event = threading.Event()
                    self._pending[key] = event
                    self.misses += 1
                    break
            event.wait()
        try:
            value = compute()
        except BaseException:
            with self._lock:
                self._pending.pop(key, None)
            event.set()
            raise
        self.put(key, value)
        with self._lock:
            self._pending.pop(key, None)
        event.set()
        return value

    def put(self, key: Hashable, value: Any) -> None:
        nbytes = size_of(value)
        with self._lock:
            if key in self._data:
                self._bytes -= self._data.pop(key)[1]
            if nbytes > self.max_bytes:
                return  # too big to keep; the caller still gets it
            self._data[key] = (value, nbytes)
            self._bytes += nbytes
            while self._data and (self._bytes > self.max_bytes or len(self._data) > self.max_entries):
                _, (_, dropped) = self._data.popitem(last=False)
                self._bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0
