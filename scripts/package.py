"""`make package`: the validator's and the broker's Lambda zips, built offline.

Wheels for the Lambda runtime (CPython 3.12, manylinux x86_64 up to glibc 2.28) go
beside the product's sources; libmagic comes in the pylibmagic wheel. Entries
are written in sorted order with fixed times, so the same inputs give the same zip.

    python scripts/package.py [--out build]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON_VERSION = "3.12"
# Lambda's Python 3.12 runs on Amazon Linux 2023 (glibc 2.34): wheels for glibc 2.28
# (libvips, libheif) fit it as well as the older manylinux2014 ones.
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
SOURCES = ("broker", "lambdas")
EXTRA = {"validator": ["pylibmagic>=0.5"], "broker": ["apig-wsgi>=2.18"]}
FIXED_TIME = (2020, 1, 1, 0, 0, 0)
# Self-hosting only: on Lambda the runtime is the server and DynamoDB holds the records.
NOT_ON_LAMBDA = ("gunicorn", "psycopg")
# Pure Python, published as source only: built here into a wheel for any platform (its
# compiled half, libvips and the cffi module, comes in the pyvips-binary wheel).
PURE_SOURCE = ("pyvips>", "pyvips=")


def requirements(function: str) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [d for d in project["dependencies"] if not d.startswith(NOT_ON_LAMBDA)]
    return [*wanted, *EXTRA[function]]


def install(function: str, target: Path) -> None:
    wanted = requirements(function)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--target", str(target), "--upgrade"]
    subprocess.run(
        [*pip, *(f"--platform={p}" for p in PLATFORMS), "--implementation", "cp",
         "--python-version",
         PYTHON_VERSION, "--only-binary=:all:",
         *(d for d in wanted if not d.startswith(PURE_SOURCE))], check=True)
    subprocess.run([*pip, "--no-deps", *(d for d in wanted if d.startswith(PURE_SOURCE))],
                   check=True)
    for source in SOURCES:
        shutil.copytree(ROOT / source, target / source,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def write_zip(folder: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if "__pycache__" in path.parts:
                continue
            info = zipfile.ZipInfo(str(path.relative_to(folder)), FIXED_TIME)
            info.external_attr = (0o755 if path.suffix == ".so" or ".so." in path.name
                                  else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(info, path.read_bytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for function in ("validator", "broker"):
        folder = args.out / function
        shutil.rmtree(folder, ignore_errors=True)
        install(function, folder)
        archive = args.out / f"{function}.zip"
        write_zip(folder, archive)
        print(f"{archive.relative_to(ROOT) if archive.is_relative_to(ROOT) else archive}: "
              f"{archive.stat().st_size / 1024 / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
