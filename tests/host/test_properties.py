"""Property-based inputs through the provider host's Check: every invalid input is refused with a
failure naming the field, every valid one is accepted, and Check never calls Qianfan."""

from __future__ import annotations

import os
import string
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostdriver import ProviderHost
from providers.models import DOCUMENTED_MODELS
from tests.support.hosts import plan_only_host

pytestmark = pytest.mark.slow  # hundreds of examples through a provider host

EXTRA = ("ernie-x1-turbo-32k",)
CAP = 12
NOW = datetime.now(UTC)
# In CI the examples are derived from the test names (reproducible runs); locally they are random,
# and any failure found is replayed from .hypothesis/ until fixed.
PROFILE = settings(
    max_examples=250,
    deadline=None,
    derandomize=os.environ.get("CI") == "true",
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def plan_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProviderHost]:
    overrides = {"qianfan:extraModels": ",".join(EXTRA), "qianfan:maxPurchaseCount": str(CAP)}
    with plan_only_host(tmp_path_factory.mktemp("properties"), **overrides) as host:
        yield host


# -- valid inputs -----------------------------------------------------------------------------
def spell(moment: datetime, style: int) -> str:
    if style == 0:
        return moment.astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
    if style == 1:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.astimezone(timezone(timedelta(hours=style - 14))).isoformat(timespec="seconds")


future = st.builds(
    spell,
    st.datetimes(min_value=datetime(2027, 6, 1), max_value=datetime(2099, 12, 31)).map(lambda d: d.replace(tzinfo=UTC)),
    st.integers(min_value=0, max_value=27),
)
past = st.builds(
    spell,
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2026, 1, 1)).map(lambda d: d.replace(tzinfo=UTC)),
    st.integers(min_value=0, max_value=27),
)
# The two id styles Baidu's documentation and its SDK's mock server show.
instance_ids = st.one_of(
    st.from_regex(r"tpm-[A-Za-z0-9]{8}", fullmatch=True), st.from_regex(r"[0-9a-f]{22,24}", fullmatch=True)
)


@st.composite
def valid_inputs(draw: st.DrawFn) -> dict[str, Any]:
    props: dict[str, Any] = {
        "model": draw(st.sampled_from(DOCUMENTED_MODELS + EXTRA)),
        "purchaseCount": draw(
            st.integers(min_value=1, max_value=CAP).flatmap(lambda n: st.sampled_from([n, float(n)]))
        ),
    }
    if draw(st.booleans()):
        props["releaseTime"] = draw(future)
    if draw(st.booleans()):
        props["paymentTiming"] = "Postpaid"
    if draw(st.booleans()):
        props["adoptInstanceId"] = draw(instance_ids)
    return props


@PROFILE
@given(props=valid_inputs())
def test_every_valid_input_is_accepted(plan_host: ProviderHost, props: dict[str, Any]) -> None:
    inputs, failures = plan_host.check(props)
    assert failures == []
    assert inputs["purchaseCount"] == props["purchaseCount"] and inputs["paymentTiming"] == "Postpaid"


# -- invalid inputs: exactly one bad field ------------------------------------------------------
not_a_string = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(st.integers(), max_size=2))
bad_values: dict[str, st.SearchStrategy[Any]] = {
    "model": st.one_of(
        st.text(max_size=30).filter(lambda t: t.strip() not in DOCUMENTED_MODELS + EXTRA),
        not_a_string,
    ),
    "purchaseCount": st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=CAP + 1),
        st.floats(allow_nan=False).filter(lambda f: not f.is_integer() or f < 1 or f > CAP),
        st.text(max_size=5),
        st.booleans(),
    ),
    "releaseTime": st.one_of(past, st.text(max_size=25), st.integers(), st.booleans()),
    "paymentTiming": st.one_of(st.text(max_size=12).filter(lambda t: t != "Postpaid"), st.integers()),
    "adoptInstanceId": st.one_of(st.just(""), st.text(min_size=1, max_size=10).map(lambda t: t + " x"), st.integers()),
}


@st.composite
def one_bad_field(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    props = draw(valid_inputs())
    field = draw(st.sampled_from([*bad_values, "<extra>", "<missing>"]))
    if field == "<extra>":
        field = draw(
            st.text(alphabet=string.ascii_letters, min_size=1, max_size=12).filter(lambda k: k not in bad_values)
        )
        props[field] = draw(st.integers())
    elif field == "<missing>":
        field = draw(st.sampled_from(["model", "purchaseCount"]))
        del props[field]
    else:
        props[field] = draw(bad_values[field])
    return field, props


@PROFILE
@given(case=one_bad_field())
def test_every_invalid_input_is_refused_naming_the_field(
    plan_host: ProviderHost, case: tuple[str, dict[str, Any]]
) -> None:
    field, props = case
    _, failures = plan_host.check(props)
    assert [prop for prop, _ in failures] == [field], (props, failures)
    assert all(reason.strip() for _, reason in failures)
