import json

import pytest

from broker.validator.events import MalformedEvent, refs_from_notification, refs_from_sqs_body
from tests.samples import load_event


def test_an_s3_notification_names_the_created_object_with_its_key_decoded() -> None:
    (ref,) = refs_from_notification(load_event("s3_object_created.json"))
    assert ref.bucket == "uploads-incoming"
    assert ref.key == "incoming/up_0123456789abcdef0123456789abcdef"
    assert ref.etag == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert ref.size == 1024


def test_plus_signs_in_keys_are_spaces() -> None:
    event = load_event("s3_object_created.json")
    event["Records"][0]["s3"]["object"]["key"] = "incoming/a+b%2Bc"
    assert refs_from_notification(event)[0].key == "incoming/a b+c"


def test_the_test_event_and_removals_name_nothing() -> None:
    assert refs_from_notification(load_event("s3_test_event.json")) == []
    assert refs_from_notification(load_event("s3_object_removed.json")) == []


def test_an_sqs_body_and_an_sns_wrapped_body_are_read_alike() -> None:
    body = json.dumps(load_event("s3_object_created.json"))
    wrapped = json.dumps({"Type": "Notification", "Message": body})
    assert refs_from_sqs_body(body) == refs_from_sqs_body(wrapped)


@pytest.mark.parametrize("body", ["not json", "[]", '{"Records": 3}',
                                  '{"Records": [{"eventName": "ObjectCreated:Put"}]}'])
def test_unreadable_bodies_are_malformed(body: str) -> None:
    with pytest.raises(MalformedEvent):
        refs_from_sqs_body(body)
