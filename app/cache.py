"""A small in-process cache of finished responses, bounded in bytes (least recently used out).

For GET /v1/shapes/{seed}.{fmt}: its bytes depend only on the bundle and the URL, and web pages
request the same URLs again and again. Hand-written because it is twenty lines: the libraries
(cachetools and the like) bound entry counts, not the bytes a response body holds."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Cached:
    body: bytes
    media_type: str
    headers: dict[str, str]


class ByteLRU:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = self.misses = 0
        self._items: OrderedDict[str, Cached] = OrderedDict()

    def get(self, key: str) -> Cached | None:
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item

    def put(self, key: str, item: Cached) -> None:
        size = len(item.body)
        if size > self.max_bytes or key in self._items:
            return  # larger than the whole cache (or 0 bytes allowed): not kept
        self._items[key] = item
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.bytes -= len(old.body)

    def __len__(self) -> int:
        return len(self._items)
