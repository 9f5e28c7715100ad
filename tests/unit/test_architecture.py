"""The layers in pyproject.toml are the layers in the code: the import contracts pass on
the tree as it is, and break on an import that runs upward or closes a cycle."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Runs import-linter in a copy of the tree (it looks in its working folder first), past
# the editable install's finder, which would otherwise resolve `broker` to this checkout.
LINT = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
from importlinter.cli import lint_imports
sys.exit(lint_imports(config_filename="pyproject.toml", no_cache=True))
"""


def lint_copy(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", LINT], cwd=tree, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for package in ("broker", "lambdas"):
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "static", "templates"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def add_import(module: Path, line: str) -> None:
    module.write_text(module.read_text() + f"\n{line}\n")


def test_the_tree_as_it_is_keeps_every_contract(tree: Path) -> None:
    result = lint_copy(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "said"), [
    ("broker/domain/keys.py", "from broker.web import create_app",
     ["broker.domain is not allowed to import broker.web",
      "broker.domain.keys -> broker.web"]),
    ("broker/settings.py", "from broker.domain.records import model",
     ["broker.settings is not allowed to import broker.domain"]),
    ("lambdas/validator/handler.py", "import broker.devstack.stack",
     ["lambdas.validator.handler -> broker.devstack.stack"]),
], ids=["domain-to-web", "settings-to-records", "lambda-to-devstack"])
def test_an_import_that_runs_upward_breaks_a_contract_naming_it(
        tree: Path, module: str, line: str, said: list[str]) -> None:
    add_import(tree / module, line)
    result = lint_copy(tree)
    assert result.returncode != 0
    for words in said:
        assert words in result.stdout


def test_two_sibling_modules_importing_each_other_break_the_no_cycle_contract(
        tree: Path) -> None:
    # The cycle contract names the import that would break the cycle.
    add_import(tree / "broker/devstack/judging.py", "import broker.devstack.stack")
    result = lint_copy(tree)
    assert result.returncode != 0
    assert "No import cycle" in result.stdout
    assert "- .judging -> .stack" in result.stdout
