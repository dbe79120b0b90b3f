"""`providers.instances`: what one DescribeTPMResource answer says, parsed.

The witness here is Baidu's documentation, written out in this file: a Describe item is exactly
`{instanceId, paymentTiming, rpm, tpm, status, startTime, expiredTime}` (the item below is the one
in Baidu's SDK mock server), wrapped as `{"instances": [...]}`. The fake client answers with such
items only; it imports nothing from the provider but the error type it must raise.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from providers.instances import (
    Instance,
    describe_ids,
    next_marker,
    outputs_of,
    parse_instance,
    parse_instances,
    reported_total,
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
        start_time=datetime(2024, 2, 26, 10, 0, 0, tzinfo=UTC).timestamp(),  # Qianfan's clock, UTC
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
        "a0085162fxxxx0ad19e58e",
        "Running",
        "ernie-speed-8k",
        3,
        "2031-01-01T00:00:00+08:00",
        True,
        start_time=datetime(2024, 2, 26, 10, 0, 0, tzinfo=UTC).timestamp(),
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


def test_one_answer_that_lists_an_instance_twice_keeps_both_for_the_listing_to_judge() -> None:
    assert [i.instance_id for i in parse_instances({"instances": [item("tpm-a"), item("tpm-a")]})] == ["tpm-a"] * 2


# -- startTime: when Qianfan's clock saw the instance bought ----------------------------------------
@pytest.mark.parametrize(
    "start, expected",
    [
        ("2024-02-26T10:00:00Z", datetime(2024, 2, 26, 10, 0, 0, tzinfo=UTC)),  # Baidu's spelling (UTC)
        ("2024-02-26T18:00:00+08:00", datetime(2024, 2, 26, 10, 0, 0, tzinfo=UTC)),
        ("2024-02-26 18:00:00", datetime(2024, 2, 26, 10, 0, 0, tzinfo=UTC)),  # read as Beijing time
        ("yesterday", None),
        ("", None),
        (None, None),
        (1708941600, None),  # a number is not a documented spelling: unknown, never guessed
        ("1999-12-31T15:59:59Z", None),  # before 2000 (Beijing): no instance started then
    ],
)
def test_start_time(start: Any, expected: datetime | None) -> None:
    parsed = parse_instance({**DOCUMENTED, "startTime": start})
    assert parsed is not None
    assert parsed.start_time == (None if expected is None else expected.timestamp())


# -- what a page says about the pages after it ------------------------------------------------------
@pytest.mark.parametrize(
    "result, marker",
    [
        ({"instances": [], "isTruncated": True, "nextMarker": "m1"}, "m1"),
        ({"instances": [], "isTruncated": False, "nextMarker": "m1"}, None),
        ({"instances": [], "isTruncated": True}, None),
        ({"instances": [], "isTruncated": True, "nextMarker": ""}, None),
        ([], None),
    ],
)
def test_next_marker(result: Any, marker: str | None) -> None:
    assert next_marker(result) == marker


@pytest.mark.parametrize(
    "result, total",
    [
        ({"totalCount": 3}, 3),
        ({"total": 0}, 0),
        ({"totalCount": -1}, None),
        ({"totalCount": True}, None),
        ({"totalCount": "3"}, None),
        ({}, None),
        ([], None),
    ],
)
def test_reported_total(result: Any, total: int | None) -> None:
    assert reported_total(result) == total


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
