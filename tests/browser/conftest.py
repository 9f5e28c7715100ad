"""Browser tests: the stack on loopback (the browser fixtures live in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_system
from tests.integration.conftest import running  # noqa: F401  (the stack, for these tests)
from tests.npm import ROOT, npm_available, npm_install

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


AXE_VERSION = "4.10.2"
AXE = ROOT / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="session")
def axe() -> str:
    """axe-core, the accessibility checker, installed from npm on first use."""
    require_system("npm", npm_available(), "apt-get install nodejs npm")
    npm_install("axe", "axe-core", AXE_VERSION)
    return str(AXE)


def serious(violations: list[dict[str, Any]]) -> list[str]:
    """axe-core's serious and critical violations, as lines a person reads."""
    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            f"{[n['target'] for n in v['nodes']][:3]}"
            for v in violations if v["impact"] in ("serious", "critical")]
