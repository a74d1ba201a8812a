#!/usr/bin/env python3
"""Keep docs/charm-authors.md's file blocks equal to the template's files: python3 tools/sync_guide.py.

Every code block of the guide is preceded by a marker comment that says what the block is, and
``tests/test_charm_guide.py`` runs or checks each according to it:

``<!-- guide: file PATH -->``
    the template's file ``examples/minimal-charm/PATH``, whole (this tool writes it in);
``<!-- guide: variant PATH -->``
    a file of a variant of the template: written over (a YAML file: merged into) the template's;
``<!-- guide: run -->``
    shell commands run, one line at a time, in the charm's folder;
``<!-- guide: output NAME -->``
    what the charm writes on the machine (``drop-in``, ``snapshot``), compared with what it writes;
``<!-- guide: not run (WHY) -->``
    commands that need what the tests do not have (a controller, the package index): checked
    where they can be (an action and its params against charmcraft.yaml), not run.

With ``--check`` the tool changes nothing and exits 1 when a file block differs from its file.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "charm-authors.md"
TEMPLATE = REPO / "examples" / "minimal-charm"

#: A marker, then a fenced block: ``<!-- guide: KIND ARGUMENT -->`` and the block's language and text.
BLOCK = re.compile(
    r"<!-- guide: (?P<kind>file|variant|run|output|not run)(?: (?P<arg>[^\n]*?))? -->\n"
    r"```(?P<lang>[a-z]*)\n(?P<text>.*?)^```$",
    re.M | re.S,
)
FENCE = re.compile(r"^```[a-z]*$", re.M)


class Block(NamedTuple):
    """One code block of the guide, with what its marker says it is (``arg``: the rest of the marker)."""

    kind: str
    arg: str
    lang: str
    text: str
    start: int
    end: int


def blocks(guide: str) -> Iterator[Block]:
    """Yield the guide's marked code blocks in order."""
    for match in BLOCK.finditer(guide):
        yield Block(
            match["kind"], match["arg"] or "", match["lang"], match["text"], match.start("text"), match.end("text")
        )


def fence_count(guide: str) -> int:
    """Return how many code blocks the guide has (marked or not): every other fence line opens one."""
    return len(FENCE.findall(guide)) // 2


def synced(guide: str, template: Path = TEMPLATE) -> str:
    """Return the guide with each ``file`` block's text replaced by the template's file."""
    parts, last = [], 0
    for block in blocks(guide):
        if block.kind != "file":
            continue
        parts += [guide[last : block.start], (template / block.arg).read_text(encoding="utf-8")]
        last = block.end
    return "".join(parts) + guide[last:]


def main(argv: list[str]) -> int:
    """Rewrite the guide (or, with ``--check``, say whether it would change)."""
    text = GUIDE.read_text(encoding="utf-8")
    new = synced(text)
    if "--check" in argv:
        if new != text:
            print(f"{GUIDE}: file blocks differ from {TEMPLATE}: run python3 tools/sync_guide.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        GUIDE.write_text(new, encoding="utf-8")
        print(f"updated {GUIDE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
