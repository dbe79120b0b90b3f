"""`providers.release_time`: the two spellings Qianfan accepts, the one this project stores, and
the `releaseAfter` durations.

Expected values are written out by hand from Baidu's page (RFC3339, or `YYYY-MM-DD HH:MM:SS`,
read as Beijing time by this project's choice), never computed with the module under test.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.release_time import (
    BEIJING,
    LATEST,
    MAX_RELEASE_AFTER,
    MIN_RELEASE_AFTER,
    format_release_time,
    normalise_duration,
    normalise_if_possible,
    normalise_release_time,
    parse_duration,
    parse_release_time,
    release_after,
)
from providers.settings import MAX_TIMEOUT_SECONDS

PROFILE = settings(max_examples=300, deadline=None, derandomize=os.environ.get("CI") == "true")


@pytest.mark.parametrize(
    "spelling, stored",
    [
        # The seed's two examples name one instant.
        ("2030-01-25T12:30:30+08:00", "2030-01-25T12:30:30+08:00"),
        ("2030-01-25 12:30:30", "2030-01-25T12:30:30+08:00"),
        ("2030-01-25T04:30:30Z", "2030-01-25T12:30:30+08:00"),
        ("2030-01-25t04:30:30z", "2030-01-25T12:30:30+08:00"),
        ("2030-01-25T04:30:30+00:00", "2030-01-25T12:30:30+08:00"),
        ("2030-01-25T04:30:30-00:00", "2030-01-25T12:30:30+08:00"),
        ("2030-01-24T23:30:30-05:00", "2030-01-25T12:30:30+08:00"),
        ("2030-01-25T10:00:30+05:30", "2030-01-25T12:30:30+08:00"),
        ("2030-01-25T12:30:30.000+08:00", "2030-01-25T12:30:30+08:00"),
        ("2030-01-25T04:30:30.0Z", "2030-01-25T12:30:30+08:00"),
        ("2030-01-25T12:30:30+08:00\n", "2030-01-25T12:30:30+08:00"),  # what a YAML block scalar yields
        ("  2030-01-25 12:30:30  ", "2030-01-25T12:30:30+08:00"),
        ("2030-01-25T12:30:30+23:59", "2030-01-24T20:31:30+08:00"),  # RFC3339's widest offset
        ("2030-01-25T12:30:30-23:59", "2030-01-26T20:29:30+08:00"),
        ("2030-12-31T20:00:00Z", "2031-01-01T04:00:00+08:00"),  # the year rolls over in Beijing
        ("2028-02-29 00:00:00", "2028-02-29T00:00:00+08:00"),  # a leap day
    ],
)
def test_accepted_spellings_are_stored_in_beijing_time(spelling: str, stored: str) -> None:
    assert normalise_release_time(spelling) == stored


def test_the_two_documented_spellings_parse_to_one_instant() -> None:
    rfc = parse_release_time("2030-01-25T12:30:30+08:00")
    local = parse_release_time("2030-01-25 12:30:30")
    assert rfc == local == datetime(2030, 1, 25, 4, 30, 30, tzinfo=UTC)
    assert local.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(
    "text, stored",
    [
        ("2000-01-01T00:00:00+08:00", "2000-01-01T00:00:00+08:00"),  # the earliest accepted instant
        ("1999-12-31T16:00:00Z", "2000-01-01T00:00:00+08:00"),  # the same instant, in UTC
        ("9998-12-31T23:59:59+08:00", "9998-12-31T23:59:59+08:00"),  # the latest
        ("9998-12-31T15:59:59Z", "9998-12-31T23:59:59+08:00"),
    ],
)
def test_the_bounds_are_inclusive(text: str, stored: str) -> None:
    assert normalise_release_time(text) == stored


@pytest.mark.parametrize(
    "text",
    [
        "1999-12-31T23:59:59+08:00",  # one second early
        "1999-12-31 23:59:59",
        "9998-12-31T16:00:00Z",  # one second late
        "9999-01-01 00:00:00",
        # Near the ends of Python's datetime range, converting to another zone overflows: these
        # must be refused as out of range, never escape as OverflowError.
        "9999-12-31T20:00:00Z",
        "9999-12-31T23:59:59-08:00",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+09:00",
        "0001-01-01T00:00:00+23:59",
        "0001-01-01 00:00:00",
        "0000-01-01 00:00:00",
    ],
)
def test_outside_2000_to_9998_is_refused_as_value_error(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_release_time(text)
    assert type(caught.value) is ValueError
    message = str(caught.value)
    assert repr(text) in message or "is not a valid date" in message


def test_out_of_range_message_names_the_range() -> None:
    with pytest.raises(ValueError, match="outside the range") as caught:
        parse_release_time("9999-12-31T20:00:00Z")
    assert "2000-01-01T00:00:00+08:00 to 9998-12-31T23:59:59+08:00" in str(caught.value)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("2030-02-30 12:00:00", "is not a valid date and time"),
        ("2029-02-29 12:00:00", "is not a valid date and time"),  # not a leap year
        ("2030-13-01 12:00:00", "is not a valid date and time"),
        ("2030-00-10 12:00:00", "is not a valid date and time"),
        ("2030-01-25T24:00:00+08:00", "is not a valid date and time"),
        ("2030-01-25T12:60:00+08:00", "is not a valid date and time"),
        ("2030-01-25T12:30:60+08:00", "is not a valid date and time"),  # no leap seconds
        ("2030-01-25T12:30:30+24:00", "impossible UTC offset"),
        ("2030-01-25T12:30:30+08:60", "impossible UTC offset"),
        ("2030-01-25T12:30:30-99:99", "impossible UTC offset"),
    ],
)
def test_impossible_dates_and_offsets_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_release_time(text)


@pytest.mark.parametrize(
    "text",
    [
        "2030-01-25T12:30:30",  # RFC3339 needs an offset; without one the zone is a guess
        "2030-01-25T12:30:30+0800",
        "2030-01-25T12:30:30+08",
        "2030-01-25T12:30:30 +08:00",
        "2030-01-25T12:30:30.5+08:00",  # a fraction Qianfan would have to round
        "2030-01-25T12:30:30.000001Z",
        "2030-01-25 12:30",
        "2030-1-25 12:30:30",
        "30-01-25 12:30:30",
        "2030/01/25 12:30:30",
        "2030-01-25  12:30:30",
        "2030-01-25 12:30:30+08:00",  # the local spelling takes no offset
        "2030-01-25",
        "tomorrow",
        "",
        "   ",
        "٢٠٣٠-01-25 12:30:30",  # Arabic-Indic digits: int() would take them, Qianfan would not
        "２０３０-01-25 12:30:30",  # full-width digits
        "2030-01-25T12:30:30+08:00 2031-01-01T00:00:00+08:00",
        "2030-01-25T12:30:30+08:00\n2031",
    ],
)
def test_other_spellings_are_refused_saying_what_is_allowed(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_release_time(text)
    message = str(caught.value)
    assert "RFC3339" in message and "YYYY-MM-DD HH:MM:SS" in message
    assert "\n" not in message


@pytest.mark.parametrize("value", [None, 2030, 1.5, True, b"2030-01-25 12:30:30", ["2030-01-25 12:30:30"]])
def test_non_strings_are_refused_with_the_value(value: object) -> None:
    with pytest.raises(ValueError, match="must be a string") as caught:
        parse_release_time(value)
    assert repr(value) in str(caught.value)


def test_a_huge_value_is_not_echoed_whole() -> None:
    text = "2030-01-25 12:30:30" + "x" * 100_000
    with pytest.raises(ValueError) as caught:
        parse_release_time(text)
    assert len(str(caught.value)) < 600
    assert f"({len(repr(text))} characters)" in str(caught.value)


def test_format_drops_microseconds_and_converts_to_beijing() -> None:
    moment = datetime(2030, 1, 25, 4, 30, 30, 999_999, tzinfo=UTC)
    assert format_release_time(moment) == "2030-01-25T12:30:30+08:00"
    assert format_release_time(datetime(2030, 1, 25, 12, 30, 30, tzinfo=BEIJING)) == "2030-01-25T12:30:30+08:00"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2030-01-25 12:30:30", "2030-01-25T12:30:30+08:00"),
        ("2030-01-25T04:30:30Z", "2030-01-25T12:30:30+08:00"),
        ("-", "-"),  # Describe's "nothing scheduled": kept, never refused
        ("garbage", "garbage"),
        ("9999-12-31T20:00:00Z", "9999-12-31T20:00:00Z"),  # out of range: kept as it came
        ("", ""),
    ],
)
def test_normalise_if_possible_never_refuses(text: str, expected: str) -> None:
    assert normalise_if_possible(text) == expected


# -- properties ---------------------------------------------------------------------------------
moments = st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(9998, 12, 30), timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=0)
)
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


def rfc3339(moment: datetime, zone: timezone) -> str:
    """RFC3339 written by hand (not with isoformat, which the module under test relies on)."""
    local = moment.astimezone(zone)
    minutes = int(zone.utcoffset(None).total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return (
        f"{local.year:04d}-{local.month:02d}-{local.day:02d}T{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
        f"{sign}{hours:02d}:{rest:02d}"
    )


@PROFILE
@given(moment=moments, zone=offsets)
def test_any_offset_round_trips_to_the_same_instant(moment: datetime, zone: timezone) -> None:
    parsed = parse_release_time(rfc3339(moment, zone))
    assert parsed == moment
    stored = normalise_release_time(rfc3339(moment, zone))
    assert stored == rfc3339(moment, timezone(timedelta(hours=8)))
    assert normalise_release_time(stored) == stored  # the stored spelling is a fixed point


@PROFILE
@given(moment=moments)
def test_the_local_spelling_is_beijing_time(moment: datetime) -> None:
    beijing = moment.astimezone(timezone(timedelta(hours=8)))
    local = f"{beijing:%Y-%m-%d %H:%M:%S}"
    assert parse_release_time(local) == moment
    assert normalise_release_time(local) == normalise_release_time(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))


@PROFILE
@given(text=st.text(max_size=40))
def test_any_text_is_parsed_or_refused_with_value_error(text: str) -> None:
    try:
        moment = parse_release_time(text)
    except ValueError as exc:
        assert type(exc) is ValueError
        assert "\n" not in str(exc)
    else:
        assert datetime(1999, 12, 31, 16, tzinfo=UTC) <= moment <= datetime(9998, 12, 31, 16, tzinfo=UTC)


# -- releaseAfter ---------------------------------------------------------------------------------
DURATION_USE = "use whole days, hours and minutes, largest unit first, such as 8h, 1h30m, 90m or 2d"


@pytest.mark.parametrize(
    "spelling, stored, minutes",
    [
        ("1h", "1h", 60),
        ("60m", "1h", 60),
        ("8h", "8h", 480),
        (" 8h\n", "8h", 480),
        ("08h", "8h", 480),
        ("0" * 30 + "8h", "8h", 480),  # leading zeros are not a huge number
        ("90m", "1h30m", 90),
        ("1h30m", "1h30m", 90),
        ("0d1h30m", "1h30m", 90),
        ("24h", "1d", 1440),
        ("72h", "3d", 4320),
        ("1d12h", "1d12h", 2160),
        ("2d0h5m", "2d5m", 2885),
        ("3650d", "3650d", 3650 * 1440),
        ("5256000m", "3650d", 3650 * 1440),
    ],
)
def test_durations_are_stored_in_one_spelling(spelling: str, stored: str, minutes: int) -> None:
    assert parse_duration(spelling) == timedelta(minutes=minutes)
    assert normalise_duration(spelling) == stored
    assert normalise_duration(stored) == stored


@pytest.mark.parametrize(
    "value, message",
    [
        ("59m", "'59m' is shorter than 1h, the least this provider accepts (Qianfan bills a started hour in full)"),
        ("0m", "'0m' is shorter than 1h, the least this provider accepts (Qianfan bills a started hour in full)"),
        (
            "3650d1m",
            "'3650d1m' is longer than 3650d, the most this provider accepts; for a quota that lives on, leave "
            "releaseAfter out",
        ),
        (
            "9" * 5000 + "d",
            "'" + "9" * 79 + "… (5003 characters) is longer than 3650d, the most this provider accepts; for a quota "
            "that lives on, leave releaseAfter out",
        ),
        (
            "3600s",
            "'3600s' counts seconds; Qianfan bills by the hour, so the smallest unit is m (minutes): " + DURATION_USE,
        ),
        (
            "1h30s",
            "'1h30s' counts seconds; Qianfan bills by the hour, so the smallest unit is m (minutes): " + DURATION_USE,
        ),
        ("", "'' is not a duration; " + DURATION_USE),
        ("h", "'h' is not a duration; " + DURATION_USE),
        ("8H", "'8H' is not a duration; " + DURATION_USE),
        ("30m2h", "'30m2h' is not a duration; " + DURATION_USE),
        ("1h 30m", "'1h 30m' is not a duration; " + DURATION_USE),
        ("1.5h", "'1.5h' is not a duration; " + DURATION_USE),
        ("-2h", "'-2h' is not a duration; " + DURATION_USE),
        ("PT8H", "'PT8H' is not a duration; " + DURATION_USE),
        ("８h", "'８h' is not a duration; " + DURATION_USE),  # a full-width digit: ASCII only
        (
            8,
            "must be a duration as text, whole days, hours and minutes, largest unit first, such as 8h, 1h30m, 90m "
            "or 2d, got 8",
        ),
        (
            None,
            "must be a duration as text, whole days, hours and minutes, largest unit first, such as 8h, 1h30m, "
            "90m or 2d, got None",
        ),
    ],
)
def test_other_durations_are_refused_saying_what_is_allowed(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    assert str(caught.value) == message


def test_no_create_outlasts_the_shortest_release_after() -> None:
    """The release a purchase is sent with cannot pass while that create still runs."""
    assert timedelta(seconds=MAX_TIMEOUT_SECONDS) <= MIN_RELEASE_AFTER


def test_the_longest_release_after_gives_a_release_time_the_provider_accepts() -> None:
    longest = release_after(datetime.now(UTC).timestamp(), MAX_RELEASE_AFTER.total_seconds())
    assert parse_release_time(longest) < LATEST


@pytest.mark.parametrize(
    "wall, seconds, stored",
    [
        # 2030-01-25T04:30:30Z is 1895545830 on the epoch.
        (1895545830.0, 8 * 3600, "2030-01-25T20:30:30+08:00"),
        (1895545830.001, 8 * 3600, "2030-01-25T20:30:31+08:00"),  # rounded up: at least as long as asked
        (1895545829.999, 3600, "2030-01-25T13:30:30+08:00"),
        (1895545830.0, 3 * 86400, "2030-01-28T12:30:30+08:00"),
    ],
)
def test_release_after_is_the_moment_plus_the_duration_rounded_up(wall: float, seconds: float, stored: str) -> None:
    assert release_after(wall, seconds) == stored
