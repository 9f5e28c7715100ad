"""The reference files of docs/self-hosting/ stay true to the product: every command
line they run is one `broker` accepts, and the example settings load."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from broker.cli import build_parser
from broker.settings import load_settings

FILES = Path(__file__).resolve().parents[2] / "docs" / "self-hosting"


def unit_commands() -> list[list[str]]:
    commands = []
    for unit in sorted(FILES.glob("*.service")):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                commands.append(shlex.split(line.removeprefix("ExecStart=")))
    return commands


def compose_commands() -> list[list[str]]:
    services = yaml.safe_load((FILES / "compose.yaml").read_text())["services"]
    return [service["command"] for service in services.values()
            if service.get("command", [""])[0] == "broker"]


@pytest.mark.parametrize("command", unit_commands() + compose_commands(),
                         ids=lambda c: " ".join(c[1:3]))
def test_every_reference_command_line_is_one_broker_accepts(command: list[str]) -> None:
    assert Path(command[0]).name == "broker"
    build_parser().parse_args(command[1:])  # argparse exits on an unknown flag


def test_the_units_and_the_compose_file_start_the_broker_and_the_validator() -> None:
    started = {c[1] for c in unit_commands()} | {c[1] for c in compose_commands()}
    assert started == {"serve", "worker"}


def test_the_example_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    for line in (FILES / "broker.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.events == "http"
    assert settings.database_url is not None
    assert settings.rate_limit_storage.startswith("redis://")
