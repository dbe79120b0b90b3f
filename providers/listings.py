"""One DescribeTPMResource listing per model serves the concurrent operations of a provider host.

The host serves four RPCs at once, and the engine issues every create or refresh of a stack at
once: forty creates of one model used to cost forty listings before their purchases and forty
confirmations after. Here an operation that needs "the instances model M has" joins a listing of M
in flight, or reuses one that is recent enough, under these freshness rules:

- a confirmation after a write (purchase, resize, release change, release) and a purchase
  recovery use only a listing requested after they asked (`fresh=True`), so after their write
  was answered;
- no operation uses a listing requested before a write of this host to the same model was made,
  a write counting as made when it ended (Qianfan answered it, or the attempt failed): before
  then nobody can rely on a listing showing it, after then every listing must;
- a refresh, a pre-purchase listing or an ownership check may use a listing at most
  `qianfan:listingMaxAgeSeconds` old (0 turns sharing off: every operation lists on its own).

A fresh listing that must be requested while writes of its model are in flight waits a moment for
them (at most `BATCH_SECONDS`), so that the confirmations of a wave of purchases share one listing.
Every wait stays inside the waiting operation's deadline. The shared unit is one attempt: a fault
reaches every operation that waited on it, and each applies its own retry policy.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .client import DESCRIBE, QianfanClient
from .deadline import Deadline
from .errors import Kind, QianfanError
from .instances import Instance, list_instances

#: How long a listing that must be new waits for the writes of its model in flight to be answered.
BATCH_SECONDS = 0.2


@dataclass
class _Fetch:
    """One attempt at listing a model, shared by whoever asked while it was usable."""

    requested_at: float
    done: threading.Event = field(default_factory=threading.Event)
    instances: list[Instance] | None = None
    error: Exception | None = None


class Listings:
    """The listings of one provider host. Thread-safe; `fetches` counts the Describe calls made."""

    def __init__(self, client: QianfanClient, max_age_seconds: float) -> None:
        self._client = client
        self._max_age = max_age_seconds
        self._cond = threading.Condition()
        self._latest: dict[str, _Fetch] = {}
        self._writes: Counter[str] = Counter()
        self._last_write: dict[str, float] = {}
        self.fetches = 0

    @contextmanager
    def writing(self, model: str) -> Iterator[None]:
        """Mark a write to `model` in flight; once it ends, listings requested before are not used."""
        with self._cond:
            self._writes[model] += 1
        try:
            yield
        finally:
            with self._cond:
                self._writes[model] -= 1
                self._last_write[model] = time.monotonic()
                self._cond.notify_all()

    def get(self, model: str, deadline: Deadline, *, fresh: bool = False) -> list[Instance]:
        """The instances of `model`, from a listing requested recently enough (see the module doc)."""
        asked = time.monotonic()
        return self._client.with_retries(DESCRIBE, lambda: self._once(model, deadline, asked, fresh), deadline)

    def _once(self, model: str, deadline: Deadline, asked: float, fresh: bool) -> list[Instance]:
        with self._cond:
            floor = self._floor(model, asked, fresh)
            fetch = self._usable(model, floor)
            if fetch is None and fresh and self._writes[model] > 0:
                batch = deadline.sub(BATCH_SECONDS)
                self._cond.wait_for(lambda: self._writes[model] == 0, timeout=batch.remaining())
                floor = self._floor(model, asked, fresh)  # writes have ended meanwhile
                fetch = self._usable(model, floor)
            starter = fetch is None
            if fetch is None:
                fetch = self._latest[model] = _Fetch(time.monotonic())
                self.fetches += 1
        if starter:
            try:
                fetch.instances = list_instances(self._client, model, deadline, retry=False)
            except Exception as exc:  # noqa: BLE001 - handed to every operation that waited on it
                fetch.error = exc
            finally:
                fetch.done.set()
        elif not fetch.done.wait(deadline.remaining()):
            raise QianfanError(
                DESCRIBE, Kind.NOT_SENT, message="a shared listing did not answer before this operation's deadline"
            )
        if isinstance(fetch.error, QianfanError):
            raise fetch.error.replace()  # each waiter raises its own copy of the shared failure
        if fetch.error is not None:
            raise fetch.error
        assert fetch.instances is not None
        return list(fetch.instances)

    def _floor(self, model: str, asked: float, fresh: bool) -> float:
        """The earliest request time a listing may have to serve this operation."""
        oldest = asked if fresh else time.monotonic() - self._max_age
        return max(oldest, self._last_write.get(model, -math.inf))

    def _usable(self, model: str, floor: float) -> _Fetch | None:
        """The latest listing of `model`, if this operation may share it (never with sharing off)."""
        if self._max_age <= 0:
            return None
        fetch = self._latest.get(model)
        if fetch is None or fetch.requested_at < floor or fetch.error is not None:
            return None
        return fetch
