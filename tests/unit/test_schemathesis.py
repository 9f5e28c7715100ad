"""Schemathesis against /openapi.json: every check, a bounded number of examples per
operation under a fixed seed, no failure. Generated requests carry a valid token, so
they reach past authentication into the handlers."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from tests.samples import auth

EXAMPLES = 25
# A schema-valid create can still break a profile's rules (a type the profile does not
# take, a size over its limit): those 422s with a reason code are the contract. A
# forbidden body may also be refused for its size alone (413, over 1 MiB).
CONFIG = SchemathesisConfig.from_dict({"checks": {
    "positive_data_acceptance": {"expected-statuses": ["2xx", "3xx", "401", "403", "404",
                                                       "409", "422", "429"]},
    "negative_data_rejection": {"expected-statuses": ["400", "401", "403", "404", "405",
                                                      "406", "409", "413", "415", "422",
                                                      "428", "429", "5xx"]}}})


def documented_answers(operation: Any, mode: GenerationMode, statuses: Counter[str]) -> Any:
    """A property test of one operation. Positive: requests the document allows;
    negative: requests it forbids."""
    kind = f"{operation.label} {mode.value}"

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def answers_as_documented(case: Any) -> None:
        response = case.call_and_validate(headers=auth("schemathesis"))
        statuses[f"{kind} {response.status_code}"] += 1

    return answers_as_documented


def test_the_api_answers_as_its_document_says(app: Flask) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=CONFIG)
    failures: list[str] = []
    statuses: Counter[str] = Counter()
    operations = 0
    for result, mode in itertools.product(schema.get_all_operations(), GenerationMode):
        operation = result.ok()
        operations += 1

        answers_as_documented = documented_answers(operation, mode, statuses)
        try:
            answers_as_documented()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to send wrong: no parameters
        except Exception as exc:
            failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert operations >= 20
    assert failures == [], "\n\n".join(failures)
    print(sorted(statuses.items()))
    assert sum(statuses.values()) >= operations * 5  # the examples really ran
