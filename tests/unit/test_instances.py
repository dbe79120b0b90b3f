"""`providers.instances`: what DescribeTPMResource says, parsed, found and waited for.

The witness here is Baidu's documentation, written out in this file: a Describe item is exactly
`{instanceId, paymentTiming, rpm, tpm, status, startTime, expiredTime}` (the item below is the one
in Baidu's SDK mock server), wrapped as `{"instances": [...]}`. The fake client answers with such
items only; it imports nothing from the provider but the error type it must raise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

import providers.instances as instances_module
from providers.deadline import Deadline
from providers.errors import Kind, QianfanError
from providers.instances import (
    Instance,
    describe_ids,
    find_elsewhere,
    find_instance,
    list_instances,
    look,
    outputs_of,
    parse_instance,
    parse_instances,
    wait_for,
)

#: Baidu's documented Describe item, literally.
DOCUMENTED = json.loads(
    '{"instanceId": "a0085162fxxxx0ad19e58e", "paymentTiming": "Postpaid", "rpm": 33, "tpm": 10000, '
    '"status": "Running", "startTime": "2024-02-26T10:00:00Z", "expiredTime": "-"}'
)


def item(instance_id: str, status: str = "Running", units: int = 1, expired: str = "-") -> dict[str, Any]:
    """A Describe item in Baidu's documented shape (1 unit = 10,000 TPM and 33 RPM, per Baidu)."""
    return {
        "instanceId": instance_id,
        "paymentTiming": "Postpaid",
        "rpm": 33 * units,
        "tpm": 10_000 * units,
        "status": status,
        "startTime": "2024-02-26T10:00:00Z",
        "expiredTime": expired,
    }


# -- parse_instance -------------------------------------------------------------------------------
def test_baidus_documented_item() -> None:
    assert parse_instance(DOCUMENTED) == Instance(
        instance_id="a0085162fxxxx0ad19e58e",
        status="Running",
        model=None,  # Baidu's item names no model
        units=1,  # from tpm 10,000
        release_time=None,  # "-": nothing scheduled ...
        release_time_known=True,  # ... which is knowledge, not ignorance
    )


@pytest.mark.parametrize(
    "expired, release, known",
    [
        ("2030-01-25T04:30:30Z", "2030-01-25T12:30:30+08:00", True),  # UTC, like startTime
        ("2030-01-25T12:30:30+08:00", "2030-01-25T12:30:30+08:00", True),
        ("2030-01-25 12:30:30", "2030-01-25T12:30:30+08:00", True),  # the seed's standard spelling
        ("-", None, True),
        ("", None, True),
        (None, None, True),
        ("tomorrow", None, False),  # unreadable: says nothing about the release
        ("9999-12-31T20:00:00Z", None, False),
        (12345, None, False),
    ],
)
def test_expired_time(expired: Any, release: str | None, known: bool) -> None:
    parsed = parse_instance({**DOCUMENTED, "expiredTime": expired})
    assert parsed is not None
    assert (parsed.release_time, parsed.release_time_known) == (release, known)


def test_no_release_field_at_all_is_unknown() -> None:
    parsed = parse_instance({k: v for k, v in DOCUMENTED.items() if k != "expiredTime"})
    assert parsed is not None and (parsed.release_time, parsed.release_time_known) == (None, False)


def test_the_rich_shape_prefers_release_time_and_count() -> None:
    rich = {
        **DOCUMENTED,
        "model": "ernie-speed-8k",
        "count": 3,
        "tpm": 10_000,  # disagrees with count: count wins
        "releaseTime": "2031-01-01T00:00:00+08:00",
        "expiredTime": "2030-01-25T04:30:30Z",
    }
    assert parse_instance(rich) == Instance(
        "a0085162fxxxx0ad19e58e", "Running", "ernie-speed-8k", 3, "2031-01-01T00:00:00+08:00", True
    )


def test_a_null_release_time_means_none_scheduled_even_beside_expired_time() -> None:
    parsed = parse_instance({**DOCUMENTED, "releaseTime": None, "expiredTime": "2030-01-25T04:30:30Z"})
    assert parsed is not None and (parsed.release_time, parsed.release_time_known) == (None, True)


@pytest.mark.parametrize(
    "fields, units",
    [
        ({"tpm": 30_000}, 3),
        ({"tpm": "20000"}, 2),
        ({"tpm": 20_000.0}, 2),
        ({"tpm": 15_000}, None),  # not a whole number of units: not guessed
        ({"tpm": 5}, None),
        ({"tpm": 0}, None),
        ({"tpm": -10_000}, None),
        ({"tpm": None}, None),
        ({"tpm": True}, None),  # a bool is not a number of tokens
        ({"tpm": "lots"}, None),
        ({"tpm": float("nan")}, None),
        ({"tpm": float("inf")}, None),
        ({"tpm": [10_000]}, None),
        ({"purchaseCount": 4, "tpm": 10_000}, 4),
        ({"count": 2, "purchaseCount": 4}, 2),
        ({"count": True, "tpm": 20_000}, 2),  # a bool count is ignored, tpm is used
        ({"count": 2.5, "tpm": 30_000}, 3),
    ],
)
def test_units(fields: dict[str, Any], units: int | None) -> None:
    parsed = parse_instance({**DOCUMENTED, **fields})
    assert parsed is not None and parsed.units == units


@pytest.mark.parametrize("count", [0, -3])
def test_a_count_that_cannot_be_a_quota_is_unknown(count: int) -> None:
    parsed = parse_instance({**DOCUMENTED, "count": count, "tpm": None})
    assert parsed is not None and parsed.units is None


@pytest.mark.parametrize(
    "fields, instance_id",
    [
        ({"instanceId": "tpm-Vlxxxx3F"}, "tpm-Vlxxxx3F"),
        ({"instanceId": 12345}, "12345"),
        ({"instanceId": None, "instanceID": "tpm-b"}, "tpm-b"),
        ({"instanceId": "", "id": "tpm-c"}, "tpm-c"),
    ],
)
def test_instance_id_spellings(fields: dict[str, Any], instance_id: str) -> None:
    parsed = parse_instance({**DOCUMENTED, **fields})
    assert parsed is not None and parsed.instance_id == instance_id


@pytest.mark.parametrize("instance_id", [None, "", 0, False, ["tpm-a"], {"id": "tpm-a"}, 1.5])
def test_items_without_a_usable_id_are_skipped(instance_id: Any) -> None:
    assert parse_instance({**DOCUMENTED, "instanceId": instance_id}) is None


def test_a_bool_instance_id_is_no_id() -> None:
    assert parse_instance({**DOCUMENTED, "instanceId": True}) is None


def test_status_and_model_that_are_missing_or_odd() -> None:
    parsed = parse_instance({**DOCUMENTED, "status": None, "model": 5})
    assert parsed is not None and (parsed.status, parsed.model) == ("Unknown", None)


@pytest.mark.parametrize(
    "status, gone",
    [
        ("Stopped", True),  # Baidu: expired
        ("STOPPED", True),
        ("Released", True),
        ("Expired", True),
        ("Running", False),
        ("Creating", False),
        ("Pending", False),
        ("Unknown", False),
    ],
)
def test_gone_statuses(status: str, gone: bool) -> None:
    assert Instance("tpm-a", status).gone is gone


# -- parse_instances: every shape -------------------------------------------------------------------
@pytest.mark.parametrize(
    "result, ids",
    [
        ({"instances": [item("tpm-a"), item("tpm-b")]}, ["tpm-a", "tpm-b"]),  # Baidu's shape
        ([item("tpm-a"), item("tpm-b")], ["tpm-a", "tpm-b"]),  # a bare list
        (item("tpm-a"), ["tpm-a"]),  # one object, as a Describe by id might answer
        ({"instanceList": [item("tpm-a")]}, ["tpm-a"]),
        ({"items": [item("tpm-a")]}, ["tpm-a"]),
        ({"instances": []}, []),
        ({"instances": None}, []),
        ({}, []),
        ([], []),
        (None, []),
        (True, []),
        ("tpm-a", []),
        ({"instances": [item("tpm-a"), "tpm-b", None, 5, {"status": "Running"}, item("tpm-c")]}, ["tpm-a", "tpm-c"]),
    ],
)
def test_parse_instances_shapes(result: Any, ids: list[str]) -> None:
    assert [i.instance_id for i in parse_instances(result)] == ids


# -- a fake Qianfan, answering as Baidu documents -----------------------------------------------------
Answer = Any | Exception | Callable[[str, str | None, dict[str, Any]], Any]


class FakeQianfan:
    """Stands in for `QianfanClient.describe`: answers from a script, records every call."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, str | None, dict[str, Any]]] = []
        self.times: list[float] = []

    def describe(self, model: str, deadline: Deadline, *, retry: bool = True, **extra: Any) -> Any:
        instance_id = extra.pop("instanceId", None)
        self.calls.append((model, instance_id, extra))
        self.times.append(time.monotonic())
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(model, instance_id, extra)
        return answer


def not_found() -> QianfanError:
    return QianfanError("DescribeTPMResource", Kind.NOT_FOUND, status=404, code="ResourceNotFound")


def server_error() -> QianfanError:
    return QianfanError("DescribeTPMResource", Kind.SERVER, status=500, code="InternalError")


@pytest.fixture
def quick_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pause before a second look is 0.5 s in the provider; 20 ms keeps this tier fast."""
    monkeypatch.setattr(instances_module, "ABSENCE_RECHECK_SECONDS", 0.02)


# -- list_instances -----------------------------------------------------------------------------------
# Baidu documents no pagination for Describe. The fake follows Baidu Cloud's usual list convention
# (`isTruncated`, `nextMarker`, sent back as `marker`): the stand-in's choice, written down here.
def test_list_instances_one_page() -> None:
    fake = FakeQianfan({"instances": [item("tpm-a"), item("tpm-b", "Stopped")]})
    found = list_instances(fake, "ernie-speed-8k", Deadline(5))
    assert [(i.instance_id, i.status) for i in found] == [("tpm-a", "Running"), ("tpm-b", "Stopped")]
    assert fake.calls == [("ernie-speed-8k", None, {})]


def test_list_instances_follows_markers() -> None:
    fake = FakeQianfan(
        {"instances": [item("tpm-a")], "isTruncated": True, "nextMarker": "m1"},
        {"instances": [item("tpm-b")], "isTruncated": True, "nextMarker": "m2"},
        {"instances": [item("tpm-c")], "isTruncated": False, "nextMarker": "ignored"},
        AssertionError("no fourth page was asked for"),
    )
    found = list_instances(fake, "ernie-speed-8k", Deadline(5))
    assert [i.instance_id for i in found] == ["tpm-a", "tpm-b", "tpm-c"]
    assert [extra for _, _, extra in fake.calls] == [{}, {"marker": "m1"}, {"marker": "m2"}]


def test_list_instances_stops_at_a_truncated_page_without_a_marker() -> None:
    fake = FakeQianfan({"instances": [item("tpm-a")], "isTruncated": True}, AssertionError("not asked"))
    assert len(list_instances(fake, "ernie-speed-8k", Deadline(5))) == 1
    assert len(fake.calls) == 1


def test_list_instances_is_bounded_at_100_pages() -> None:
    pages = iter(range(1_000))

    def endless(model: str, instance_id: str | None, extra: dict[str, Any]) -> Any:
        page = next(pages)
        return {"instances": [item(f"tpm-{page:08d}")], "isTruncated": True, "nextMarker": f"m{page}"}

    fake = FakeQianfan(endless)
    with pytest.raises(QianfanError) as caught:  # a partial listing is never taken for the whole
        list_instances(fake, "ernie-speed-8k", Deadline(5))
    assert len(fake.calls) == 100 and caught.value.kind is Kind.BAD_ANSWER and "100 pages" in str(caught.value)


def test_list_instances_passes_errors_on() -> None:
    with pytest.raises(QianfanError) as caught:
        list_instances(FakeQianfan(server_error()), "ernie-speed-8k", Deadline(5))
    assert caught.value.kind is Kind.SERVER


# -- finders, over a lister (in the host: the shared listings) ------------------------------------------
class FakeLister:
    """Stands in for `listings.Listings`: scripted listings per call, recording `fresh` and when."""

    def __init__(self, *listings: list[Instance] | Exception) -> None:
        self.listings = list(listings)
        self.calls: list[tuple[str, bool]] = []
        self.times: list[float] = []

    def get(self, model: str, deadline: Deadline, *, fresh: bool = False) -> list[Instance]:
        self.calls.append((model, fresh))
        self.times.append(time.monotonic())
        answer = self.listings.pop(0) if len(self.listings) > 1 else self.listings[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def running(instance_id: str, units: int = 1, status: str = "Running") -> Instance:
    return Instance(instance_id, status, units=units, release_time_known=True)


def test_look_picks_the_instance_from_one_listing() -> None:
    lister = FakeLister([running("tpm-other"), running("tpm-a", units=2)])
    found = look(lister, "ernie-speed-8k", "tpm-a", Deadline(5))
    assert found is not None and found.units == 2
    assert look(lister, "ernie-speed-8k", "tpm-b", Deadline(5), fresh=True) is None
    assert lister.calls == [("ernie-speed-8k", False), ("ernie-speed-8k", True)]


@pytest.mark.usefixtures("quick_recheck")
def test_find_instance_found_at_once_asks_once() -> None:
    lister = FakeLister([running("tpm-a")])
    assert find_instance(lister, "ernie-speed-8k", "tpm-a", Deadline(5)) is not None
    assert lister.calls == [("ernie-speed-8k", False)]


@pytest.mark.usefixtures("quick_recheck")
def test_find_instance_looks_again_in_a_fresh_listing_after_one_absence() -> None:
    lister = FakeLister([], [running("tpm-other"), running("tpm-a", units=5)])
    found = find_instance(lister, "ernie-speed-8k", "tpm-a", Deadline(5))
    assert found is not None and (found.instance_id, found.units) == ("tpm-a", 5)
    # The second look may not reuse the listing that lacked it: it is requested after a pause.
    assert lister.calls == [("ernie-speed-8k", False), ("ernie-speed-8k", True)]
    assert lister.times[1] - lister.times[0] >= 0.02


@pytest.mark.usefixtures("quick_recheck")
def test_find_instance_reports_absence_after_two_consistent_answers() -> None:
    lister = FakeLister([], [running("tpm-other")])
    assert find_instance(lister, "ernie-speed-8k", "tpm-a", Deadline(5)) is None
    assert len(lister.calls) == 2


def test_find_instance_pause_is_bounded_by_the_deadline() -> None:
    lister = FakeLister([])
    started = time.monotonic()
    assert find_instance(lister, "ernie-speed-8k", "tpm-a", Deadline(0.1)) is None
    assert time.monotonic() - started < 0.3  # not the full 0.5 s pause
    assert len(lister.calls) == 2


@pytest.mark.usefixtures("quick_recheck")
def test_find_instance_passes_a_failed_second_look_on() -> None:
    lister = FakeLister([], server_error())
    with pytest.raises(QianfanError):
        find_instance(lister, "ernie-speed-8k", "tpm-a", Deadline(5))


def test_find_elsewhere_returns_the_first_live_other_model() -> None:
    by_model = {
        "ernie-lite-8k": [],
        "ernie-char-8k": [running("tpm-a", status="Stopped")],  # gone: not where it lives
        "ernie-novel-8k": [running("tpm-a", units=2, status="Creating")],
        "ernie-3.5-8k": [running("tpm-a")],
    }

    class ByModel(FakeLister):
        def get(self, model: str, deadline: Deadline, *, fresh: bool = False) -> list[Instance]:
            self.calls.append((model, fresh))
            return by_model[model]

    lister = ByModel([])
    found = find_elsewhere(lister, "tpm-a", list(by_model), Deadline(5))
    assert found is not None
    model, instance = found
    assert (model, instance.status, instance.units) == ("ernie-novel-8k", "Creating", 2)
    assert [m for m, _ in lister.calls] == ["ernie-lite-8k", "ernie-char-8k", "ernie-novel-8k"]


def test_find_elsewhere_nowhere() -> None:
    lister = FakeLister([])
    assert find_elsewhere(lister, "tpm-a", ["a", "b"], Deadline(5)) is None
    assert [m for m, _ in lister.calls] == ["a", "b"]


# -- wait_for -------------------------------------------------------------------------------------------
def test_wait_for_returns_as_soon_as_done() -> None:
    answers = iter([None, Instance("tpm-a", "Creating"), Instance("tpm-a", "Running")])
    seen: list[Instance | None] = []

    def fetch() -> Instance | None:
        seen.append(next(answers))
        return seen[-1]

    started = time.monotonic()
    result = wait_for(fetch, lambda found: found is not None, Deadline(0.2))
    assert result == Instance("tpm-a", "Creating") and len(seen) == 2
    assert time.monotonic() - started < 0.3


def test_wait_for_gives_up_at_the_deadline_with_the_last_answer() -> None:
    calls = 0

    def fetch() -> Instance:
        nonlocal calls
        calls += 1
        return Instance("tpm-a", "Creating")

    started = time.monotonic()
    result = wait_for(fetch, lambda found: found is not None and found.status == "Running", Deadline(0.2))
    elapsed = time.monotonic() - started
    assert result == Instance("tpm-a", "Creating")
    assert calls >= 2 and elapsed < 0.3


def test_wait_for_on_an_expired_deadline_fetches_once() -> None:
    calls: list[int] = []
    assert wait_for(lambda: calls.append(1), lambda found: False, Deadline(0)) is None
    assert calls == [1]


# -- outputs ----------------------------------------------------------------------------------------------
def test_outputs_of_reported_units() -> None:
    assert outputs_of(Instance("tpm-a", "Running", units=3), fallback_units=1) == {
        "instanceId": "tpm-a",
        "status": "Running",
        "tpm": 30_000,
        "rpm": 99,
    }


def test_outputs_of_falls_back_to_what_was_asked() -> None:
    assert outputs_of(Instance("tpm-a", "Pending"), fallback_units=2) == {
        "instanceId": "tpm-a",
        "status": "Pending",
        "tpm": 20_000,
        "rpm": 66,
    }


def test_describe_ids() -> None:
    assert describe_ids([Instance("tpm-b", "Running"), Instance("tpm-a", "Running")]) == "tpm-a, tpm-b"
    assert describe_ids([]) == "none"
