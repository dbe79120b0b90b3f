"""A local emulator of Qianfan's TPM quota console API, backed by one SQLite file.

It is the project's independent witness: written from Baidu's documentation (the
PurchaseTPMResource page, Baidu Cloud's common error codes, the Describe item of Baidu's own SDK
mock server) and importing nothing from `providers`, so a mistake in the provider cannot be
repeated here and pass unseen. Where Baidu documents nothing, the sandbox's choice is listed in
docs/sandbox.md.

The provider embeds it, `python -m qianfan_sandbox` runs it standalone, and `SandboxControl`
steers it (options, injected faults, out-of-band changes) from any process through the database
file. Importing this package starts nothing and writes nothing.
"""

from __future__ import annotations

from .auth import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY
from .control import SandboxControl
from .errors import SandboxError
from .server import Sandbox, start_sandbox

__all__ = [
    "SANDBOX_ACCESS_KEY",
    "SANDBOX_SECRET_KEY",
    "Sandbox",
    "SandboxControl",
    "SandboxError",
    "start_sandbox",
]
