"""How the processes log: plain lines for people (the default) or one JSON object a
line for log pipelines (BROKER_LOG_FORMAT=json). Every line written while handling an
upload names it (`upload_id`), whichever module writes it."""

from __future__ import annotations

import logging
import logging.config
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_upload_id: ContextVar[str | None] = ContextVar("upload_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(upload)s %(message)s"
JSON_FIELDS = "{levelname}{name}{message}{upload_id}"


@contextmanager
def about_upload(upload_id: str | None) -> Iterator[None]:
    """Lines logged inside (in this thread) carry `upload_id`."""
    token = _upload_id.set(upload_id)
    try:
        yield
    finally:
        _upload_id.reset(token)


def set_upload(upload_id: str | None) -> None:
    """Name the upload for the rest of this context (one web request)."""
    _upload_id.set(upload_id)


class UploadIdFilter(logging.Filter):
    """Adds the upload being handled to every record: as `upload_id`, or for plain
    lines as `upload` (" [up_…]", or nothing)."""

    def __init__(self, as_text: bool = True) -> None:
        super().__init__()
        self.as_text = as_text

    def filter(self, record: logging.LogRecord) -> bool:
        upload_id = _upload_id.get()
        if self.as_text:
            record.upload = f" [{upload_id}]" if upload_id else ""
        else:
            record.upload_id = upload_id
        return True


def logging_config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """A dictConfig for the root logger (and gunicorn's, which `broker serve` passes on)."""
    formatter: dict[str, Any] = {"format": TEXT_FORMAT}
    if log_format == "json":
        formatter = {"()": "pythonjsonlogger.json.JsonFormatter", "fmt": JSON_FIELDS,
                     "style": "{", "timestamp": "time",
                     "rename_fields": {"levelname": "level", "name": "logger"}}
    handler = {"class": "logging.StreamHandler", "formatter": "main", "filters": ["upload"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"upload": {"()": UploadIdFilter, "as_text": log_format != "json"}},
        "formatters": {"main": formatter},
        "handlers": {"console": handler},
        "root": {"level": level, "handlers": ["console"]},
        "loggers": {
            # Every emulator call would be logged as a request line.
            "werkzeug": {"level": "WARNING"},
            "gunicorn.error": {"level": level, "handlers": ["console"], "propagate": False},
            "gunicorn.access": {"level": level, "handlers": ["console"], "propagate": False},
        },
    }


def configure(log_format: str = "text", level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(log_format, level))
