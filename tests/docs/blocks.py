"""The fenced code blocks of the README and docs/, with the marker comment before each.

A marker is an HTML comment on the last non-blank line before a fence:

- `<!-- snippet: docs/examples/app.py -->` or `<!-- snippet: docs/examples/app.py:36-40 -->`:
  the block is (lines START to END of) that file, byte for byte;
- `<!-- not run: REASON -->`: a command block that cannot run here (an AWS account,
  Docker, a server that runs until Ctrl-C); the reason is required.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>snippet|not run)\s*(?::\s*(?P<value>.*?))?\s*-->\s*$")
LOOSE_MARKER = re.compile(r"<!--\s*(snippet|not[ _-]?run)", re.IGNORECASE)
SNIPPET = re.compile(r"^(?P<path>[^\s:]+)(?::(?P<start>\d+)-(?P<end>\d+))?$")


@dataclass(frozen=True)
class Block:
    path: str  # relative to the repository, e.g. "docs/guides/uppy.md"
    line: int  # the opening fence's line, 1-based
    tag: str  # the info string's first word, lower-case ("" when untagged)
    body: str  # the content, the fence's indentation removed, ending in a newline
    marker: str | None  # "snippet", "not run" or None
    marker_value: str  # the snippet's target or the reason ("" when absent)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def snippet_target(self) -> tuple[Path, int | None, int | None]:
        found = SNIPPET.match(self.marker_value)
        if not found:
            raise ValueError(f"{self.where}: snippet marker {self.marker_value!r} is not "
                             "PATH or PATH:START-END")
        start, end = found["start"], found["end"]
        return (ROOT / found["path"], int(start) if start else None,
                int(end) if end else None)


def doc_files() -> list[Path]:
    """README.md and every page under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def parse(path: Path) -> tuple[list[Block], list[str]]:
    """The file's blocks, and its problems (an unclosed fence, a malformed or orphan
    marker)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    name = relative(path)
    blocks: list[Block] = []
    problems: list[str] = []
    index = 0
    last_text: tuple[int, str] | None = None  # the last non-blank line outside blocks
    while index < len(lines):
        line = lines[index]
        opened = FENCE.match(line)
        if not opened:
            if line.strip():
                if last_text and LOOSE_MARKER.search(last_text[1]):
                    problems.append(f"{name}:{last_text[0]}: a marker must be the line "
                                    "just before a fence")
                last_text = (index + 1, line)
            index += 1
            continue
        indent, fence = len(opened["indent"]), opened["fence"]
        tag = opened["info"].strip().split(" ")[0].lower() if opened["info"].strip() else ""
        close = re.compile(rf"^ *{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = index + 1
        while end < len(lines) and not close.match(lines[end]):
            end += 1
        if end == len(lines):
            problems.append(f"{name}:{index + 1}: the fence is never closed")
            break
        body_lines = [raw[indent:] if raw[:indent].strip() == "" else raw.lstrip()
                      for raw in lines[index + 1:end]]
        marker, value = None, ""
        if last_text:
            found = MARKER.match(last_text[1])
            if found:
                marker, value = found["kind"], (found["value"] or "").strip()
            elif LOOSE_MARKER.search(last_text[1]):
                problems.append(f"{name}:{last_text[0]}: malformed marker {last_text[1]!r}; "
                                "write <!-- not run: REASON --> or <!-- snippet: PATH -->")
        blocks.append(Block(name, index + 1, tag, "".join(f"{b}\n" for b in body_lines),
                            marker, value))
        last_text = None
        index = end + 1
    if last_text and LOOSE_MARKER.search(last_text[1]):
        problems.append(f"{name}:{last_text[0]}: a marker must be the line just before a fence")
    return blocks, problems


def all_blocks() -> tuple[list[Block], list[str]]:
    blocks: list[Block] = []
    problems: list[str] = []
    for path in doc_files():
        found, wrong = parse(path)
        blocks += found
        problems += wrong
    return blocks, problems
