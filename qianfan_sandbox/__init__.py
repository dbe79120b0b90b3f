"""A local emulator of Qianfan's TPM quota console API, backed by one SQLite file.

It exists so the provider and its tests never spend money: the provider can embed it
in-process, `python -m qianfan_sandbox` runs it standalone, and `SandboxControl` steers it
(options, injected faults, out-of-band changes) from any process through the database file.
Importing this package starts nothing and writes nothing.
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
