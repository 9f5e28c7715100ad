"""Upload profiles: what may be uploaded where. One module for broker and validator.

The broker checks a declared upload against its profile before presigning; the
validator checks the stored bytes against the same profile afterwards.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from broker.common.errors import InvalidRequest
from broker.domain import type_names
from broker.domain.pictures.model import RENDITION_FORMATS, RenditionSpec
from broker.domain.quotas import Quota

# S3's largest object (sent in parts, and promoted by a copy in parts above 5 GiB).
MAX_PROFILE_SIZE = 5 * 1024**4
_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*$", re.IGNORECASE)


def parse_size(value: object) -> int:
    """Bytes from an int or a string such as '5 MiB' or '25MB'."""
    if isinstance(value, bool):
        raise ValueError("a size is a number of bytes or a string like '5 MiB'")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"cannot read {value!r} as a size; write bytes or e.g. '5 MiB'")
    number, unit = match.groups()
    return int(float(number) * _UNITS[(unit or "b").lower()])


Size = Annotated[int, BeforeValidator(parse_size), Field(ge=0, le=MAX_PROFILE_SIZE)]

# Never accepted, whatever a profile says: pages, scripts, programs, installers.
FORBIDDEN_TYPES = frozenset({
    "text/html", "application/xhtml+xml", "text/javascript", "application/javascript",
    "application/x-javascript", "application/ecmascript", "text/x-shellscript",
    "text/x-script.python", "text/x-perl", "text/x-php", "application/x-httpd-php",
    "text/x-msdos-batch", "application/vnd.microsoft.portable-executable",
    "application/x-dosexec", "application/x-msdownload", "application/x-executable",
    "application/x-sharedlib", "application/x-pie-executable", "application/x-mach-binary",
    "application/x-elf", "application/x-java-applet", "application/java-archive",
    "application/x-java-archive", "application/x-ms-shortcut", "application/x-msi",
    "application/x-ms-installer", "application/vnd.debian.binary-package",
    "application/x-rpm", "application/x-apple-diskimage", "application/vnd.ms-cab-compressed",
})


def human_size(size: int) -> str:
    """Bytes as a person reads them, in the binary units the profiles use: '5 MiB'."""
    if size == 1:
        return "1 byte"
    value: float = size
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    text = f"{value:.1f}".removesuffix(".0") if unit != "bytes" else str(size)
    return f"{text} {unit}"


def normalize_type(content_type: str) -> str:
    """'Image/PNG; charset=x' -> 'image/png': parameters never decide a type."""
    return content_type.split(";", 1)[0].strip().lower()


# What clients send for a file whose type they cannot tell.
UNTOLD_TYPES = frozenset({"", "application/octet-stream"})


def extension_of(filename: str) -> str:
    """The last extension, lower-case, without the dot ('' when there is none)."""
    stem, dot, ext = filename.rpartition(".")
    return ext.lower() if dot and stem else ""


class Rendition(BaseModel):
    """A size a profile serves pictures in: at most `width` wide (and `height` high when
    given), or exactly width x height cut from the middle with fit = "crop"; written in
    each of `formats` (the first is the one to show, the others fallbacks)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int = Field(gt=0, le=8192)
    height: int | None = Field(default=None, gt=0, le=8192)
    fit: Literal["fit", "crop"] = "fit"
    formats: tuple[Literal["webp", "jpeg", "avif", "png"], ...] = Field(
        default=("webp",), min_length=1)

    def spec(self) -> RenditionSpec:
        return RenditionSpec(self.width, self.height, self.fit,
                             tuple(RENDITION_FORMATS[f] for f in self.formats))


class Profile(BaseModel):
    """One kind of upload: who sees it, which types, which sizes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    visibility: Literal["public", "private"]
    max_size: Size
    min_size: Size = 1
    types: dict[str, tuple[str, ...]]
    # Images: decoded pixels (per frame) and frames of an animation.
    max_pixels: int = Field(default=40_000_000, gt=0)
    max_frames: int = Field(default=100, gt=0)
    # CSV cells a spreadsheet would run as formulas: refuse the file, or prefix them with '.
    csv_formulas: Literal["reject", "neutralize"] = "reject"
    # Text and CSV: the encodings accepted. UTF-8 (with or without a byte order mark) and
    # UTF-16 with one are what spreadsheets save; Windows-1252 is Excel's "CSV" on Windows.
    text_encodings: tuple[Literal["utf-8", "utf-16", "windows-1252"], ...] = ("utf-8", "utf-16")
    # SVG can run script; a public profile serves it only when it opts in to sanitizing.
    sanitize_svg: bool = False
    # Raster images: serve a fresh file written from the pixels alone (no EXIF, GPS,
    # comments or unknown chunks). Default: on for public profiles, off for private ones.
    reencode: bool | None = None
    # Pictures: smaller copies made at the verdict from the judged pixels and served
    # beside the file, e.g. [{width = 64, height = 64, fit = "crop"}, {width = 256}].
    renditions: tuple[Rendition, ...] = ()
    # The owner's storage quota for uploads of this profile, instead of the deployment's
    # (BROKER_QUOTA_BYTES, BROKER_QUOTA_FILES); usage counts all of the owner's files.
    quota_bytes: Size | None = None
    quota_files: int | None = Field(default=None, gt=0)
    # Malware scanning of large files: scan at most this much (default: the deployment's
    # BROKER_CLAMD_STREAM_MAX, which clamd's StreamMaxLength must allow); a file above it is
    # refused too_large_to_scan unless this profile explicitly serves it unscanned.
    scan_max_size: Size | None = None
    serve_unscanned_over_limit: bool = False

    @field_validator("types")
    @classmethod
    def _normalize_types(cls, types: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        if not types:
            raise ValueError("a profile must accept at least one type")
        forbidden = sorted(normalize_type(t) for t in types if normalize_type(t) in FORBIDDEN_TYPES)
        if forbidden:
            raise ValueError(f"{', '.join(forbidden)} can never be accepted")
        return {
            normalize_type(mime): tuple(ext.lower().lstrip(".") for ext in exts)
            for mime, exts in types.items()
        }

    def quota(self, deployment: Quota) -> Quota:
        """The storage quota an upload of this profile is held to."""
        return Quota(deployment.bytes if self.quota_bytes is None else self.quota_bytes,
                     deployment.files if self.quota_files is None else self.quota_files)

    @property
    def rendition_specs(self) -> tuple[RenditionSpec, ...]:
        return tuple(rendition.spec() for rendition in self.renditions)

    @property
    def reencodes_images(self) -> bool:
        return self.visibility == "public" if self.reencode is None else self.reencode

    def declared_type(self, filename: str, content_type: str) -> str:
        """The type a client declared; when it could not tell (a browser sends none for a
        .heic its system does not know), the type this profile takes files of that
        extension as (the one listing it first, when several list it)."""
        content_type = normalize_type(content_type)
        if content_type not in UNTOLD_TYPES:
            return content_type
        extension = extension_of(filename)
        listing = [t for t, extensions in self.types.items() if extension in extensions]
        primary = [t for t in listing if self.types[t][0] == extension]
        return (primary or listing or [content_type])[0]

    def allows_type(self, content_type: str) -> bool:
        return normalize_type(content_type) in self.types

    def allows_extension(self, content_type: str, filename: str) -> bool:
        return extension_of(filename) in self.types.get(normalize_type(content_type), ())

    def check_declared(self, filename: str, content_type: str, size: int) -> None:
        """Refuse a declared upload this profile does not accept, with the reason's code."""
        if not self.allows_type(content_type):
            raise InvalidRequest("type_not_allowed", self.refusal_of_type(content_type),
                                 content_type=content_type, accepted=sorted(self.types))
        if not self.allows_extension(content_type, filename):
            extensions = ["." + e for e in self.types[normalize_type(content_type)]]
            kind = type_names.one(normalize_type(content_type))
            raise InvalidRequest(
                "extension_not_allowed",
                f"{kind[0].upper()}{kind[1:]} must be named {' or '.join(extensions)}.",
                content_type=content_type, accepted_extensions=extensions)
        self.check_size(size)

    def refusal_of_type(self, content_type: str) -> str:
        """'PDF documents are not accepted for avatar uploads; accepted: PNG, JPEG, GIF
        and WebP images.'"""
        kind = type_names.several(normalize_type(content_type))
        return (f"{kind[0].upper()}{kind[1:]} are not accepted for {self.name} uploads; "
                f"accepted: {type_names.listing(self.types)}.")

    def size_problem(self, size: int) -> str | None:
        """The reason code a size breaks, or None when it fits."""
        if size > self.max_size:
            return "too_large"
        if size < self.min_size:
            return "empty" if size == 0 else "too_small"
        return None

    def check_size(self, size: int) -> None:
        problem = self.size_problem(size)
        if problem is not None:
            limit = self.max_size if problem == "too_large" else self.min_size
            this = human_size(size)
            if this == human_size(limit):  # rounding would hide the difference
                this = f"{size} bytes"
            raise InvalidRequest(
                problem, f"'{self.name}' accepts files from {human_size(self.min_size)} to "
                         f"{human_size(self.max_size)}; this one is {this}.",
                limit=limit,
            )

    def public_view(self) -> dict[str, Any]:
        """What clients may know to check a file before uploading it."""
        return {
            "name": self.name,
            "description": self.description,
            "visibility": self.visibility,
            "max_size": self.max_size,
            "min_size": self.min_size,
            "types": {mime: list(exts) for mime, exts in self.types.items()},
        }


class ProfileError(ValueError):
    """A profiles file that cannot be used; the message names the file and the fault."""


class Profiles:
    """The named profiles of one deployment."""

    def __init__(self, profiles: dict[str, Profile]) -> None:
        if not profiles:
            raise ProfileError("no upload profiles are defined")
        self._profiles = profiles

    def find(self, name: str) -> Profile | None:
        """The profile of that name, if this deployment has one."""
        return self._profiles.get(name)

    def get(self, name: str) -> Profile:
        """The profile a request names; a name the deployment lacks is the client's fault."""
        profile = self.find(name)
        if profile is None:
            raise InvalidRequest(
                "unknown_profile",
                f"There is no profile {name!r}; known: {', '.join(sorted(self._profiles))}.",
            )
        return profile

    def __iter__(self) -> Iterator[Profile]:
        return iter(self._profiles.values())

    @classmethod
    def from_toml(cls, text: str, source: str = "profiles") -> Profiles:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ProfileError(f"{source}: not valid TOML: {exc}") from exc
        profiles = {}
        for name, body in raw.items():
            try:
                profiles[name] = Profile(name=name, **body)
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(part) for part in first["loc"])
                line = _line_of(text, name, str(first["loc"][0]) if first["loc"] else "")
                said = first["msg"].removeprefix("Value error, ")
                value = repr(first.get("input")) if first["loc"] else ""
                got = f" (got {value})" if value and value not in said else ""
                raise ProfileError(f"{source}, line {line}: profile {name!r}: "
                                   f"{field or 'the profile'}: {said}{got}") from None
            except TypeError as exc:
                raise ProfileError(f"{source}: profile {name!r}: {exc}") from exc
        return cls(profiles)


def _line_of(text: str, profile: str, key: str) -> int:
    """The line of `key` in the profile's table (or its sub-table), else the table's."""
    table, header = "", 1
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            table = stripped.strip("[] ")
            if table == profile:
                header = number
            if key and table == f"{profile}.{key}":
                return number
        elif table == profile and key and stripped.split("=")[0].strip().strip('"') == key:
            return number
    return header


def load_profiles(path: Path | None = None) -> Profiles:
    """The deployment's profiles file, or the shipped defaults."""
    if path is None:
        text = resources.files("broker.domain").joinpath("default_profiles.toml").read_text()
        return Profiles.from_toml(text, "default_profiles.toml")
    try:
        return Profiles.from_toml(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise ProfileError(f"cannot read profiles file {path}: {exc.strerror}") from exc
