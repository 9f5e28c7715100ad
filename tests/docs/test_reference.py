"""The reference pages say what the product does: every setting it reads, every command
and option it takes, every code it answers, every key a profile may set, every path
it serves. A setting, option or code added or renamed without its page fails here."""

from __future__ import annotations

import importlib
import re
import subprocess
import tomllib
from typing import Any

import pytest
import requests

from tests.docs.blocks import ROOT, all_blocks, doc_files, relative
from tests.docs.conftest import BROKER_COMMAND, Stack, clean_env

REFERENCE = ROOT / "docs" / "reference"


def _module_with(names: tuple[str, ...], attribute: str) -> Any:
    """The first of these modules that has `attribute` (the package is being re-laid)."""
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, attribute):
            return module
    pytest.fail(f"no {attribute} in any of {names}")


def settings_names() -> set[str]:
    settings = _module_with(("broker.settings", "broker.common.settings"), "Settings")
    prefix = getattr(settings, "ENV_PREFIX", "BROKER_")
    return {prefix + name.upper() for name in settings.Settings.model_fields}


def _first_column(text: str) -> list[str]:
    """The first cell of each table row that starts with code."""
    return [row.split("|")[1] for row in text.split("\n") if row.startswith("| `")]


def test_the_configuration_table_names_every_setting_and_no_other() -> None:
    table = (REFERENCE / "configuration.md").read_text()
    table = table[:table.index("## Clock tolerances")]
    documented = set(re.findall(r"`(BROKER_[A-Z0-9_]+)`", "".join(_first_column(table))))
    known = settings_names()
    assert not known - documented, f"settings missing from the table: {known - documented}"
    assert not documented - known, f"the table names no such settings: {documented - known}"


def test_every_broker_variable_the_pages_name_is_a_setting() -> None:
    known = settings_names()
    unknown = []
    for page in [*doc_files(), *sorted((ROOT / "docs").rglob("*.example"))]:
        for name in set(re.findall(r"\bBROKER_[A-Z0-9_]*[A-Z0-9]\b", page.read_text())):
            if name not in known:
                unknown.append(f"{relative(page)}: {name}")
    assert not unknown, "\n".join(sorted(unknown))


def _help(*command: str) -> str:
    done = subprocess.run([str(BROKER_COMMAND), *command, "--help"], env=clean_env(),
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def test_every_command_and_option_on_the_command_line_page_exists() -> None:
    page = (REFERENCE / "command-line.md").read_text()
    section = page[page.index("## broker"):]
    usages = re.findall(r"`(broker [a-z]+(?: (?:list|replay|link|release|purge|export))?)([^`]*)`",
                        section)
    assert len(usages) >= 10
    top = _help()
    problems = []
    for command, rest in usages:
        words = command.split()[1:]
        if words[0] not in top:
            problems.append(f"broker {words[0]}: no such command")
            continue
        listed = _help(*words)
        problems += [f"{command} {option}: not in --help" for option in
                     re.findall(r"--[a-z][a-z-]*", rest) if option not in listed]
    assert not problems, "\n".join(problems)


def test_every_code_on_the_codes_page_is_one_the_product_answers() -> None:
    codes = {code for cell in _first_column((REFERENCE / "codes.md").read_text())
             for code in re.findall(r"`([a-z_]+)`", cell)}
    assert len(codes) > 40
    source = "".join(path.read_text() for folder in ("broker", "lambdas")
                     for path in (ROOT / folder).rglob("*.py"))
    unknown = sorted(c for c in codes if f'"{c}"' not in source and f"'{c}'" not in source)
    assert not unknown, f"codes the product never answers: {unknown}"


def test_the_profile_example_shows_every_key_a_profile_may_set() -> None:
    blocks, _ = all_blocks()
    (example,) = [b for b in blocks if b.path == "docs/reference/profiles.md"
                  and b.tag == "toml"]
    (profile,) = tomllib.loads(example.body).values()
    profiles = _module_with(("broker.domain.profiles", "broker.profiles"), "Profile")
    keys = set(profiles.Profile.model_fields) - {"name"}
    assert set(profile) == keys, f"keys missing: {keys - set(profile)}"


def test_every_path_the_openapi_document_lists_is_on_the_api_page(stack: Stack) -> None:
    document = requests.get(f"{stack.url}/openapi.json", timeout=30).json()
    page = (REFERENCE / "api.md").read_text().replace("{id}", "{upload_id}")
    missing = [path for path in document["paths"] if path not in page]
    assert not missing, f"paths the API page does not describe: {missing}"
