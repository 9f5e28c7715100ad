"""Why an upload was refused or rejected: one table of stable codes and messages.

The broker answers a refused request with one of these codes (HTTP 422); the
validator records one on a rejected upload. Browsers show the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Reason:
    """A stable machine code and the sentence a person reads."""

    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


REASONS: Final[dict[str, str]] = {
    # Refused by the broker before any upload (422).
    "unknown_profile": "There is no upload profile with that name.",
    "type_not_allowed": "This kind of file is not accepted here.",
    "extension_not_allowed": "The file name's extension is not accepted for this kind of file.",
    "too_large": "The file is larger than this profile allows.",
    "too_small": "The file is smaller than this profile allows.",
    "invalid_filename": "The file name is empty or cannot be used.",
    "quota_exceeded": "You have used up your storage; delete some files to upload more.",
    # Judged by the validator on the stored bytes.
    "empty": "The uploaded file is empty.",
    "size_mismatch": "The uploaded file's size differs from the size declared.",
    "type_mismatch": "The file's content is not of the type it was declared as.",
    "extension_mismatch": "The file name's extension does not match the file's content.",
    "unexpected_object": "The stored object does not belong to a pending upload.",
    "expired": "The upload arrived after its upload permission expired.",
    "forbidden_type": "Programs, scripts, web pages and installers are never accepted.",
    "malformed": "The file is damaged or not a valid file of its type.",
    "polyglot": "The file hides other content inside or after itself.",
    "decompression_bomb": "The file expands to far more data than it appears to hold.",
    "too_many_frames": "The animation has more frames than this profile allows.",
    "active_content": "The file contains scripts, macros or actions that could run.",
    "encrypted": "Encrypted or password-protected files cannot be checked or accepted.",
    "invalid_text": "Text files must be UTF-8 (or UTF-16 with a byte order mark) and "
                    "contain no NUL bytes.",
    "formula_injection": "Spreadsheet cells that start with =, +, -, @, tab or CR are not "
                         "accepted here.",
    "malware": "The file contains malware.",
    "too_large_to_scan": "The file is too large for the malware scanner.",
}


def reason(code: str) -> Reason:
    """The reason for a code; an unknown code is a programming error."""
    return Reason(code, REASONS[code])
