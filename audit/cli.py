"""`python -m audit`: read the stacks' state, list the account's instances, print the verdicts.

Exit codes: 0 clean (every live instance has exactly one owner, every state entry is live as
recorded, and with --ledger no purchase's outcome stayed uncertain); 1 findings; 2 the audit could
not be completed (bad input, credentials, a model that kept failing, a ledger that cannot be read),
in which case nothing is reported, because an incomplete audit must never read as clean, nor
invent "missing" findings for the models it could not list.

`--forget-claim` is the one write: to the ledger only, never to Qianfan (0 done, 2 refused).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import NoReturn, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

from .account import (
    DOCUMENTED_MODELS,
    LEDGER_ENV,
    MAX_TIMEOUT_SECONDS,
    UNREACHABLE_GRACE_SECONDS,
    Account,
    AccountError,
    AuditIncomplete,
    normalise_time,
    parse_model_list,
)
from .journal import LedgerError, open_ledger
from .reconcile import reconcile
from .records import PROJECT, Claim
from .report import render_json, render_table, visible
from .states import STDIN, StackState, StateError, read_backend, read_state_file

EXIT_CLEAN, EXIT_FINDINGS, EXIT_INCOMPLETE = 0, 1, 2
PROG = "python -m audit"


def prog_name(argv0: str) -> str:
    """How the user called the audit: `python -m audit`, or the console script's own name."""
    name = os.path.basename(argv0)
    return PROG if name in ("", "-c", "__main__.py") else name


class _Parser(argparse.ArgumentParser):
    """Bad options in one line, like every other refusal of the audit (argparse prints the usage too)."""

    def error(self, message: str) -> NoReturn:
        # A value argparse echoes may be a ledger URL put in the wrong place: never its password.
        self.exit(EXIT_INCOMPLETE, f"{self.prog}: {_USERINFO.sub('://***@', message)} (see --help)\n")


#: The user and password of any URL in a text.
_USERINFO = re.compile(r"://[^/@\s]*@")


def url_secrets(location: str) -> list[str]:
    """What of a ledger location must never be printed: a URL with a password, and the password
    (as written and decoded)."""
    if "://" not in location:
        return []
    try:
        parts = urlsplit(location)
        passwords = [parts.password or "", *parse_qs(parts.query).get("password", [])]
    except ValueError:
        return [location]  # unreadable: the whole of it
    found = [p for password in passwords if password for p in (password, unquote(password))]
    return [location, *found] if found else []


def _number(minimum: float, maximum: float = math.inf, cast: Callable[[str], float] = float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or not minimum <= value <= maximum:
            bound = f"between {minimum:g} and {maximum:g}" if math.isfinite(maximum) else f">= {minimum:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text!r}")
        return value

    return parse


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description=(
            f"Read-only audit of every Qianfan TPM quota in the account against the state of every {PROJECT} stack: "
            "who owns each paid instance. Only DescribeTPMResource is ever sent."
        ),
        epilog="Exit codes: 0 clean, 1 findings, 2 the audit could not be completed. "
        "Credentials: QIANFAN_ACCESS_KEY, QIANFAN_SECRET_KEY (read-only QianfanServiceReadAccessPolicy is enough); "
        "endpoint: QIANFAN_CONSOLE_API_BASE_URL or --endpoint.",
    )
    parser.add_argument(
        "--state",
        action="append",
        default=[],
        metavar="FILE",
        help="a stack's state: `pulumi stack export` output or a backend's stack file (.json/.json.gz; - = stdin); "
        "repeatable",
    )
    parser.add_argument(
        "--backend",
        action="append",
        default=[],
        metavar="DIR",
        help=f"a file backend (the DIR of `pulumi login file://DIR`): every {PROJECT} stack in it; repeatable",
    )
    parser.add_argument("--endpoint", metavar="URL|sandbox", help="console API base URL, or `sandbox`")
    parser.add_argument("--sandbox-path", metavar="PATH", help="the sandbox database (with --endpoint sandbox)")
    parser.add_argument(
        "--models",
        metavar="a,b",
        help="only these models (default: every documented model, every --extra-models id, every model in the states)",
    )
    parser.add_argument("--extra-models", metavar="a,b", help="model ids to list besides the documented ones")
    parser.add_argument(
        "--warn-hours", type=_number(0), default=24.0, metavar="N", help="expiring = released within N hours (24)"
    )
    parser.add_argument(
        "--ledger",
        nargs="?",
        const="",
        metavar="LOCATION",
        help="also read the purchase ledger the stacks share (qianfan:ledger: a SQLite file, sqlite:///PATH or "
        f"postgresql://…): who bought each instance, and every purchase whose outcome stayed uncertain. Without "
        f"LOCATION: {LEDGER_ENV}, else the provider's default (beside the sandbox with --endpoint sandbox), which "
        "keeps a password off the command line. Read-only; a missing ledger is refused, never created",
    )
    parser.add_argument(
        "--forget-claim",
        metavar="INSTANCE_ID",
        help="with --ledger: let go of the ledger's claim of this instance (its holder's state is gone), so a stack "
        "may adopt it; refused while a --state/--backend given holds it. Writes to the ledger only, lists nothing",
    )
    parser.add_argument("--json", action="store_true", help="print the JSON document instead of the table")
    parser.add_argument(
        "--concurrency", type=_number(1, 32, int), default=4, metavar="N", help="models listed at once (4)"
    )
    parser.add_argument(
        "--timeout-seconds",
        type=_number(1, MAX_TIMEOUT_SECONDS),
        default=300.0,
        metavar="S",
        help=f"deadline for the whole listing, retries of throttling and 5xx included; an endpoint nothing can "
        f"connect to is given up after {UNREACHABLE_GRACE_SECONDS:g} s (300, at most {MAX_TIMEOUT_SECONDS:g})",
    )
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    prog = prog_name(sys.argv[0]) if argv is None else PROG
    args = build_parser(prog).parse_args(argv)
    env = os.environ if environ is None else environ
    ledgers = [env.get(LEDGER_ENV, ""), args.ledger or ""]
    out = _Printer(sys.stdout, env, ledgers)
    err = _Printer(sys.stderr, env, ledgers, prefix=f"{prog}: ")
    try:
        return _run(args, env, out, err)
    except Exception as exc:  # noqa: BLE001 - a crash must still exit 2 ("incomplete"), never 1 ("findings")
        err.line(f"audit could not be completed: unexpected {type(exc).__name__}: {exc}")
        return EXIT_INCOMPLETE


def _run(args: argparse.Namespace, env: Mapping[str, str], out: _Printer, err: _Printer) -> int:
    try:
        states, notes = _read_states(args.state, args.backend)
    except StateError as exc:
        err.line(str(exc))
        return EXIT_INCOMPLETE
    claims = [
        dataclasses.replace(claim, release_time=normalise_time(claim.release_time))
        for state in states
        for claim in state.claims
    ]
    if args.forget_claim is not None and args.ledger is None:
        err.line("--forget-claim needs --ledger: the ledger whose claim to let go of")
        return EXIT_INCOMPLETE
    try:
        models = _models(args.models, args.extra_models, [c.model for c in claims if c.model])
        account = Account.connect(
            env,
            endpoint=args.endpoint,
            sandbox_path=args.sandbox_path,
            extra_models=args.extra_models,
            timeout_seconds=args.timeout_seconds,
            ledger=args.ledger,
        )
    except (ValueError, AccountError) as exc:
        err.line(str(exc))
        return EXIT_INCOMPLETE
    err.scrubber = out.scrubber = account.scrub
    if args.forget_claim is not None:
        return _forget_claim(args.forget_claim, account, claims, bool(states), out, err)
    opened = None
    try:
        if args.ledger is not None:  # opened first: a missing ledger is refused before the listing
            opened = open_ledger(account.settings)
        listings = account.list_models(models, int(args.concurrency))
        journal = None if opened is None else opened.read()
    except AuditIncomplete as exc:
        for line in exc.lines:
            err.line(line)
        return EXIT_INCOMPLETE
    except LedgerError as exc:
        err.line(f"audit incomplete, nothing is reported: {exc}")
        return EXIT_INCOMPLETE
    finally:
        if opened is not None:
            opened.close()
    audit = reconcile(listings, claims, warn_hours=args.warn_hours, now=datetime.now(UTC), journal=journal)
    audit = dataclasses.replace(audit, notes=(*notes, *audit.notes))
    if args.json:
        out.line(render_json(audit))
        for note in audit.notes:
            err.line(f"note: {visible(note)}")
    else:
        stacks = {state.stack for state in states if state.stack}
        out.line(
            render_table(audit, models=len(models), entries=len(claims), stacks=len(stacks), warn_hours=args.warn_hours)
        )
    return EXIT_CLEAN if audit.clean else EXIT_FINDINGS


def _forget_claim(
    instance_id: str, account: Account, claims: Sequence[Claim], states_given: bool, out: _Printer, err: _Printer
) -> int:
    """Let go of the ledger's claim of `instance_id`, unless a state given still holds the instance."""
    holders = [c for c in claims if c.instance_id == instance_id]
    if holders:
        held = ", ".join(f"{c.owner} ({c.source})" for c in holders)
        err.line(
            f"--forget-claim {instance_id}: {held} still holds it; a claim is let go only when no state holds the "
            "instance (remove that entry first, e.g. `pulumi state delete <urn>`); nothing changed"
        )
        return EXIT_INCOMPLETE
    try:
        opened = open_ledger(account.settings, writable=True)
        try:
            before = opened.forget_claim(instance_id)
        finally:
            opened.close()
    except LedgerError as exc:
        err.line(f"--forget-claim {instance_id}: {exc}; nothing changed")
        return EXIT_INCOMPLETE
    if before is None:
        err.line(
            f"--forget-claim {instance_id}: the {opened.ledger.name} holds no claim of it for this account (the "
            "endpoint and key pair given); nothing changed"
        )
        return EXIT_INCOMPLETE
    how = "adopted" if before.purchase_id is None else f"bought by purchase #{before.purchase_id}"
    if not before.held:
        out.line(
            f"{instance_id}: the {opened.ledger.name} let go of {before.who.label}'s claim already ({how}); "
            "nothing changed"
        )
        return EXIT_CLEAN
    if not states_given:
        err.line("note: no --state or --backend given: nothing checked that a stack still holds it")
    out.line(
        f"{instance_id}: let go of {before.who.label}'s claim in the {opened.ledger.name} ({how}; journaled as "
        f"forgotten). Any stack may adopt it now with adoptInstanceId: {instance_id}. Nothing was sent to Qianfan"
    )
    return EXIT_CLEAN


def _read_states(files: Sequence[str], backends: Sequence[str]) -> tuple[list[StackState], list[str]]:
    """Every state given, each file read once; StateError for the first one that cannot be used."""
    states: list[StackState] = []
    notes: list[str] = []
    for path in files:
        states.append(read_state_file(path))
    for directory in backends:
        found, remarks = read_backend(directory)
        states.extend(found)
        notes.extend(remarks)
    unique: dict[str, StackState] = {}
    for state in states:
        key = state.source if state.source == STDIN else os.path.realpath(state.source)
        if key in unique:
            notes.append(f"{state.source}: given more than once; read once")
            continue
        unique[key] = state
        notes.extend(state.notes)
    sources_by_stack: dict[str, list[str]] = {}
    for state in unique.values():
        if state.stack:
            sources_by_stack.setdefault(state.stack, []).append(state.source)
    for stack, sources in sources_by_stack.items():
        if len(sources) > 1:
            notes.append(f"stack {stack!r} comes from {len(sources)} states ({', '.join(sources)}); each counts")
    if not files and not backends:
        notes.append("no --state or --backend given: every live instance counts as unmanaged")
    return list(unique.values()), notes


def _model_list(option: str, raw: str | None) -> tuple[str, ...]:
    try:
        return parse_model_list(raw)
    except ValueError as exc:
        raise ValueError(f"{option}: {exc}") from None


def _models(requested: str | None, extra: str | None, in_states: Sequence[str]) -> list[str]:
    known = list(dict.fromkeys([*DOCUMENTED_MODELS, *_model_list("--extra-models", extra), *in_states]))
    if requested is None:
        return known
    chosen = list(_model_list("--models", requested))
    if not chosen:
        raise ValueError("--models names no model")
    for model in chosen:
        if model not in known:
            close = difflib.get_close_matches(model, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"--models: {model!r} is not a documented model, an --extra-models id or a model in the states{hint}"
            )
    return chosen


class _Printer:
    """Prints with keys scrubbed and control characters (other than line breaks) made visible."""

    def __init__(self, stream: TextIO, env: Mapping[str, str], ledgers: Sequence[str], prefix: str = "") -> None:
        self._stream = stream
        self._prefix = prefix
        secrets = [env.get(name, "") for name in ("QIANFAN_ACCESS_KEY", "QIANFAN_SECRET_KEY")]
        secrets += [secret for location in ledgers for secret in url_secrets(location)]
        self._secrets = sorted({s for s in secrets if s.strip()}, key=len, reverse=True)
        self.scrubber: Callable[[str], str] = self._scrub_env

    def _scrub_env(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def line(self, text: str) -> None:
        """`text` may span lines; whatever came from outside was made `visible` by the report."""
        shown = "\n".join(visible(line) for line in self.scrubber(self._scrub_env(text)).split("\n"))
        print(self._prefix + shown, file=self._stream, flush=True)
