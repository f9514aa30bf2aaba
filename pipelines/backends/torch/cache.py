"""A thread-safe LRU cache of loaded models with a memory budget.

Entries are weighed by the bytes of their parameters and buffers; when the total
passes the budget the least recently used entries are dropped (the entry just
added always stays, even alone over the budget). Restorers already handed out
keep their model alive, so eviction never breaks a running request.

Two threads asking for the same key load it once: the first loads outside the
lock (other keys are not blocked meanwhile), the second waits for its result.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

from pipelines.errors import InvalidOptionError

CACHE_ENV = "RESTORATION_MODEL_CACHE_MB"
DEFAULT_BUDGET_MB = 4096

T = TypeVar("T")


def budget_from_env() -> int:
    """The cache budget in bytes: ``$RESTORATION_MODEL_CACHE_MB`` (default 4096 MB)."""
    raw = os.environ.get(CACHE_ENV, "").strip()
    if not raw:
        return DEFAULT_BUDGET_MB * 1024**2
    try:
        megabytes = float(raw)
    except ValueError:
        megabytes = -1.0
    if megabytes < 0:
        raise InvalidOptionError(f"{CACHE_ENV} must be a number of megabytes, not {raw!r}.")
    return int(megabytes * 1024**2)


class ModelCache(Generic[T]):
    """LRU of values keyed by anything hashable, weighed in bytes against ``budget``."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[T, int]] = OrderedDict()
        self._loading: dict[Hashable, Future[T]] = {}
        self.loads = 0
        """How many times a loader ran (a cache miss): for diagnostics and tests."""

    def get(self, key: Hashable, load: Callable[[], T], weigh: Callable[[T], int]) -> T:
        """The cached value for ``key``, loading it with ``load`` on a miss."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key][0]
            pending = self._loading.get(key)
            if pending is None:
                mine: Future[T] = Future()
                self._loading[key] = mine
                self.loads += 1
        if pending is not None:
            return pending.result()
        return self._load(key, load, weigh, mine)

    def _load(
        self, key: Hashable, load: Callable[[], T], weigh: Callable[[T], int], mine: Future[T]
    ) -> T:
        try:
            value = load()
            size = weigh(value)
        except BaseException as error:
            with self._lock:
                del self._loading[key]
            mine.set_exception(error)
            raise
        with self._lock:
            self._entries[key] = (value, size)
            del self._loading[key]
            self._evict(keep=key)
        mine.set_result(value)
        return value

    def _evict(self, keep: Hashable) -> None:
        """Drop least recently used entries until under budget (caller holds the lock)."""
        while self.total_bytes() > self.budget:
            oldest = next(iter(self._entries))
            if oldest == keep:
                return
            del self._entries[oldest]

    def total_bytes(self) -> int:
        return sum(size for _, size in self._entries.values())

    def keys(self) -> list[Hashable]:
        """Cached keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
