"""The documentation holds together: every relative link and anchor resolves inside the repository,
nothing points outside it, the front page stays a front page, and `.ci/run`'s marker is where it
looks. No subprocess: the files are read as text.

Anchors are GitHub's heading slugs: the heading's text lower-cased, everything but letters, digits,
`_`, `-` and spaces dropped, spaces turned into `-`, and `-1`, `-2`, … added to repeats.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from hostdriver import PROJECT_ROOT

PAGES = sorted(
    [PROJECT_ROOT / name for name in ("README.md", "CONTRIBUTING.md", "CHANGELOG.md")]
    + list((PROJECT_ROOT / "docs").rglob("*.md"))
)
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
INLINE_CODE = re.compile(r"`[^`]*`")
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
#: A path written in inline code that climbs out of its page's directory, e.g. `../shared/x.md`.
CLIMBING_PATH = re.compile(r"`((?:\.\./)+[^`\s]*)`")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose(path: Path) -> list[tuple[int, str]]:
    """The page's lines outside fenced code blocks, numbered from 1."""
    lines, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    text = INLINE_CODE.sub(lambda m: m.group(0).strip("`"), heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading counts by its text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: Counter[str] = Counter()
    found = set()
    for _, line in prose(path):
        match = HEADING.match(line)
        if match:
            base = slug(match.group(2))
            found.add(f"{base}-{seen[base]}" if seen[base] else base)
            seen[base] += 1
    return found


def targets(path: Path) -> list[tuple[int, str]]:
    """Every link target of the page (inline, image and reference-style), outside code."""
    found = []
    for number, line in prose(path):
        text = INLINE_CODE.sub("", line)
        found += [(number, m.group(1)) for m in LINK.finditer(text)]
        reference = REFERENCE.match(text)
        if reference:
            found.append((number, reference.group(1)))
    return found


def where(path: Path, number: int) -> str:
    return f"{path.relative_to(PROJECT_ROOT)}:{number}"


def inside_repository(target: Path) -> bool:
    return target.resolve().is_relative_to(PROJECT_ROOT.resolve())


def test_there_are_pages_and_links_to_check() -> None:
    assert PROJECT_ROOT / "docs" / "README.md" in PAGES
    assert sum(len(targets(page)) for page in PAGES) > 50


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_every_relative_link_resolves_inside_the_repository(page: Path) -> None:
    problems = []
    for number, target in targets(page):
        if SCHEME.match(target):
            if target.startswith("file:"):
                problems.append(f"{where(page, number)}: {target} is a file on someone's machine")
            continue
        file_part, _, anchor = target.partition("#")
        if file_part.startswith("/"):
            problems.append(f"{where(page, number)}: {target} is absolute; link relative to the page")
            continue
        resolved = (page.parent / file_part) if file_part else page
        if not inside_repository(resolved):
            problems.append(f"{where(page, number)}: {target} points outside the repository")
        elif not resolved.exists():
            problems.append(f"{where(page, number)}: {target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{where(page, number)}: {target}: no heading with that anchor in {resolved.name}")
        elif anchor and resolved.suffix != ".md":
            problems.append(f"{where(page, number)}: {target}: an anchor into a file that is not markdown")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_no_path_in_the_text_points_outside_the_repository(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    problems = [
        f"{page.relative_to(PROJECT_ROOT)}: `{path}` points outside the repository; state the facts here"
        for path in CLIMBING_PATH.findall(text)
        if not inside_repository(page.parent / path)
    ]
    problems += [f"{page.relative_to(PROJECT_ROOT)}: names {p}" for p in ("/work/", "../shared/") if p in text]
    assert not problems, "\n".join(problems)


def test_the_slugs_are_githubs() -> None:
    assert slug("The Pulumi CLI: 3.139 or later") == "the-pulumi-cli-3139-or-later"
    assert slug("What Qianfan's answers may look like") == "what-qianfans-answers-may-look-like"
    assert slug("Resource reference: `TPMQuota`") == "resource-reference-tpmquota"
    assert slug("The 40 creates and the 0.7× goal") == "the-40-creates-and-the-07-goal"


def test_the_readme_is_a_front_page() -> None:
    lines = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail into docs/ and link it"


def test_the_test_command_is_where_ci_reads_it() -> None:
    """`.ci/run` takes the line after the first code fence that follows the marker."""
    lines = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert lines.count("<!-- test-command -->") == 1
    at = lines.index("<!-- test-command -->")
    assert lines[at + 1] == "```sh" and lines[at + 3] == "```", "the marker must be followed by a one-line sh block"
    command = lines[at + 2]
    assert command.startswith("python3 -m venv venv && ") and command.endswith(" -m pytest -q")
