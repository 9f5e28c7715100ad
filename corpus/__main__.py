"""`make corpus`: the validator judged from outside, on real files nobody here wrote.

Fetches each source (corpus/sources.py), labels every file with independent tools
(corpus/labels.py), uploads it in the validator's own terms (the profile that takes
its kind, declared by its extension), and prints, per source and per class, how
many were accepted and refused and how many verdicts disagree with the label: false
accepts (a file to refuse was accepted) and false rejects (a good file was refused),
each listed with the validator's reason. Malware runs against a real clamd when one
is installed, with signatures for EICAR and ClamAV's own test program.

    python -m corpus [--source NAME ...] [--no-scanner]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from broker.domain.inspection import Declared, inspect
from broker.domain.inspection.scanner import ClamdScanner, NoScanner, Scanner
from broker.domain.profiles import Profile, Profiles, load_profiles
from corpus.labels import Label, label, missing_tools
from corpus.sources import CACHE, SOURCES, Source, files_of
from tests.samples import BytesSource

# The shipped profiles, plus one for SVG drawings (no shipped profile takes SVG).
_DRAWINGS = """
[drawing]
visibility = "private"
max_size = "25 MiB"
[drawing.types]
"image/svg+xml" = ["svg"]
"""
# Each kind's declared type and the profile an app would upload it with.
KINDS = {
    "png": ("image/png", "avatar"), "jpg": ("image/jpeg", "avatar"),
    "jpeg": ("image/jpeg", "avatar"), "gif": ("image/gif", "avatar"),
    "webp": ("image/webp", "avatar"), "pdf": ("application/pdf", "document"),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",
             "document"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "document"),
    "csv": ("text/csv", "document"), "txt": ("text/plain", "document"),
    "svg": ("image/svg+xml", "drawing"), "mp4": ("video/mp4", "video"),
    "m4v": ("video/mp4", "video"), "mov": ("video/quicktime", "video"),
    "webm": ("video/webm", "video"), "mkv": ("video/x-matroska", "video"),
}
# A hostile file of a kind no profile takes is tried as what an attacker would rename it to.
DISGUISES = ("pdf", "txt", "png")


@dataclass(frozen=True)
class Trial:
    source: str
    path: Path
    extension: str
    label: Label
    accepted: bool
    reason: str
    detail: str

    @property
    def agrees(self) -> bool:
        return self.accepted == self.label.accept


def profiles() -> Profiles:
    shipped = {p.name: p for p in load_profiles()}
    return Profiles(shipped | {p.name: p for p in Profiles.from_toml(_DRAWINGS, "corpus")})


def trials_of(source: Source, every: Profiles, scanner: Scanner, cache: Path = CACHE
              ) -> Iterator[Trial]:
    for path in files_of(source, cache):
        extension = path.suffix.lower().lstrip(".")
        if source.hostile:
            kinds = [extension] if extension in KINDS else list(DISGUISES)
            for kind in kinds:
                hostile = Label(False, f"{source.name}: {kind}", source.what)
                yield _judge(source.name, path, kind, hostile, every, scanner)
            continue
        found = label(path, extension)
        yield _judge(source.name, path, extension, found, every, scanner)


def _judge(source: str, path: Path, kind: str, found: Label, every: Profiles,
           scanner: Scanner) -> Trial:
    content_type, profile_name = KINDS[kind]
    profile = every.get(profile_name)
    data = path.read_bytes()
    found = _within_limits(found, profile, len(data))
    declared = Declared(f"{path.stem}.{kind}", content_type, len(data))
    verdict = inspect(BytesSource(data), profile, declared, scanner).verdict
    reason = verdict.reason.code if verdict.reason else ""
    return Trial(source, path, kind, found, verdict.accepted, reason, verdict.detail)


def _within_limits(found: Label, profile: Profile, size: int) -> Label:
    """A good file over its profile's size is to be refused too (as too_large)."""
    if found.accept and size > profile.max_size:
        return Label(False, f"{found.kind}: over the profile's size")
    return found


@contextmanager
def scanner_for(enabled: bool) -> Iterator[Scanner]:
    """clamd with signatures for EICAR and ClamAV's test program, or no scanner."""
    from tests.clamd_server import clamd_installed, running_clamd

    if not enabled or not clamd_installed():
        print("malware scanning: off (no clamd); files that only a scanner refuses will "
              "show as false accepts", file=sys.stderr)
        yield NoScanner()
        return
    test_program = next((p for p in files_of(_source("clamav-testfiles"))
                         if p.name == "clam.exe"), None)
    signed = {"ClamAV-Test-Program": test_program.read_bytes()} if test_program else {}
    with tempfile.TemporaryDirectory() as workdir, \
            running_clamd(Path(workdir), stream_max="100M", signed=signed) as address:
        yield ClamdScanner(address, stream_max=100 * 1024 * 1024)


def _source(name: str) -> Source:
    (source,) = [s for s in SOURCES if s.name == name]
    return source


def report(trials: list[Trial]) -> str:
    lines = ["## Per source", "",
             "| source | files | accepted | refused | false accepts | false rejects |",
             "|---|---|---|---|---|---|"]
    lines += _rows(trials, lambda t: t.source)
    lines += ["", "## Per class (from the independent label)", "",
              "| class | files | accepted | refused | false accepts | false rejects |",
              "|---|---|---|---|---|---|"]
    lines += _rows(trials, lambda t: t.label.kind)
    wrong = [t for t in trials if not t.agrees]
    lines += ["", f"## Disagreements ({len(wrong)})", ""]
    for trial in sorted(wrong, key=lambda t: (t.source, str(t.path))):
        said = "accepted" if trial.accepted else f"refused {trial.reason}: {trial.detail[:160]}"
        lines.append(f"- {trial.source} `{trial.path.name}` as .{trial.extension} "
                     f"({trial.label.kind}{': ' + trial.label.why if trial.label.why else ''}"
                     f"): {said}")
    return "\n".join(lines)


def _rows(trials: list[Trial], key: object) -> list[str]:
    groups: dict[str, list[Trial]] = defaultdict(list)
    for trial in trials:
        groups[key(trial)].append(trial)  # type: ignore[operator]
    rows = []
    for name in sorted(groups):
        group = groups[name]
        counts = Counter((t.accepted, t.agrees) for t in group)
        accepted = counts[(True, True)] + counts[(True, False)]
        rows.append(f"| {name} | {len(group)} | {accepted} | {len(group) - accepted} | "
                    f"{counts[(True, False)]} | {counts[(False, False)]} |")
    total = Counter((t.accepted, t.agrees) for t in trials)
    accepted = total[(True, True)] + total[(True, False)]
    rows.append(f"| **all** | {len(trials)} | {accepted} | {len(trials) - accepted} | "
                f"{total[(True, False)]} | {total[(False, False)]} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m corpus", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--source", action="append", choices=[s.name for s in SOURCES],
                        help="only this source (repeatable)")
    parser.add_argument("--no-scanner", action="store_true", help="judge without clamd")
    args = parser.parse_args(argv)
    if missing := missing_tools():
        print(f"the labels need: {' '.join(missing)} (sudo apt-get install {' '.join(missing)})",
              file=sys.stderr)
        return 2
    chosen = [s for s in SOURCES if not args.source or s.name in args.source]
    every = profiles()
    trials: list[Trial] = []
    started = time.monotonic()
    with scanner_for(not args.no_scanner) as scanner:
        for source in chosen:
            before = len(trials)
            print(f"{source.name}: fetching and judging ({source.what})", file=sys.stderr)
            trials += trials_of(source, every, scanner)
            print(f"  {len(trials) - before} files", file=sys.stderr)
    text = report(trials)
    print(text)
    CACHE.mkdir(exist_ok=True)
    (CACHE / "report.md").write_text(text + "\n")
    with (CACHE / "trials.jsonl").open("w") as out:
        for trial in trials:
            out.write(json.dumps({"source": trial.source, "file": str(trial.path),
                                  "as": trial.extension, "label": trial.label.kind,
                                  "why": trial.label.why, "accepted": trial.accepted,
                                  "reason": trial.reason, "detail": trial.detail}) + "\n")
    print(f"\n{len(trials)} files in {time.monotonic() - started:.0f} s; "
          f"report in {CACHE / 'report.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
