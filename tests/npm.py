"""npm packages the tests and the benchmark run (never committed): installed once into
`.cache/<name>` from the registry, at the pinned version."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def npm_install(name: str, package: str, version: str) -> Path:
    """`.cache/<name>` holding `package@version`; installs it when missing."""
    cache = ROOT / ".cache" / name
    if not (cache / "node_modules" / package / "package.json").exists():
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            raise FileNotFoundError("node and npm are needed (apt-get install nodejs npm)")
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--no-save", "--no-audit", "--no-fund",
                        "--loglevel=error", "--prefix", str(cache), f"{package}@{version}"],
                       check=True, timeout=600, capture_output=True)
    return cache


def npm_available() -> bool:
    return shutil.which("npm") is not None and shutil.which("node") is not None
