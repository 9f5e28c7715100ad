"""The broker on AWS Lambda behind an HTTP API, through apig-wsgi."""

from __future__ import annotations

from functools import cache
from typing import Any

from apig_wsgi import make_lambda_handler

from broker.web import create_app


@cache
def _handler() -> Any:
    # Built on the first request, not at import: clients are made once per container.
    return make_lambda_handler(create_app(), binary_support=True)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = _handler()(event, context)
    return response
