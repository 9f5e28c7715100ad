"""Client file names: cleaned into safe metadata, never used as keys or paths.

Also builds Content-Disposition values (RFC 6266, with RFC 5987 `filename*`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal
from urllib.parse import quote

MAX_FILENAME_BYTES = 255
# Windows device names stay dangerous with any extension ("con.txt").
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$", re.IGNORECASE)
# Bidi embeddings, overrides and isolates let "gpj.exe" display as "exe.jpg".
_BIDI = dict.fromkeys(
    [0x200E, 0x200F, 0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)


def _visible(char: str) -> bool:
    # Cc: control, Cf: format (zero-width, bidi), Cs/Co/Cn: surrogates, private, unassigned.
    return unicodedata.category(char)[0] != "C"


def clean_filename(raw: str) -> str:
    """A display-safe file name, or '' when nothing usable is left."""
    name = unicodedata.normalize("NFC", raw).translate(_BIDI)
    name = re.split(r"[/\\]", name)[-1]  # a path's last part only
    name = "".join(c for c in name if _visible(c))
    name = " ".join(name.split()).strip(" .")
    if _RESERVED.match(name):
        name = "_" + name
    return _truncate_utf8(name, MAX_FILENAME_BYTES)


def _truncate_utf8(name: str, limit: int) -> str:
    """Shorten to `limit` UTF-8 bytes, keeping the extension and whole characters."""
    if len(name.encode()) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext.encode()) > 16:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    budget = limit - len(suffix.encode())
    return stem.encode()[:budget].decode("utf-8", "ignore").rstrip(" .") + suffix


def content_disposition(
    filename: str, disposition: Literal["attachment", "inline"] = "attachment"
) -> str:
    """A header value every browser reads, for any Unicode name (RFC 6266 / 5987)."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r'[^A-Za-z0-9._ ()+,=@-]', "_", ascii_name).strip() or "download"
    value = f'{disposition}; filename="{ascii_name}"'
    if ascii_name != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value
