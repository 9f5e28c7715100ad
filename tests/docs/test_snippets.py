"""Every fenced block in README.md and docs/**/*.md is run or checked, so none can rot.

How each block is checked, by its tag:

- every block needs a tag; `text` (output, diagrams, trees, headers) is not run;
- `json`, `toml`, `yaml`, `env`/`ini`: parsed. A TOML block whose tables each have
  `types` is an upload-profiles file and must load through the product's own
  profile loader;
- `python`: run in a fresh interpreter (the repository's virtualenv);
- `js`/`javascript`: `node --check` as an ES module; `html`: each inline <script>
  through `node --check`;
- `sh`/`bash`/`shell`: run by bash, each page's blocks in order in one shell (as a
  reader follows the page in one terminal), in a folder laid out as the repository
  is, against a stack started for the session: `$BROKER` is its address and
  `$TOKEN` a token for alice. `make` runs as `make -n`, a dry run (the targets exist
  and their recipes expand; `make test`, `make bench` or `make run` would take
  minutes or never end). Some pages' output is checked for what the page promises;
- a block after `<!-- snippet: PATH[:START-END] -->` must be byte for byte that file
  (or those lines of it); the file itself is tested in tests/docs/test_examples.py
  (docs/examples/) or tests/unit/test_self_hosting_files.py (docs/self-hosting/);
- a command block after `<!-- not run: REASON -->` is not run (an AWS account,
  Docker, a server that runs until Ctrl-C): the reason is required, and the run
  prints how many there are.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_system
from tests.docs.blocks import ROOT, Block, all_blocks, relative
from tests.docs.conftest import Stack, clean_env, summarize

BLOCKS, PROBLEMS = all_blocks()

NOT_RUN_TAGS = {"text"}
DATA_TAGS = {"json", "toml", "yaml", "env", "ini"}
SCRIPT_TAGS = {"js", "javascript", "html"}
SHELL_TAGS = {"sh", "bash", "shell"}
KNOWN_TAGS = NOT_RUN_TAGS | DATA_TAGS | SCRIPT_TAGS | SHELL_TAGS | {"python"}

# What a page's commands must print, beyond exiting 0.
EXPECTED_OUTPUT = {
    "README.md": ["storage answered 201", '"status":"ready"', "200 image/png"],
    "docs/guides/private-downloads.md": ["the owner got the file back", "mallory: 404"],
    "docs/guides/large-files.md": ['"status": "ready", "size": 9020000'],
    "docs/guides/webhooks.md": ["whsec_"],
    "docs/operations/monitoring.md": ['"status":"ready"', "broker_verdicts_total"],
    "docs/reference/api.md": ['"code": "type_not_allowed"', '"name":"avatar"'],
}


def _ids(blocks: list[Block]) -> list[str]:
    return [f"{b.where}-{b.tag or 'untagged'}" for b in blocks]


def _selected(predicate: Callable[[Block], bool]) -> list[Block]:
    return [b for b in BLOCKS if predicate(b)]


# -- every block is tagged, every marker well formed -----------------------------------

def test_the_pages_have_blocks_and_every_one_is_tagged_with_a_known_tag() -> None:
    assert len(BLOCKS) > 40, "the README and docs/ should hold the product's commands"
    untagged = [f"{b.where}: untagged block (write ```text for output)" for b in BLOCKS
                if not b.tag]
    unknown = [f"{b.where}: unknown tag {b.tag!r} (known: {', '.join(sorted(KNOWN_TAGS))})"
               for b in BLOCKS if b.tag and b.tag not in KNOWN_TAGS]
    assert not untagged + unknown, "\n".join(untagged + unknown)


def test_every_marker_is_well_formed_and_not_run_blocks_give_a_reason() -> None:
    problems = list(PROBLEMS)
    not_run = [b for b in BLOCKS if b.marker == "not run"]
    problems += [f"{b.where}: <!-- not run --> without a reason" for b in not_run
                 if not b.marker_value]
    problems += [f"{b.where}: only command blocks can be marked not run, not {b.tag!r}"
                 for b in not_run if b.tag not in SHELL_TAGS | {"python"}]
    for block in _selected(lambda b: b.marker == "snippet"):
        try:
            path, _, _ = block.snippet_target()
        except ValueError as error:
            problems.append(str(error))
            continue
        if not path.is_file():
            problems.append(f"{block.where}: snippet of {block.marker_value}, which does "
                            "not exist")
    assert not problems, "\n".join(problems)
    reasons = "; ".join(f"{b.where} ({b.marker_value})" for b in not_run)
    summarize(f"docs: {len(BLOCKS)} fenced blocks, {len(not_run)} marked not run: {reasons}")
    assert len(not_run) <= 10, "keep the blocks that cannot run here few"


def test_every_page_says_who_it_is_for() -> None:
    pages = sorted((ROOT / "docs").rglob("*.md"))
    missing = []
    for page in pages:
        lines = [line for line in page.read_text().split("\n") if line.strip()]
        if not (lines[0].startswith("# ") and lines[1].startswith("_For: ")):
            missing.append(relative(page))
    assert not missing, f"pages without a '_For: …_' line after the title: {missing}"


def test_the_readme_stays_short_and_opens_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.split("\n")) <= 201, "the README is a map: at most 200 lines"
    first = next(b for b in BLOCKS if b.path == "README.md")
    assert first.tag == "sh"
    assert [line.split()[:2] for line in first.body.splitlines()] == [
        ["make", "run"], ["make", "test"]]


def test_relative_links_between_pages_resolve() -> None:
    broken = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            if not resolved.exists():
                broken.append(f"{relative(path)}: {target}")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{relative(path)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def _anchors(page: Path) -> set[str]:
    headings = re.findall(r"^#+ (.+)$", page.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


# -- snippets of real files -----------------------------------------------------------

@pytest.mark.parametrize("block", _selected(lambda b: b.marker == "snippet"),
                         ids=_ids(_selected(lambda b: b.marker == "snippet")))
def test_a_snippet_is_byte_for_byte_its_file(block: Block) -> None:
    path, start, end = block.snippet_target()
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    expected = "".join(lines[(start or 1) - 1:end or len(lines)])
    if block.body == expected:
        return
    hint = ""
    wanted = block.body.splitlines(keepends=True)
    for first in range(len(lines) - len(wanted) + 1):
        if lines[first:first + len(wanted)] == wanted:
            hint = f"; the block is lines {first + 1}-{first + len(wanted)} now"
    pytest.fail(f"{block.where}: the block is not {block.marker_value}{hint}")


# -- data formats ---------------------------------------------------------------------

DATA = _selected(lambda b: b.tag in DATA_TAGS)


@pytest.mark.parametrize("block", DATA, ids=_ids(DATA))
def test_a_data_block_parses(block: Block, tmp_path: Path) -> None:
    try:
        _parse(block, tmp_path)
    except (ValueError, yaml.YAMLError) as error:  # JSON, TOML and YAML errors among them
        pytest.fail(f"{block.where}: the {block.tag} does not parse: {error}")


def _parse(block: Block, tmp_path: Path) -> None:
    if block.tag == "json":
        json.loads(block.body)
    elif block.tag == "yaml":
        yaml.safe_load(block.body)
    elif block.tag == "toml":
        parsed = tomllib.loads(block.body)
        if parsed and all(isinstance(v, dict) and "types" in v for v in parsed.values()):
            _load_as_profiles(block, parsed, tmp_path)
    else:  # env, ini: KEY=value lines (ini: [sections] too), comments and blank lines
        section = r"|\[[^\]]+\]" if block.tag == "ini" else ""
        pattern = re.compile(rf"^(\s*(#.*)?|[A-Za-z_][A-Za-z0-9_]*=\S.*{section})$")
        wrong = [line for line in block.body.splitlines() if not pattern.match(line)]
        assert not wrong, f"{block.where}: not KEY=value: {wrong}"


def profile_loader() -> Callable[[Path], Any]:
    """The product's profile loader, wherever the package keeps it now."""
    for module in ("broker.domain.profiles", "broker.profiles"):
        try:
            loader: Callable[[Path], Any] = importlib.import_module(module).load_profiles
        except (ImportError, AttributeError):
            continue
        return loader
    pytest.fail("no load_profiles in broker.domain.profiles or broker.profiles")


def _load_as_profiles(block: Block, parsed: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(block.body)
    loaded = {profile.name for profile in profile_loader()(path)}
    assert loaded == set(parsed), f"{block.where}: loaded {loaded}, not {set(parsed)}"


# -- code -------------------------------------------------------------------------------

PYTHON = _selected(lambda b: b.tag == "python" and b.marker is None)


def test_a_python_block_runs(tmp_path: Path) -> None:
    """Python blocks that are not snippets of a tested file (none today: examples that
    need a stack or an app live in docs/examples/) run in a fresh interpreter."""
    for block in PYTHON:
        done = subprocess.run([sys.executable, "-c", block.body], cwd=tmp_path,
                              env=clean_env(), capture_output=True, text=True, timeout=60,
                              check=False)
        assert done.returncode == 0, f"{block.where}:\n{done.stderr}"


def node() -> str:
    found = shutil.which("node")
    require_system("node", found is not None, "apt-get install nodejs")
    assert found is not None
    return found


def node_check(source: str, suffix: str, where: str, folder: Path) -> None:
    script = folder / f"block{len(list(folder.iterdir()))}{suffix}"
    script.write_text(source)
    done = subprocess.run([node(), "--check", str(script)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, f"{where}: node --check failed:\n{done.stderr}"


def inline_scripts(html: str) -> list[tuple[str, str]]:
    """Each inline <script>'s source, and the suffix node checks it as."""
    found = []
    for attributes, source in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.DOTALL):
        if "src=" in attributes:
            assert not source.strip(), "a <script src> with a body"
            continue
        found.append((source, ".mjs" if 'type="module"' in attributes else ".cjs"))
    return found


SCRIPTS = _selected(lambda b: b.tag in SCRIPT_TAGS)


@pytest.mark.parametrize("block", SCRIPTS, ids=_ids(SCRIPTS))
def test_a_script_block_parses(block: Block, tmp_path: Path) -> None:
    if block.tag == "html":
        scripts = inline_scripts(block.body)
        assert scripts, f"{block.where}: an html block with no inline script to check"
        for source, suffix in scripts:
            node_check(source, suffix, block.where, tmp_path)
    else:
        node_check(block.body, ".mjs", block.where, tmp_path)


# -- commands ---------------------------------------------------------------------------

SHELL_PAGES = sorted({b.path for b in BLOCKS if b.tag in SHELL_TAGS and b.marker is None},
                     key=lambda p: (p != "README.md", p))


def shell_script(page: str) -> str:
    """The page's command blocks, in order, as one bash script."""
    parts = [
        "set -euo pipefail",
        # A dry run of every make target the page names.
        'make() { command make -n -C "$DOCS_REPO" "$@" > /dev/null; }',
        "trap 'echo \"failed in the block at $DOCS_BLOCK\" >&2' ERR",
    ]
    for block in BLOCKS:
        if block.path == page and block.tag in SHELL_TAGS and block.marker is None:
            parts += [f"DOCS_BLOCK={block.where}", block.body]
    return "\n".join(parts) + "\n"


@pytest.mark.parametrize("page", SHELL_PAGES)
def test_a_pages_commands_run_as_written(page: str, stack: Stack) -> None:
    folder = stack.reader_folder(page.replace("/", "_"))
    env = clean_env() | {"BROKER": stack.url, "TOKEN": stack.token("alice"),
                         "DOCS_REPO": str(ROOT), "TMPDIR": str(folder)}
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run([bash, "-c", shell_script(page)], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{page}: exit {done.returncode}\n{output[-4000:]}"
    for expected in EXPECTED_OUTPUT.get(page, []):
        assert expected in done.stdout, f"{page}: {expected!r} not in\n{done.stdout[-4000:]}"


def test_every_page_with_expected_output_has_commands() -> None:
    assert set(EXPECTED_OUTPUT) <= set(SHELL_PAGES)

