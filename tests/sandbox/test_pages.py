"""Describe in marker pages (`page_size`), and the listing faults that make answers disagree:
`reorder` (pages overlap and skip), `duplicate` (an item twice) and `empty` on a paged listing."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from qianfan_sandbox import SandboxControl
from tests.support.sandbox_http import MODEL, OTHER_MODEL, Client, assert_error

pytestmark = pytest.mark.slow  # a sandbox server per test

PAGE_KEYS = ["marker", "isTruncated", "nextMarker", "maxKeys", "instances"]
LAST_PAGE_KEYS = ["marker", "isTruncated", "maxKeys", "instances"]


def buy(client: Client, n: int, model: str = MODEL) -> list[str]:
    return [client.purchase(model=model) for _ in range(n)]


def describe_page(client: Client, marker: str | None = None, model: str = MODEL) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model}
    if marker is not None:
        body["marker"] = marker
    result = client.ok("DescribeTPMResource", body)
    assert isinstance(result, dict)
    return result


def ids(result: dict[str, Any]) -> list[str]:
    return [item["instanceId"] for item in result["instances"]]


def read_all(client: Client, model: str = MODEL, limit: int = 50) -> list[dict[str, Any]]:
    """Every page of a listing, following nextMarker as a BCE client does (bounded)."""
    answers = [describe_page(client, model=model)]
    while answers[-1]["isTruncated"]:
        assert len(answers) < limit, "the listing never ended"
        answers.append(describe_page(client, answers[-1]["nextMarker"], model))
    return answers


@pytest.fixture
def paged(served_control: SandboxControl) -> SandboxControl:
    served_control.set_option("page_size", 2)
    return served_control


# -- pagination -------------------------------------------------------------------------------


def test_no_pagination_by_default_and_a_marker_is_then_ignored(client: Client, served_control: SandboxControl) -> None:
    bought = buy(client, 3)
    assert served_control.get_option("page_size") == 0
    for marker in (None, "", "anything at all"):
        result = describe_page(client, marker)
        assert list(result) == ["instances"]
        assert ids(result) == bought


def test_pages_in_the_bce_list_style(client: Client, paged: SandboxControl) -> None:
    bought = buy(client, 5)
    first, second, last = read_all(client)
    assert list(first) == PAGE_KEYS and list(second) == PAGE_KEYS and list(last) == LAST_PAGE_KEYS
    assert (first["marker"], first["isTruncated"], first["maxKeys"]) == ("", True, 2)
    assert (second["marker"], second["isTruncated"], second["maxKeys"]) == (first["nextMarker"], True, 2)
    assert (last["marker"], last["isTruncated"], last["maxKeys"]) == (second["nextMarker"], False, 2)
    assert all(isinstance(page["nextMarker"], str) and page["nextMarker"] for page in (first, second))
    assert first["nextMarker"] != second["nextMarker"]
    assert [ids(first), ids(second), ids(last)] == [bought[:2], bought[2:4], bought[4:]]
    # Reading the listing again from any marker gives the same page (nothing changed).
    assert describe_page(client, first["nextMarker"]) == second


def test_a_listing_that_fills_its_pages_exactly_ends_without_a_next_marker(
    client: Client, paged: SandboxControl
) -> None:
    bought = buy(client, 4)
    pages = read_all(client)
    assert [ids(page) for page in pages] == [bought[:2], bought[2:]]
    assert "nextMarker" not in pages[-1] and pages[-1]["isTruncated"] is False


def test_an_empty_listing_is_one_last_page(client: Client, paged: SandboxControl) -> None:
    assert describe_page(client) == {"marker": "", "isTruncated": False, "maxKeys": 2, "instances": []}
    assert describe_page(client, "") == describe_page(client)


def test_filters_narrow_before_paging(client: Client, paged: SandboxControl) -> None:
    bought = buy(client, 3)
    paged.set_option("creating_seconds", 0)
    client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": bought[1]})
    result = client.ok("DescribeTPMResource", {"model": MODEL, "status": "Creating"})
    assert ids(result) == [bought[0], bought[2]] and result["isTruncated"] is False
    result = client.ok("DescribeTPMResource", {"model": MODEL, "instanceId": bought[2]})
    assert ids(result) == [bought[2]] and result["isTruncated"] is False


def test_markers_stand_for_offsets_so_a_shrinking_listing_shifts_its_pages(
    client: Client, paged: SandboxControl
) -> None:
    bought = buy(client, 5)
    paged.set_option("released_visibility", "hidden")
    first = describe_page(client)
    client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": bought[0]})
    second = describe_page(client, first["nextMarker"])
    assert ids(first) == bought[:2]
    assert ids(second) == bought[3:5]  # bought[2] moved to the first page after it was read: on no page
    # A marker past the end of a listing that shrank is an empty last page, not an error.
    for instance_id in bought[1:4]:
        client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id})
    assert describe_page(client, first["nextMarker"]) == {
        "marker": first["nextMarker"],
        "isTruncated": False,
        "maxKeys": 2,
        "instances": [],
    }


def test_bad_markers_are_invalid_parameter_naming_marker(client: Client, paged: SandboxControl) -> None:
    buy(client, 3)
    buy(client, 3, OTHER_MODEL)
    good = describe_page(client)["nextMarker"]
    foreign = describe_page(client, model=OTHER_MODEL)["nextMarker"]
    offset, digest = good.split("-")
    for bad in ("garbage", foreign, f"{offset}-{'0' * len(digest)}", f"0-{digest}", good + " ", good.upper()):
        payload = assert_error(
            client.call("DescribeTPMResource", {"model": MODEL, "marker": bad}), 400, "InvalidParameter"
        )
        assert payload["message"].startswith("marker:"), payload
    assert_error(client.call("DescribeTPMResource", {"model": MODEL, "marker": 2}), 400, "InappropriateJSON")
    long = "m" * 5000
    payload = assert_error(
        client.call("DescribeTPMResource", {"model": MODEL, "marker": long}), 400, "InvalidParameter"
    )
    assert len(payload["message"]) < 200  # the client's text is quoted cut short


@pytest.mark.parametrize("value", [-1, 1001, pytest.param(10**5000, id="5000-digits"), 2.0, True, "2", None])
def test_page_size_values_are_checked(served_control: SandboxControl, value: Any) -> None:
    with pytest.raises(ValueError, match="page_size"):
        served_control.set_option("page_size", value)
    assert served_control.get_option("page_size") == 0


# -- reorder ----------------------------------------------------------------------------------


def overlap_and_gap(pages: list[dict[str, Any]], bought: list[str]) -> tuple[set[str], set[str]]:
    """(instances on two pages or more, instances on none)."""
    seen = Counter(instance_id for page in pages for instance_id in ids(page))
    return {i for i, n in seen.items() if n > 1}, set(bought) - set(seen)


def three_pages(client: Client, served_control: SandboxControl, faulted: int) -> list[dict[str, Any]]:
    """The first three pages, the one at index `faulted` asked for under a `reorder` fault."""
    pages: list[dict[str, Any]] = []
    marker = None
    for index in range(3):
        if index == faulted:
            served_control.add_fault("DescribeTPMResource", "reorder")
        pages.append(describe_page(client, marker))
        marker = pages[-1].get("nextMarker")
    return pages


@pytest.mark.parametrize("faulted", [0, 1, 2])
def test_reorder_makes_pages_overlap_and_skip(client: Client, paged: SandboxControl, faulted: int) -> None:
    bought = buy(client, 6)
    for _ in range(10):  # the shuffle is random; that pages overlap and skip is not
        pages = three_pages(client, paged, faulted)
        assert [len(ids(page)) for page in pages] == [2, 2, 2]
        assert [page["isTruncated"] for page in pages] == [True, True, False]
        twice, never = overlap_and_gap(pages, bought)
        assert twice and never, [ids(page) for page in pages]
        assert len(twice) == len(never)
    assert [i for page in read_all(client) for i in ids(page)] == bought  # every unit used: creation order


def test_reorder_of_an_unpaged_listing_changes_its_order_only(client: Client, served_control: SandboxControl) -> None:
    bought = buy(client, 3)
    served_control.add_fault("DescribeTPMResource", "reorder", count=5)
    for _ in range(5):
        shuffled = [item["instanceId"] for item in client.describe()]
        assert sorted(shuffled) == sorted(bought) and shuffled != bought
    assert [item["instanceId"] for item in client.describe()] == bought


def test_reorder_counts_units_per_request(client: Client, paged: SandboxControl) -> None:
    bought = buy(client, 4)
    paged.add_fault("DescribeTPMResource", "reorder", count=2)
    describe_page(client)
    describe_page(client)
    pages = read_all(client)
    assert [i for page in pages for i in ids(page)] == bought
    assert [r["status"] for r in paged.requests("DescribeTPMResource")] == [200] * 4


# -- duplicate and empty ----------------------------------------------------------------------


def test_duplicate_lists_the_first_item_again_at_the_end(client: Client, served_control: SandboxControl) -> None:
    bought = buy(client, 3)
    served_control.add_fault("DescribeTPMResource", "duplicate")
    items = client.describe()
    assert [item["instanceId"] for item in items] == [*bought, bought[0]]
    assert items[-1] == items[0]
    assert [item["instanceId"] for item in client.describe()] == bought


def test_duplicate_in_a_page_makes_it_one_item_longer(client: Client, paged: SandboxControl) -> None:
    bought = buy(client, 3)
    first = describe_page(client)
    paged.add_fault("DescribeTPMResource", "duplicate")
    last = describe_page(client, first["nextMarker"])
    assert ids(last) == [bought[2], bought[2]] and last["isTruncated"] is False
    paged.add_fault("DescribeTPMResource", "duplicate")
    assert ids(describe_page(client)) == [bought[0], bought[1], bought[0]]


def test_duplicate_of_an_empty_listing_is_empty(client: Client, served_control: SandboxControl) -> None:
    served_control.add_fault("DescribeTPMResource", "duplicate")
    assert client.describe() == []
    assert served_control.requests()[-1]["status"] == 200


def test_empty_on_a_paged_listing_is_an_empty_last_page(client: Client, paged: SandboxControl) -> None:
    buy(client, 3)
    marker = describe_page(client)["nextMarker"]
    paged.add_fault("DescribeTPMResource", "empty", count=2)
    assert describe_page(client) == {"marker": "", "isTruncated": False, "maxKeys": 2, "instances": []}
    assert describe_page(client, marker) == {"marker": marker, "isTruncated": False, "maxKeys": 2, "instances": []}
    assert len(ids(describe_page(client))) == 2


@pytest.mark.parametrize("kind", ["reorder", "duplicate", "empty"])
@pytest.mark.parametrize("action", ["*", "PurchaseTPMResource", "ResizeTPMResource", "ReleaseTPMResource"])
def test_listing_faults_are_for_describe_only(served_control: SandboxControl, kind: str, action: str) -> None:
    with pytest.raises(ValueError, match="for DescribeTPMResource only"):
        served_control.add_fault(action, kind)
