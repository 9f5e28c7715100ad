"""`make corpus` without the network: its independent labels on files of each class, and
its report's counts, on a local source judged end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.domain.inspection.scanner import NoScanner
from corpus.__main__ import profiles, report, trials_of
from corpus.labels import label, missing_tools
from corpus.sources import Source
from tests import writers
from tests.conftest import require_system
from tests.corpus import PE


@pytest.fixture(autouse=True)
def _labelling_tools() -> None:
    missing = missing_tools()
    require_system("the corpus's labelling tools", not missing,
                   f"apt-get install {' '.join(missing)}")


FILES = {
    "report.pdf": (writers.plain_pdf, True),
    "attached.pdf": (lambda: writers.pdf_attachment_annotation(PE, "setup.exe"), False),
    "protected.pdf": (writers.pdf_owner_password_only, True),
    "minutes.docx": (writers.mac_word_docx, True),
    "dde.docx": (lambda: writers.docx_with_field([' DDEAUTO cmd "/c calc" ']), False),
    "sums.xlsx": (lambda: writers.xlsx_workbook("=cmd|'/c calc'!A0"), False),
    "logo.svg": (writers.illustrator_svg, True),
    "styled.svg": (lambda: writers.svg_with_prolog(
        '<?xml-stylesheet href="https://evil.example/x.css"?>'), False),
    "people.csv": (lambda: writers.csv_as("utf-16"), True),
    "legacy.csv": (lambda: writers.csv_as("cp1252"), False),
    "print.jpg": (writers.photoshop_jpeg, True),
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    folder = tmp_path / "tree"
    folder.mkdir()
    for name, (build, _) in FILES.items():
        (folder / name).write_bytes(build())
    return folder


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_label_says_what_independent_tools_see(tree: Path, name: str) -> None:
    found = label(tree / name, name.rsplit(".", 1)[1])
    assert found.accept == FILES[name][1], found


def test_a_local_source_is_judged_and_counted(tree: Path) -> None:
    source = Source("local", "files made here", lambda folder: tree)
    trials = list(trials_of(source, profiles(), NoScanner(), tree.parent / "cache"))
    assert len(trials) == len(FILES)
    assert all(t.agrees for t in trials), [t for t in trials if not t.agrees]
    text = report(trials)
    accepted = sum(expected for _, expected in FILES.values())
    assert f"| local | {len(FILES)} | {accepted} | {len(FILES) - accepted} | 0 | 0 |" in text
    assert "## Disagreements (0)" in text


def test_a_hostile_source_is_tried_in_disguise(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "program.exe").write_bytes(PE)
    source = Source("hostile", "programs", lambda folder: tmp_path / "tree", hostile=True)
    trials = list(trials_of(source, profiles(), NoScanner(), tmp_path / "cache"))
    assert sorted(t.extension for t in trials) == ["pdf", "png", "txt"]
    assert not any(t.accepted for t in trials)
    assert "| hostile | 3 | 0 | 3 | 0 | 0 |" in report(trials)
