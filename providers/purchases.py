"""Bookkeeping that lets a lost purchase answer be recovered without buying twice.

PurchaseTPMResource has no idempotency token. After an ambiguous failure the provider lists the
model's instances and looks for the one it bought. Within one provider host, other creates of the
same model run at the same time (4 workers); their fresh instances must not be mistaken for ours.
So every instance this process bought or adopted is *claimed*, and a recovery waits until no other
purchase of that model is in flight (and holds new ones back) before it lists. Happy-path
purchases never wait for each other.
"""
from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager
from typing import Callable, Iterator

from .deadline import Deadline
from .errors import ProviderError


class PurchaseLedger:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._in_flight: Counter[str] = Counter()
        self._recovering: set[str] = set()
        self._claimed: set[str] = set()

    def _wait(self, ready: Callable[[], bool], deadline: Deadline, what: str) -> None:
        if not self._cond.wait_for(ready, timeout=deadline.remaining()):
            raise ProviderError(f"timed out waiting for {what}; raise qianfan:timeoutSeconds")

    @contextmanager
    def purchasing(self, model: str, deadline: Deadline) -> Iterator[None]:
        """Mark one purchase request of `model` as in flight (held back while a recovery lists)."""
        with self._cond:
            self._wait(lambda: model not in self._recovering, deadline, f"a purchase recovery for {model}")
            self._in_flight[model] += 1
        try:
            yield
        finally:
            with self._cond:
                self._in_flight[model] -= 1
                self._cond.notify_all()

    @contextmanager
    def recovering(self, model: str, deadline: Deadline) -> Iterator[frozenset[str]]:
        """Exclusive window to list `model`'s instances; yields the ids already claimed."""
        with self._cond:
            self._wait(lambda: model not in self._recovering, deadline, f"another purchase recovery for {model}")
            self._recovering.add(model)
            try:
                self._wait(lambda: self._in_flight[model] == 0, deadline, f"other purchases of {model} to finish")
            except ProviderError:
                self._recovering.discard(model)
                self._cond.notify_all()
                raise
            claimed = frozenset(self._claimed)
        try:
            yield claimed
        finally:
            with self._cond:
                self._recovering.discard(model)
                self._cond.notify_all()

    def claim(self, instance_id: str) -> None:
        with self._cond:
            self._claimed.add(instance_id)
