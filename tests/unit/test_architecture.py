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


def test_the_domain_importing_the_web_edge_breaks_the_layers(tree: Path) -> None:
    add_import(tree / "broker/domain/keys.py", "from broker.web import create_app")
    result = lint_copy(tree)
    assert result.returncode != 0
    assert "broker.domain is not allowed to import broker.web" in result.stdout
    assert "broker.domain.keys -> broker.web" in result.stdout


def test_the_settings_importing_the_records_breaks_the_layers(tree: Path) -> None:
    add_import(tree / "broker/settings.py", "from broker.domain.records import model")
    result = lint_copy(tree)
    assert result.returncode != 0
    assert "broker.settings is not allowed to import broker.domain" in result.stdout


def test_the_validator_lambda_reaching_the_dev_stack_breaks_a_contract(tree: Path) -> None:
    add_import(tree / "lambdas/validator/handler.py", "import broker.devstack.stack")
    result = lint_copy(tree)
    assert result.returncode != 0
    assert "lambdas.validator.handler -> broker.devstack.stack" in result.stdout


def test_two_sibling_modules_importing_each_other_break_the_no_cycle_contract(
        tree: Path) -> None:
    # The cycle contract names the import that would break the cycle.
    add_import(tree / "broker/devstack/judging.py", "import broker.devstack.stack")
    result = lint_copy(tree)
    assert result.returncode != 0
    assert "No import cycle" in result.stdout
    assert "- .judging -> .stack" in result.stdout
