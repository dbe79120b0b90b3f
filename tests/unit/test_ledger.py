"""`providers.ledger` without a database server: the in-memory ledger (`qianfan:ledger: off`), the
owner a URN names, the account key, and the sightings every host's recovery reads. Both real
backends (a SQLite file, PostgreSQL) run the same guarantees in tests/ledger."""

from __future__ import annotations

import pytest

from providers.ledger import Owner, State, account_key, ledger_for, memory_ledger
from providers.settings import Secret, Settings

MODEL = "ernie-speed-8k"


@pytest.mark.parametrize(
    "urn, owner",
    [
        (
            "urn:pulumi:dev::qianfan-tpm::pulumi-python:dynamic/qianfan:TPMQuota::chat",
            Owner("qianfan-tpm", "dev", "chat"),
        ),
        (
            "urn:pulumi:prod::p::my:component$pulumi-python:dynamic/qianfan:TPMQuota::a::b",
            Owner("p", "prod", "a::b"),
        ),
        ("urn:pulumi:dev::p", Owner()),
        ("not a urn", Owner()),
        (None, Owner()),
        (42, Owner()),
    ],
)
def test_the_owner_a_urn_names(urn: object, owner: Owner) -> None:
    assert Owner.of(urn) == owner


def test_an_owner_describes_itself_for_messages() -> None:
    assert Owner("p", "dev", "chat").describe() == "TPMQuota 'chat' of stack dev"
    assert Owner().describe() == "another TPMQuota"


def settings(endpoint: str = "http://127.0.0.1:9", ak: str = "AKunit", sk: str = "SKunit") -> Settings:
    return Settings(endpoint=endpoint, access_key=Secret(ak), secret_key=Secret(sk))


def test_the_account_key_is_per_endpoint_and_key_pair_and_holds_no_key() -> None:
    base = account_key(settings())
    assert base == account_key(settings())
    assert base != account_key(settings(endpoint="http://127.0.0.1:10"))
    assert base != account_key(settings(ak="AKother"))
    assert base != account_key(settings(sk="SKother")), "keyed by the secret key: the pair, not the access key alone"
    assert "AKunit" not in base and "SKunit" not in base
    sandbox = account_key(Settings(endpoint="sandbox", sandbox_path="/tmp/x/qianfan.sqlite3"))
    assert sandbox.startswith("sandbox:/tmp/x/qianfan.sqlite3#")


def test_off_is_a_ledger_in_memory() -> None:
    ledger = ledger_for(Settings(), "host")
    assert ledger.name == "ledger in memory"


def test_sightings_exclude_an_instance_only_for_purchases_sent_after_them() -> None:
    ledger = memory_ledger("host-a")
    before = ledger.begin(MODEL, 1, None, Owner(), seconds=30, server_sent=None, server_ended=None, seen=["tpm-old"])
    assert before is not None
    later = ledger.begin(MODEL, 1, None, Owner(), seconds=30, server_sent=None, server_ended=None, seen=["tpm-new"])
    assert later is not None
    records = [ledger.record(before), ledger.record(later)]
    sighted = ledger.sighted_before(MODEL, records)
    # tpm-old was seen by the time either was sent; tpm-new only by the time the later one was.
    assert sighted == {(before, "tpm-old"), (later, "tpm-old"), (later, "tpm-new")}


def test_a_sighting_is_written_once_per_host() -> None:
    ledger = memory_ledger("host-a")
    for _ in range(3):
        ledger.begin(MODEL, 1, None, Owner(), seconds=30, server_sent=None, server_ended=None, seen=["tpm-1"])
    with ledger.backend.transaction(ledger.account) as cur:
        cur.execute("SELECT COUNT(*) FROM sightings")
        assert cur.fetchone()[0] == 1


def test_a_begin_refused_at_the_gate_records_nothing() -> None:
    ledger = memory_ledger("host-a")
    assert ledger.take_gate(MODEL, 30) == []
    assert ledger.begin(MODEL, 1, None, Owner(), seconds=30, server_sent=None, server_ended=None, seen=["x"]) is None
    with ledger.backend.transaction(ledger.account) as cur:
        cur.execute("SELECT COUNT(*) FROM purchases")
        purchases = cur.fetchone()[0]
        cur.execute("SELECT COUNT(*) FROM sightings")
        sightings = cur.fetchone()[0]
    assert (purchases, sightings) == (0, 0)


def test_ended_claims_in_the_same_step() -> None:
    ledger = memory_ledger("host-a")
    purchase = ledger.begin(MODEL, 1, None, Owner("p", "s", "r"), seconds=30, server_sent=None, server_ended=None)
    assert purchase is not None
    ledger.ended(purchase, State.BOUGHT, instance_id="tpm-1", request_id="req-1")
    assert ledger.claimed(["tpm-1", "tpm-2"]) == {"tpm-1"}
    assert ledger.record(purchase).state is State.BOUGHT and ledger.record(purchase).instance_id == "tpm-1"


def test_waiting_for_the_gate_looks_at_a_bounded_pace_while_a_purchase_is_in_flight() -> None:
    """A look that changed nothing wakes nobody: the waiter polls (50 ms growing to 0.5 s) instead
    of spinning through transactions while another purchase of the model is in flight."""
    import time

    from providers.deadline import Deadline

    ledger = memory_ledger("host-a")
    assert ledger.begin(MODEL, 1, None, Owner(), seconds=30, server_sent=None, server_ended=None) is not None
    looks = 0
    original = ledger.take_gate

    def counted(model: str, seconds: float) -> object:
        nonlocal looks
        looks += 1
        return original(model, seconds)

    started = time.monotonic()
    assert ledger.wait_until(lambda: counted(MODEL, 10), Deadline(1.0)) is None
    assert time.monotonic() - started >= 0.9
    assert looks <= 15, f"{looks} looks in one second: the wait spins"
