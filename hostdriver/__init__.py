"""Drivers for Pulumi's plugin hosts, used by the tests and the benchmark alike.

The Pulumi CLI cannot run on our CI machines, so everything that needs "what the engine does" goes
through here: `ProviderHost` starts `python -m pulumi.dynamic` and calls its gRPC methods as the
engine would. `postgres.PostgresServer` runs a real PostgreSQL server on 127.0.0.1 for the ledger's
tests and the benchmark's ledger rows.
"""

from pulumi.runtime.rpc import UNKNOWN

from providers.resource import TYPE

from . import program as program
from .provider import (
    PROJECT_ROOT,
    HostError,
    ProviderHost,
    from_struct,
    provider_blob,
    to_struct,
    urn,
)

__all__ = [
    "PROJECT_ROOT",
    "TYPE",
    "UNKNOWN",
    "HostError",
    "ProviderHost",
    "from_struct",
    "provider_blob",
    "to_struct",
    "urn",
]
