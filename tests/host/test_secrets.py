"""The access key and secret key never reach state, a request body, an error text or a log.

The `make_host` fixture already scans every host test; these tests drive the provider through
the failure paths where a leak would most likely happen, and show that the scan can fail (the
SDK's own error text does carry the access key).
"""

from __future__ import annotations

import base64
import subprocess
import sys
import textwrap

import pytest
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config
from pulumi.dynamic.dynamic import serialize_provider

from hostdriver import HostError, ProviderHost
from providers import TPMQuotaProvider
from tests.support.keys import ACCESS_KEY, SECRET_KEY, assert_no_secrets

MODEL = "ernie-speed-8k"


def test_provider_blob_holds_no_keys_even_after_configure() -> None:
    provider = TPMQuotaProvider()
    config = Config({"qianfan:accessKey": ACCESS_KEY, "qianfan:secretKey": SECRET_KEY}, "qianfan-tpm")
    provider.configure(ConfigureRequest(config))
    blob = serialize_provider(provider)
    decoded = base64.b64decode(blob)
    assert ACCESS_KEY.encode() not in decoded and SECRET_KEY.encode() not in decoded
    assert blob == serialize_provider(TPMQuotaProvider()), "configure must not change what is pickled"
    assert SECRET_KEY not in repr(provider.__dict__) and ACCESS_KEY not in repr(provider.__dict__)


@pytest.mark.slow
@pytest.mark.parametrize(
    "fault, status",
    [
        ("error", 500),
        ("error", 503),
        ("throttle", 429),
        ("drop", None),
        ("error_after_commit", 500),
        ("drop_after_commit", None),
    ],
)
def test_failures_on_every_action_leak_nothing(make_host, sandbox_control, fault: str, status: int | None) -> None:
    id_, outs = make_host().up({"model": MODEL, "purchaseCount": 1})
    # The next runs meet persistent faults; a short deadline keeps their failures quick (whatever
    # the machine's load, they are meant to fail, and only what they print is checked).
    host: ProviderHost = make_host(**{"qianfan:timeoutSeconds": "2", "qianfan:settleSeconds": "1"})
    for action in ("DescribeTPMResource", "ResizeTPMResource", "ReleaseTPMResource", "PurchaseTPMResource"):
        sandbox_control.add_fault(action, fault, count=50, status=status)
    errors: list[str] = []
    news, _ = host.check({"model": MODEL, "purchaseCount": 2})
    for call in (
        lambda: host.up({"model": MODEL, "purchaseCount": 1}, name="second"),
        lambda: host.update(id_, outs, news),
        lambda: host.read(id_, outs),
        lambda: host.delete(id_, outs),
    ):
        try:
            call()
        except HostError as err:
            errors.append(err.details)
    assert errors, "persistent faults must make at least one operation fail"
    assert_no_secrets({f"error #{i}": text for i, text in enumerate(errors)})
    assert_no_secrets({"host stderr": host.stderr_text()})


@pytest.mark.slow
def test_wrong_secret_key_error_is_one_readable_line_without_keys(make_host, sandbox_db) -> None:
    # The embedded sandbox accepts the configured pair; a second host with a wrong secret key
    # talks to the same sandbox through the standalone server.
    from qianfan_sandbox import start_sandbox

    with start_sandbox(sandbox_db, {ACCESS_KEY: SECRET_KEY}) as sandbox:
        host = make_host(
            config={
                "qianfan:endpoint": sandbox.url,
                "qianfan:accessKey": ACCESS_KEY,
                "qianfan:secretKey": SECRET_KEY + "x",
                "qianfan:timeoutSeconds": "5",
            }
        )
        with pytest.raises(HostError) as caught:
            host.up({"model": MODEL, "purchaseCount": 1})
    line = caught.value.last_line
    assert "HTTP 400 SignatureDoesNotMatch" in line and "requestId" in line, caught.value.details
    assert "qianfan:secretKey" in line and "QIANFAN_SECRET_KEY" in line
    assert "request headers" not in caught.value.details and "Authorization" not in caught.value.details
    assert_no_secrets({"error": caught.value.details})


@pytest.mark.slow
def test_sdk_error_text_itself_carries_the_access_key(sandbox_db) -> None:
    """Why the mapping in providers/errors.py matters: the SDK's raw message would leak."""
    from qianfan_sandbox import start_sandbox

    script = textwrap.dedent(
        f"""
        import logging, os
        logging.getLogger("qianfan").disabled = True
        from qianfan import get_config, errors
        from qianfan.resources.console.utils import call_action
        get_config().ACCESS_KEY = {ACCESS_KEY!r}
        get_config().SECRET_KEY = "wrong"
        get_config().CONSOLE_API_BASE_URL = os.environ["URL"]
        try:
            call_action("/v2/charge", "DescribeTPMResource", {{"model": "ernie-speed-8k"}})
        except errors.RequestError as exc:
            print(str(exc))
        """
    )
    with start_sandbox(sandbox_db, {ACCESS_KEY: SECRET_KEY}) as sandbox:
        out = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env={"URL": sandbox.url, "PATH": ""},
        ).stdout
    assert ACCESS_KEY in out


@pytest.mark.slow
def test_sdk_logs_and_import_warnings_stay_out_of_host_output(make_host, sandbox_control) -> None:
    host = make_host(**{"qianfan:timeoutSeconds": "2", "qianfan:settleSeconds": "1"})
    sandbox_control.add_fault("*", "error", count=100)
    with pytest.raises(HostError):
        host.up({"model": MODEL, "purchaseCount": 1})
    stderr = host.stderr_text()
    assert "redis" not in stderr.lower()
    assert "[ERROR]" not in stderr and "[WARNING]" not in stderr
