"""Refusals a person can act on: kinds of file named in words, both sizes named, and
the MIME types kept in the problem's fields for programs."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from broker.aws.clients import AwsClients
from broker.domain import type_names
from broker.domain.profiles import ProfileError, load_profiles
from broker.settings import Settings, SettingsError, load_settings
from broker.validator.events import ObjectRef
from broker.validator.judge import Validator
from tests.samples import HTML_AS_PNG, auth, pdf_bytes, png_bytes


def create(client: FlaskClient, profile: str, filename: str, content_type: str,
           size: int) -> tuple[int, dict[str, object]]:
    reply = client.post("/v1/uploads", headers=auth("alice"), json={
        "profile": profile, "filename": filename, "content_type": content_type, "size": size})
    return reply.status_code, reply.get_json()


def test_a_pdf_for_an_avatar_is_refused_in_words_with_the_types_for_programs(
        client: FlaskClient) -> None:
    status, problem = create(client, "avatar", "cv.pdf", "application/pdf", 1000)
    assert status == 422
    assert problem["code"] == "type_not_allowed"
    assert problem["detail"] == ("PDF documents are not accepted for avatar uploads; "
                                 "accepted: PNG, JPEG, WebP, GIF, HEIC, HEIF and AVIF images.")
    assert problem["content_type"] == "application/pdf"
    assert "image/png" in problem["accepted"]  # type: ignore[operator]


def test_a_wrong_extension_names_the_kind_and_the_right_names(client: FlaskClient) -> None:
    status, problem = create(client, "avatar", "me.gif", "image/jpeg", 1000)
    assert status == 422
    assert problem["detail"] == "A JPEG image must be named .jpg or .jpeg."
    assert problem["accepted_extensions"] == [".jpg", ".jpeg"]


def judged(client: FlaskClient, aws: AwsClients, validator: Validator, data: bytes,
           declared_size: int, content_type: str = "image/png") -> dict[str, str]:
    status, created = create(client, "avatar", "me.png", content_type, declared_size)
    assert status == 201, created
    key = created["upload"]["fields"]["key"]  # type: ignore[index]
    aws.s3.put_object(Bucket="uploads-incoming", Key=key, Body=data,
                      Metadata={"upload-id": str(created["id"])})
    validator.process(ObjectRef("uploads-incoming", key))
    record = client.get(f"/v1/uploads/{created['id']}", headers=auth("alice")).get_json()
    return record["reason"]  # type: ignore[no-any-return]


def test_a_size_mismatch_names_both_sizes(client: FlaskClient, aws: AwsClients,
                                          validator: Validator) -> None:
    data = png_bytes()
    reason = judged(client, aws, validator, data, len(data) + 1000)
    assert reason["code"] == "size_mismatch"
    assert reason["message"] == (f"The uploaded file is {len(data):,} bytes, but "
                                 f"{len(data) + 1000:,} bytes were declared.")


def test_a_type_mismatch_says_what_the_file_is(client: FlaskClient, aws: AwsClients,
                                               validator: Validator) -> None:
    reason = judged(client, aws, validator, HTML_AS_PNG, len(HTML_AS_PNG))
    assert reason["code"] == "type_mismatch"
    assert reason["message"] == "The file is an HTML page, not a PNG image."


def test_a_pdf_posing_as_a_png_is_named_a_pdf(client: FlaskClient, aws: AwsClients,
                                             validator: Validator) -> None:
    pdf = pdf_bytes()
    reason = judged(client, aws, validator, pdf, len(pdf))
    assert reason["message"] == "The file is a PDF document, not a PNG image."


def test_kinds_of_file_read_as_words() -> None:
    assert type_names.one("video/mp4") == "an MP4 video"
    assert type_names.one("application/zip") == "a ZIP archive"
    assert type_names.one("application/x-unheard-of") == \
        "a file of type application/x-unheard-of"
    assert type_names.listing(["application/pdf", "text/csv", "text/plain"]) == \
        "PDF documents; CSV and plain text files"


def test_a_misspelt_setting_is_refused_with_the_closest_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_PUBLIC_BASE_ULR", "https://cdn.example.test")
    with pytest.raises(SettingsError, match="did you mean BROKER_PUBLIC_BASE_URL"):
        load_settings()


def test_listing_no_webhook_deliveries_says_so(
        settings: Settings, aws: AwsClients, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from broker.cli import main

    monkeypatch.setenv("BROKER_JWT_SECRET", settings.signing_secret().decode())
    assert main(["webhooks", "list"]) == 0
    assert capsys.readouterr().out.strip() == "no pending webhook deliveries"
    assert main(["webhooks", "list", "--dead"]) == 0
    assert capsys.readouterr().out.strip() == "no dead webhook deliveries"


def test_unreachable_records_name_the_store_and_why(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from broker.cli import main

    monkeypatch.setenv("BROKER_DYNAMODB_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    assert main(["webhooks", "list"]) == 1
    error = capsys.readouterr().err
    assert "the upload records (DynamoDB table 'uploads') are unavailable" in error
    assert "Could not connect to the endpoint URL" in error


@pytest.mark.parametrize(("body", "expected"), [
    ('[doc]\nvisibility = "secret"\nmax_size = "5 MiB"\n[doc.types]\n"application/pdf" = '
     '["pdf"]\n', "line 2: profile 'doc': visibility: Input should be 'public' or 'private' "
     "(got 'secret')"),
    ('[doc]\nvisibility = "private"\nmax_size = "five"\n[doc.types]\n"text/plain" = ["txt"]\n',
     "line 3: profile 'doc': max_size: cannot read 'five' as a size"),
    ('[doc\nvisibility = "private"\n', "not valid TOML: Expected ']' at the end of a table "
     "declaration (at line 1, column 5)"),
])
def test_a_broken_profiles_file_is_one_line_naming_the_file_the_line_and_the_problem(
        tmp_path: Path, body: str, expected: str) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(body)
    with pytest.raises(ProfileError) as refused:
        load_profiles(path)
    message = str(refused.value)
    assert message.startswith(f"{path}")
    assert expected in message
    assert "\n" not in message
