"""Reading what clients send: JSON bodies and whole numbers, strictly and safely.

Shared by the web layer and the event receivers, so hostile input of one shape
gets the same clear refusal wherever it arrives.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Deeper than any request or notification we accept; deep enough to refuse fast.
MAX_JSON_DEPTH = 32
# ASCII digits only: str.isdigit() and int() also take other scripts' digits and superscripts.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,15}")


class UnreadableJson(ValueError):
    """The bytes are not a JSON document we read."""


def parse_json(data: bytes | str) -> Any:
    """The JSON document in `data`; UnreadableJson says why it is not one."""
    try:
        document = json.loads(data)
    except RecursionError:
        raise UnreadableJson(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnreadableJson(str(exc)) from None
    if _depth(document) > MAX_JSON_DEPTH:
        raise UnreadableJson(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return document


def _depth(document: Any) -> int:
    """Nesting depth, iteratively: a recursive walk is what deep input attacks."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return deepest


def whole_number(text: str) -> int | None:
    """`text` as a non-negative integer written in ASCII digits, or None."""
    return int(text) if _WHOLE_NUMBER.fullmatch(text) else None
