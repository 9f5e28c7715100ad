import contextlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from broker.common import clock
from broker.common.errors import NotAuthenticated
from broker.domain.auth import (
    LEEWAY_SECONDS,
    VERIFIED_FOR_SECONDS,
    TokenVerifier,
    issue_token,
    owner_from_token,
)
from broker.settings import SettingsError, load_settings
from broker.web import create_app

SECRET = b"s" * 32


def test_a_token_names_its_owner() -> None:
    assert owner_from_token(SECRET, issue_token(SECRET, "alice", 60)) == "alice"


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (issue_token(SECRET, "alice", -120), "token_expired"),
        (issue_token(b"o" * 32, "alice", 60), "invalid_token"),
        (jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256"), "invalid_token"),
        (jwt.encode({"exp": 9999999999}, SECRET, algorithm="HS256"), "invalid_token"),
        (jwt.encode({"sub": "alice", "exp": 9999999999}, SECRET * 2, algorithm="HS512"),
         "invalid_token"),
        ("not.a.token", "invalid_token"),
    ],
)
def test_bad_tokens_are_refused_with_a_reason(token: str, code: str) -> None:
    with pytest.raises(NotAuthenticated) as refused:
        owner_from_token(SECRET, token)
    assert refused.value.code == code


def test_production_refuses_to_start_without_a_secret() -> None:
    with pytest.raises(SettingsError, match="BROKER_JWT_SECRET is not set"):
        create_app({"env": "production"})


def test_production_refuses_a_short_secret() -> None:
    with pytest.raises(SettingsError, match="at least 32 bytes"):
        create_app({"env": "production", "jwt_secret": "short"})


def test_local_development_reads_the_generated_secret(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("generated-" + "z" * 40 + "\n")
    settings = load_settings(env="local", secret_file=secret_file)
    assert settings.signing_secret() == b"generated-" + b"z" * 40


def test_settings_come_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_PRESIGN_TTL", "600")
    monkeypatch.setenv("BROKER_ALLOWED_ORIGINS", '["https://app.example.test"]')
    settings = load_settings()
    assert settings.presign_ttl == 600
    assert settings.allowed_origins == ("https://app.example.test",)


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("BROKER_PRESIGN_TTL", "3600", "BROKER_PRESIGN_TTL"),
        ("BROKER_PRESIGN_TTL", "soon", "BROKER_PRESIGN_TTL"),
        ("BROKER_ENV", "staging", "BROKER_ENV"),
        ("BROKER_INCOMING_PREFIX", "/abs", "BROKER_INCOMING_PREFIX"),
        ("BROKER_PRESING_TTL", "60", "BROKER_PRESING_TTL"),
        ("BROKER_DATABASE_URL", "mysql://db/broker", "BROKER_DATABASE_URL"),
        ("BROKER_DATABASE_URL", "sqlite://records.db", "BROKER_DATABASE_URL"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, named: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=named):
        load_settings()


@pytest.mark.parametrize("ttl", ["0", "-5", str(31 * 24 * 3600)])
def test_broker_token_refuses_a_lifetime_out_of_range(
        ttl: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from broker.cli import main

    monkeypatch.setenv("BROKER_ENV", "production")
    monkeypatch.setenv("BROKER_JWT_SECRET", "s" * 40)
    assert main(["token", "alice", "--ttl", ttl]) == 2
    assert "broker:" in capsys.readouterr().err


def test_broker_token_prints_a_token_of_the_lifetime_asked(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import jwt

    from broker.cli import main

    monkeypatch.setenv("BROKER_ENV", "production")
    monkeypatch.setenv("BROKER_JWT_SECRET", "s" * 40)
    assert main(["token", "alice", "--ttl", "120"]) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), "s" * 40, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 120


@pytest.mark.parametrize(("url", "store"), [
    (None, "dynamodb"), ("postgresql://u@db/broker", "postgresql"),
    ("sqlite:///var/lib/broker/records.sqlite3", "sqlite")])
def test_the_database_url_names_the_records_store(url: str | None, store: str) -> None:
    settings = load_settings(jwt_secret="s" * 40, database_url=url)
    assert settings.records_store == store
    if store == "sqlite":
        assert settings.sqlite_path == "/var/lib/broker/records.sqlite3"


@pytest.mark.parametrize(("endpoint", "setting", "sends_checksum"), [
    ("http://127.0.0.1:1", "auto", False),  # a store of one's own: only where required
    (None, "auto", True),  # AWS: boto3's default
    ("http://127.0.0.1:1", "when_supported", True),
])
def test_uploads_carry_a_checksum_only_where_the_store_takes_one(
        endpoint: str | None, setting: str, sends_checksum: bool) -> None:
    from broker.aws.clients import make_clients
    from broker.settings import load_settings

    settings = load_settings(s3_endpoint_url=endpoint, s3_checksums=setting)
    s3 = make_clients(settings).s3
    sent: dict[str, str] = {}

    class Captured(Exception):
        pass

    def capture(request: Any, **_: Any) -> None:
        sent.update({k.lower(): v.decode() if isinstance(v, bytes) else v
                     for k, v in request.headers.items()})
        raise Captured

    s3.meta.events.register("before-send.s3.PutObject", capture)
    with pytest.raises(Captured):
        s3.put_object(Bucket="b", Key="k", Body=b"x" * 100)
    checksummed = any(k.startswith("x-amz-checksum") or k == "x-amz-sdk-checksum-algorithm"
                      or k == "x-amz-trailer" for k in sent)
    assert checksummed == sends_checksum, sent


def test_a_verified_token_is_trusted_again_only_within_its_life_and_a_minute(
        monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(SECRET)
    checks: list[str] = []
    check = verifier._checked
    monkeypatch.setattr(verifier, "_checked", lambda token: (checks.append(token),
                                                             check(token))[1])
    started = clock.now()
    short, long = issue_token(SECRET, "alice", 5), issue_token(SECRET, "bob", 3600)
    for token in (short, long, short, long):
        verifier.verify(token)
    assert checks == [short, long]  # each checked once, then remembered
    later = started + timedelta(seconds=LEEWAY_SECONDS + 6)  # past the short one's exp
    monkeypatch.setattr(clock, "now", lambda: later)
    assert verifier.verify(long).owner == "bob"
    assert checks == [short, long]
    with contextlib.suppress(NotAuthenticated):  # PyJWT reads the real time
        verifier.verify(short)
    assert checks[-1] == short  # not answered from memory past its exp
    monkeypatch.setattr(clock, "now", lambda: started + timedelta(
        seconds=VERIFIED_FOR_SECONDS + 1))
    verifier.verify(long)
    assert checks[-1] == long  # and nothing is trusted unchecked for more than a minute


def test_a_refused_token_is_checked_again_every_time() -> None:
    verifier = TokenVerifier(SECRET)
    forged = issue_token(b"o" * 32, "alice", 60)
    for _ in range(2):
        with pytest.raises(NotAuthenticated):
            verifier.verify(forged)
    assert verifier.verify(issue_token(SECRET, "alice", 60)).owner == "alice"
