"""Reading Pulumi state: exports, backend checkpoints, whole backends, and every way a file can be wrong.

No API call is made here: a bad input must be refused (one line naming the file) before any.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from audit.cli import _read_states, main
from audit.states import StateError, read_backend, read_state_file
from tests.audit.pulumi_state import (
    TPM_TYPE,
    Quota,
    checkpoint_document,
    encrypted,
    export_document,
    shown,
    urn,
)

CHAT = Quota(
    "chat",
    "tpm-Chat0001",
    {"model": "ernie-speed-8k", "purchaseCount": 2.0, "__provider": "gASV..."},
    {
        "model": "ernie-speed-8k",
        "purchaseCount": 2.0,
        "releaseTime": "2031-03-04T05:06:07+08:00",
        "paymentTiming": "Postpaid",
        "instanceId": "tpm-Chat0001",
        "status": "Running",
        "tpm": 20000.0,
        "rpm": 66.0,
        "__provider": encrypted("provider"),
    },
)


def write(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document))
    return str(path)


def test_an_export_and_a_checkpoint_give_the_same_claims(tmp_path: Path) -> None:
    exported = read_state_file(write(tmp_path / "e.json", export_document("dev", [CHAT])))
    stored = read_state_file(write(tmp_path / "c.json", checkpoint_document("dev", [CHAT])))
    for state in (exported, stored):
        assert (state.stack, state.project) == ("dev", "qianfan-tpm")
        [claim] = state.claims
        assert (claim.stack, claim.resource, claim.instance_id, claim.model, claim.units) == (
            "dev",
            "chat",
            "tpm-Chat0001",
            "ernie-speed-8k",
            2,
        )
        assert (claim.release_time, claim.release_known, claim.pending_delete) == (
            "2031-03-04T05:06:07+08:00",
            True,
            False,
        )


def test_secrets_are_read_when_shown_and_unknown_when_encrypted(tmp_path: Path) -> None:
    shown_quota = Quota("a", "tpm-A", {}, {**CHAT.outputs, "releaseTime": shown("2031-01-01T00:00:00+08:00")})
    hidden = Quota(
        "b", "tpm-B", {}, {**CHAT.outputs, "releaseTime": encrypted("r"), "model": encrypted("m"), "purchaseCount": 3}
    )
    state = read_state_file(write(tmp_path / "s.json", export_document("dev", [shown_quota, hidden])))
    a, b = state.claims
    assert (a.release_time, a.release_known) == ("2031-01-01T00:00:00+08:00", True)
    assert (b.release_time, b.release_known, b.model, b.units) == (None, False, None, 3)


def test_a_missing_release_time_means_none_and_no_outputs_means_unknown(tmp_path: Path) -> None:
    none_set = Quota("a", "tpm-A", {}, {"model": "ernie-lite-8k", "purchaseCount": 1, "instanceId": "tpm-A"})
    bare = Quota("b", "tpm-B", {}, {})
    odd = Quota("c", "tpm-C", {}, {"releaseTime": 12, "purchaseCount": True, "model": ["x"]})
    state = read_state_file(write(tmp_path / "s.json", export_document("dev", [none_set, bare, odd])))
    a, b, c = state.claims
    assert (a.release_time, a.release_known) == (None, True)
    assert (b.release_known, b.model, b.units) == (False, None, None)
    assert (c.release_known, c.model, c.units) == (False, None, None)  # not a time, not a count: unknown


def test_special_entries_pending_delete_replacement_external_and_interrupted_creates(tmp_path: Path) -> None:
    old = Quota("chat", "tpm-Old00001", CHAT.inputs, CHAT.outputs, {"delete": True})
    dbr = Quota("dbr", "tpm-Dbr00001", CHAT.inputs, CHAT.outputs, {"pendingReplacement": True})
    ext = Quota("ext", "tpm-Ext00001", CHAT.inputs, CHAT.outputs, {"external": True})
    late = Quota("late", "", {"model": "ernie-lite-8k", "purchaseCount": 1}, {})
    document = export_document(
        "dev",
        [CHAT, old, dbr, ext],
        pending_operations=[{"resource": late.resource("dev"), "type": "creating"}],
    )
    state = read_state_file(write(tmp_path / "s.json", document))
    assert [(c.resource, c.instance_id, c.pending_delete) for c in state.claims] == [
        ("chat", "tpm-Chat0001", False),
        ("chat", "tpm-Old00001", True),
    ]
    text = "\n".join(state.notes)
    assert "dev/dbr was released for a replacement not yet created" in text
    assert "dev/ext is read with .get() (external)" in text
    assert "interrupted create of 'late' (ernie-lite-8k)" in text
    assert "appears twice" not in text  # the same URN with delete: true is how Pulumi keeps a replacement


def test_duplicate_urns_are_noted_and_both_claims_kept(tmp_path: Path) -> None:
    twin = Quota("chat", "tpm-Twin0001", CHAT.inputs, CHAT.outputs)
    state = read_state_file(write(tmp_path / "s.json", export_document("dev", [CHAT, twin])))
    assert [c.instance_id for c in state.claims] == ["tpm-Chat0001", "tpm-Twin0001"]
    assert any("the URN appears twice" in note for note in state.notes)


def test_a_resource_without_id_falls_back_to_its_output_or_to_unknown(tmp_path: Path) -> None:
    from_output = Quota("a", "", {}, {**CHAT.outputs, "instanceId": "tpm-Out00001"})
    nothing = Quota("b", "", {"model": "ernie-lite-8k", "purchaseCount": 1}, {})
    state = read_state_file(write(tmp_path / "s.json", export_document("dev", [from_output, nothing])))
    assert [c.instance_id for c in state.claims] == ["tpm-Out00001", None]


def test_urns_with_colons_in_the_name_and_a_component_parent(tmp_path: Path) -> None:
    document = export_document("dev", [CHAT])
    resource = document["deployment"]["resources"][-1]
    resource["urn"] = "urn:pulumi:dev::qianfan-tpm::acme:index:Team$" + TPM_TYPE + "::team::chat"
    [claim] = read_state_file(write(tmp_path / "s.json", document)).claims
    assert (claim.stack, claim.resource) == ("dev", "team::chat")


def test_versions_and_empty_stacks(tmp_path: Path) -> None:
    v4 = {**export_document("dev", [CHAT]), "version": 4, "features": ["refreshBeforeUpdate"]}
    assert len(read_state_file(write(tmp_path / "v4.json", v4)).claims) == 1
    never_updated = {"version": 3, "checkpoint": {"stack": "organization/qianfan-tpm/dev"}}
    assert read_state_file(write(tmp_path / "new.json", never_updated)).claims == ()
    empty_export = {"version": 3, "deployment": {"manifest": {}}}
    assert read_state_file(write(tmp_path / "empty.json", empty_export)).stack is None


def test_a_large_state_is_read(tmp_path: Path) -> None:
    others = [
        {"urn": urn("dev", "random:index/randomId:RandomId", f"r{i}"), "custom": True, "id": str(i), "type": "x:y:Z"}
        for i in range(60_000)
    ]
    document = export_document("dev", [CHAT])
    document["deployment"]["resources"][1:1] = others
    path = write(tmp_path / "big.json", document)
    assert os.path.getsize(path) > 5_000_000
    assert [c.instance_id for c in read_state_file(path).claims] == ["tpm-Chat0001"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "the file is empty; expected the JSON of `pulumi stack export`"),
        (b"  \n", "the file is empty"),
        (
            b'{"version": 3, "deployment": {',
            "not valid JSON (Expecting property name enclosed in double quotes at line",
        ),
        (b"\xff\xfe{}", "not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
        (b"[]", "not a Pulumi state (the top level is a JSON array)"),
        (b'{"name": "qianfan-tpm", "runtime": "python"}', "not a Pulumi state (top-level keys: name, runtime)"),
        (b'{"deployment": {}}', '"version" is missing or not a number'),
        (b'{"version": 2, "checkpoint": {}}', "deployment version 2 is not supported (3 and 4 are)"),
        (b'{"version": 3, "deployment": []}', '"deployment" is a JSON array, not an object'),
        (b'{"version": 3, "checkpoint": {"latest": 7}}', '"checkpoint.latest" is a JSON number, not an object'),
        (b'{"version": 3, "deployment": {"resources": {}}}', '"resources" is a JSON object, not a list'),
        (b'{"version": 3, "deployment": {"resources": [{"type": "x"}]}}', 'resources[0] has no "urn"'),
        (b'{"version": 3, "deployment": {"resources": [{"urn": "arn:aws:x"}]}}', "is not a Pulumi URN"),
    ],
)
def test_bad_input_is_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, problem: str
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(StateError) as caught:
        read_state_file(str(path))
    assert str(caught.value).startswith(f"{path}: ") and problem in str(caught.value)
    assert main(["--state", str(path), "--endpoint", "http://127.0.0.1:9"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"python -m audit: {caught.value}\n"


def test_states_of_another_project_or_of_several_stacks_are_refused(tmp_path: Path) -> None:
    other = write(tmp_path / "other.json", export_document("dev", [CHAT], project="billing"))
    with pytest.raises(StateError, match=r"a state of project 'billing', not 'qianfan-tpm'"):
        read_state_file(other)
    empty_other = write(tmp_path / "empty.json", checkpoint_document("prod", [], project="billing"))
    with pytest.raises(StateError, match="'billing'"):
        read_state_file(empty_other)
    mixed = export_document("dev", [CHAT])
    mixed["deployment"]["resources"].append(Quota("x", "tpm-X", {}, {}).resource("prod"))
    with pytest.raises(StateError, match=r"resources of several stacks \(dev, prod\)"):
        read_state_file(write(tmp_path / "mixed.json", mixed))


def test_compressed_states(tmp_path: Path) -> None:
    packed = tmp_path / "dev.json.gz"
    packed.write_bytes(gzip.compress(json.dumps(export_document("dev", [CHAT])).encode()))
    assert len(read_state_file(str(packed)).claims) == 1
    damaged = tmp_path / "bad.json.gz"
    damaged.write_bytes(gzip.compress(b'{"version": 3}')[:12])
    with pytest.raises(StateError, match="a damaged gzip file"):
        read_state_file(str(damaged))
    zstd = tmp_path / "dev.json.zst"
    zstd.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 20)
    with pytest.raises(StateError, match=r"zstd-compressed.*decompress it first"):
        read_state_file(str(zstd))
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip.compress(b" " * 5000))
    with pytest.raises(StateError, match="decompresses to more than the 1,000 bytes"):
        read_state_file(str(bomb), limit=1000)
    with pytest.raises(StateError, match="more than the 1,000 a state file may have"):
        read_state_file(write(tmp_path / "big.json", {"pad": " " * 2000}), limit=1000)


def test_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(StateError, match=r"cannot be read \(No such file or directory\)"):
        read_state_file(str(tmp_path / "nope.json"))
    with pytest.raises(StateError, match="is a directory; pass a backend directory with --backend"):
        read_state_file(str(tmp_path))


def _stack_file(root: Path, relative: str, document: Any, mtime: int | None = None) -> Path:
    path = root / ".pulumi" / "stacks" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(document).encode()
    path.write_bytes(gzip.compress(data) if relative.endswith(".gz") else data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_a_backend_holds_project_and_legacy_stacks_and_the_newest_variant_wins(tmp_path: Path) -> None:
    older = Quota("chat", "tpm-Older001", CHAT.inputs, CHAT.outputs)
    _stack_file(tmp_path, "qianfan-tpm/dev.json", export_document("dev", [older]), mtime=1_000_000)
    _stack_file(tmp_path, "qianfan-tpm/dev.json.gz", checkpoint_document("dev", [CHAT]), mtime=2_000_000)
    _stack_file(tmp_path, "qianfan-tpm/dev.json.bak", {"not": "read"})
    _stack_file(tmp_path, "qianfan-tpm/prod.json", checkpoint_document("prod", [], project="qianfan-tpm"))
    _stack_file(tmp_path, "billing/dev.json", checkpoint_document("dev", [CHAT], project="billing"))
    legacy = Quota("lite", "tpm-Legacy01", CHAT.inputs, CHAT.outputs)
    _stack_file(tmp_path, "old-dev.json", checkpoint_document("old-dev", [legacy]))
    _stack_file(tmp_path, "web.json", checkpoint_document("web", [CHAT], project="website"))
    (tmp_path / ".pulumi" / "meta.yaml").write_text("version: 1\n")

    states, notes = read_backend(str(tmp_path))
    assert sorted((s.stack, tuple(c.instance_id for c in s.claims)) for s in states) == [
        ("dev", ("tpm-Chat0001",)),
        ("old-dev", ("tpm-Legacy01",)),
        ("prod", ()),
    ]
    assert notes == [
        f"{tmp_path / '.pulumi' / 'stacks' / 'web.json'}: skipped, a legacy-layout stack of project 'website'"
    ]
    same, _ = read_backend(str(tmp_path / ".pulumi"))
    assert [s.source for s in same] == [s.source for s in states]


def test_a_backend_with_a_broken_stack_or_no_stacks(tmp_path: Path) -> None:
    with pytest.raises(StateError, match=r"not a Pulumi file backend \(no .pulumi/stacks directory in it\)"):
        read_backend(str(tmp_path))
    (tmp_path / ".pulumi" / "stacks").mkdir(parents=True)
    assert read_backend(str(tmp_path)) == ([], [f"{tmp_path}: holds no stack of project qianfan-tpm"])
    zstd = tmp_path / ".pulumi" / "stacks" / "qianfan-tpm" / "dev.json.zst"
    zstd.parent.mkdir()
    zstd.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 20)  # what `pulumi` writes with zstd compression
    with pytest.raises(StateError, match=r"dev.json.zst: zstd-compressed"):
        read_backend(str(tmp_path))


def test_models_and_options_are_checked_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = write(tmp_path / "s.json", export_document("dev", [CHAT]))
    assert main(["--state", state, "--models", "ernie-sped-8k", "--endpoint", "http://127.0.0.1:9"]) == 2
    assert capsys.readouterr().err == (
        "python -m audit: --models: 'ernie-sped-8k' is not a documented model, an --extra-models id or a model "
        "in the states; did you mean 'ernie-speed-8k'?\n"
    )
    assert main(["--models", " , ", "--endpoint", "http://127.0.0.1:9"]) == 2
    assert "--models names no model" in capsys.readouterr().err
    assert main(["--endpoint", "ftp://x"]) == 2
    assert capsys.readouterr().err == (
        "python -m audit: --endpoint must be 'sandbox' or an http(s) base URL such as https://qianfan.baidubce.com, "
        "got 'ftp://x': the scheme must be http or https\n"
    )
    assert main(["--endpoint", "sandbox", "--sandbox-path", str(tmp_path / "none.sqlite3")]) == 2
    assert "no sandbox database there" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite3").exists()
    for bad in (["--warn-hours", "-1"], ["--warn-hours", "nan"], ["--concurrency", "0"], ["--timeout-seconds", "x"]):
        with pytest.raises(SystemExit) as caught:
            main(bad)
        assert caught.value.code == 2


def test_stdin_and_files_given_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    document = json.dumps(export_document("dev", [CHAT])).encode()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(document)))
    assert read_state_file("-").source == "<stdin>"
    path = write(tmp_path / "dev.json", export_document("dev", [CHAT]))
    copy = write(tmp_path / "copy.json", export_document("dev", [CHAT]))
    again = os.path.join(tmp_path, ".", "dev.json")
    states, notes = _read_states([path, again, copy], [])
    assert [s.source for s in states] == [path, copy]
    assert notes == [
        f"{again}: given more than once; read once",
        f"stack 'dev' comes from 2 states ({path}, {copy}); each counts",
    ]
