"""Bookkeeping that lets a lost purchase answer be recovered without buying twice.

PurchaseTPMResource has no idempotency token. After an uncertain failure (timeout, dropped
connection, 5xx) the provider lists the model's instances and looks for the one it bought. In one
provider host, other creates of the same model run at the same time (4 workers), so:

- every instance this process bought or adopted is *claimed* and never taken by a recovery;
- a recovery lists only when no purchase of that model is in flight (and holds new ones back),
  so an instance whose answer is still on its way is never mistaken for a lost one;
- purchases that failed uncertainly and are not yet resolved are *pending*, by spec. Quotas of
  the same spec (model, units, release time) are interchangeable, so when k pending purchases of
  one spec find up to k new matching instances, each takes one; more new instances than pending
  purchases are unexplained, and the recovery refuses to guess.

Happy-path purchases never wait for each other.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .deadline import Deadline
from .errors import ProviderError


@dataclass(frozen=True)
class Spec:
    """What a purchase asked for; instances of one spec are interchangeable."""

    model: str
    units: int
    release_time: str | None


@dataclass(frozen=True)
class Window:
    """What a recovery may rely on while it holds its model's recovery window."""

    claimed: frozenset[str]
    #: Unresolved uncertain purchases of the same spec, the recovering one included.
    pending_same_spec: int


class PurchaseLedger:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._in_flight: Counter[str] = Counter()
        self._recovering: set[str] = set()
        self._pending: Counter[Spec] = Counter()
        self._claimed: set[str] = set()

    def _wait(self, ready: Callable[[], bool], deadline: Deadline, what: str) -> None:
        if not self._cond.wait_for(ready, timeout=deadline.remaining()):
            raise ProviderError(f"timed out waiting for {what}; raise qianfan:timeoutSeconds")

    @contextmanager
    def purchasing(self, spec: Spec, deadline: Deadline) -> Iterator[Callable[[], None]]:
        """Hold one purchase of `spec.model` in flight; call the yielded function if its outcome is
        uncertain, which registers it as pending in the same step that ends the flight."""
        uncertain = False

        def mark_uncertain() -> None:
            nonlocal uncertain
            uncertain = True

        with self._cond:
            self._wait(lambda: spec.model not in self._recovering, deadline, f"a purchase recovery for {spec.model}")
            self._in_flight[spec.model] += 1
        try:
            yield mark_uncertain
        finally:
            with self._cond:
                if uncertain:
                    self._pending[spec] += 1
                self._in_flight[spec.model] -= 1
                self._cond.notify_all()

    @contextmanager
    def recovering(self, spec: Spec, deadline: Deadline) -> Iterator[Window]:
        """Exclusive window to list the model's instances for one pending purchase of `spec`.

        The pending purchase is resolved when the window closes, whatever the outcome.
        """
        model = spec.model
        with self._cond:
            try:
                self._wait(lambda: model not in self._recovering, deadline, f"another purchase recovery for {model}")
            except ProviderError:
                self._drop_pending(spec)
                raise
            self._recovering.add(model)
            try:
                self._wait(lambda: self._in_flight[model] == 0, deadline, f"other purchases of {model} to finish")
            except ProviderError:
                self._resolve(spec)
                raise
            window = Window(frozenset(self._claimed), self._pending[spec])
        try:
            yield window
        finally:
            with self._cond:
                self._resolve(spec)

    def _resolve(self, spec: Spec) -> None:
        self._recovering.discard(spec.model)
        self._drop_pending(spec)

    def _drop_pending(self, spec: Spec) -> None:
        if self._pending[spec] > 0:
            self._pending[spec] -= 1
        self._cond.notify_all()

    def claim(self, instance_id: str) -> None:
        with self._cond:
            self._claimed.add(instance_id)
