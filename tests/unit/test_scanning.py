"""Malware scanning with a real clamd: EICAR is caught, outages never publish."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask

from broker.aws.clients import AwsClients
from broker.aws.queue import QueueMessage
from broker.compose import compose
from broker.domain.inspection import Declared, Verdict, inspect
from broker.domain.inspection.scanner import ClamdScanner, NoScanner, ScannerUnavailable
from broker.runtimes.messages import settle_batch
from broker.settings import Settings, load_settings
from broker.validator.events import ObjectRef
from tests.corpus import ATTACKS, DOCX, EICAR, Sample, corpus_profiles, docx
from tests.samples import BytesSource, png_bytes

PROFILES = corpus_profiles()


def scan(sample_data: bytes, profile: str, filename: str, content_type: str,
         scanner: ClamdScanner) -> Verdict:
    declared = Declared(filename, content_type, len(sample_data))
    return inspect(BytesSource(sample_data), PROFILES.get(profile), declared, scanner).verdict


@pytest.mark.parametrize("sample", [s for s in ATTACKS if s.scanner], ids=lambda s: s.name)
def test_eicar_inside_an_allowed_type_is_malware(sample: Sample, clamd_address: str) -> None:
    verdict = scan(sample.data(), sample.profile, sample.filename, sample.content_type,
                   ClamdScanner(clamd_address))
    assert verdict.reason is not None
    assert verdict.reason.code == "malware"
    assert verdict.detail.startswith("Eicar-Test-Signature")


def test_a_clean_file_is_accepted_with_its_sha256(clamd_address: str) -> None:
    data = docx()
    verdict = scan(data, "document", "r.docx", DOCX, ClamdScanner(clamd_address))
    assert verdict.accepted
    assert verdict.sha256 == hashlib.sha256(data).hexdigest()


def test_an_unreachable_scanner_gives_no_verdict(tmp_path: Path) -> None:
    scanner = ClamdScanner(f"unix://{tmp_path}/nothing.sock")
    assert not scanner.ping()
    with pytest.raises(ScannerUnavailable, match="cannot reach clamd"):
        scan(b"plain text\n", "document", "a.txt", "text/plain", scanner)


def test_a_file_over_the_stream_limit_is_not_accepted_unscanned(clamd_address: str) -> None:
    data = b"fine text\n" * 1000
    verdict = scan(data, "document", "a.txt", "text/plain",
                   ClamdScanner(clamd_address, stream_max=len(data) - 1))
    assert verdict.reason is not None
    assert verdict.reason.code == "too_large_to_scan"


def test_clamd_refusing_a_long_stream_is_an_outage_not_a_pass(tmp_path: Path) -> None:
    from tests.clamd_server import clamd_installed, running_clamd
    from tests.conftest import require_system

    require_system("clamd", clamd_installed(), "apt-get install clamav clamav-daemon")
    with running_clamd(tmp_path, stream_max="1K") as address, \
            pytest.raises(ScannerUnavailable, match="limit"):
        scan(b"fine text\n" * 1000, "document", "a.txt", "text/plain", ClamdScanner(address))


def test_clamd_over_tcp_finds_eicar(tmp_path: Path) -> None:
    import socket

    from tests.clamd_server import clamd_installed, running_clamd
    from tests.conftest import require_system

    require_system("clamd", clamd_installed(), "apt-get install clamav clamav-daemon")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with running_clamd(tmp_path, tcp_port=port) as address:
        scanner = ClamdScanner(address)
        assert address.startswith("tcp://")
        assert scanner.ping()
        verdict = scan(EICAR, "document", "e.txt", "text/plain", scanner)
        assert verdict.reason is not None
        assert verdict.reason.code == "malware"


def stored(app: Flask, aws: AwsClients, data: bytes, filename: str, content_type: str,
           profile: str = "document") -> str:
    record = app.extensions["broker"].uploads.create(
        "alice", profile, filename, content_type, len(data)).record
    aws.s3.put_object(Bucket="uploads-incoming", Key=record.incoming_key, Body=data,
                      Metadata={"upload-id": record.id})
    return str(record.id)


def test_the_validator_quarantines_malware_and_records_the_signature(
    app: Flask, aws: AwsClients, settings: Settings, clamd_address: str
) -> None:
    validator = compose(settings, aws, scanner=ClamdScanner(clamd_address)).validator
    upload_id = stored(app, aws, EICAR, "eicar.txt", "text/plain")
    assert validator.process(ObjectRef("uploads-incoming", f"incoming/{upload_id}")) \
        == "rejected"
    record = validator.records.get(upload_id)
    assert record is not None
    assert record.reason_code == "malware"
    assert (record.reason_detail or "").startswith("Eicar-Test-Signature")
    assert "Contents" not in aws.s3.list_objects_v2(Bucket="uploads-private")


def test_a_scanner_outage_retries_the_event_and_publishes_nothing(
    app: Flask, aws: AwsClients, settings: Settings, tmp_path: Path, clamd_address: str
) -> None:
    import json

    upload_id = stored(app, aws, png_bytes(), "me.png", "image/png", profile="avatar")
    body = json.dumps({"Records": [{"eventName": "ObjectCreated:Post", "s3": {
        "bucket": {"name": "uploads-incoming"},
        "object": {"key": f"incoming%2F{upload_id}"}}}]})
    message = [QueueMessage("m1", "r1", body)]
    down = compose(settings, aws, scanner=ClamdScanner(f"unix://{tmp_path}/down.sock")).validator
    assert settle_batch(down, message).retry_ids == ["m1"]
    record = down.records.get(upload_id)
    assert record is not None
    assert record.status == "processing"
    assert "Contents" not in aws.s3.list_objects_v2(Bucket="uploads-public")
    # The redelivery, once clamd is back, settles it.
    up = compose(settings, aws, scanner=ClamdScanner(clamd_address)).validator
    assert settle_batch(up, message).retry_ids == []
    settled = up.records.get(upload_id)
    assert settled is not None
    assert settled.status == "ready"
    assert settled.sha256 == hashlib.sha256(png_bytes()).hexdigest()


def test_a_clamd_running_on_the_machine_is_found(clamd_address: str, tmp_path: Path) -> None:
    from broker.domain.inspection.scanner import find_local_clamd

    socket_path = clamd_address.removeprefix("unix://")
    missing = str(tmp_path / "no-clamd.ctl")
    assert find_local_clamd([missing, socket_path]) == clamd_address
    assert find_local_clamd([missing]) is None


def test_make_run_scans_with_the_machine_clamd_and_says_so(
        clamd_address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from broker.cli import local as cli
    from broker.domain.inspection import scanner

    monkeypatch.setattr(scanner, "LOCAL_CLAMD_SOCKETS",
                        (clamd_address.removeprefix("unix://"),))
    overrides = cli._local_scanner()
    assert overrides == {"scanner": "clamd", "clamd_address": clamd_address}
    settings = load_settings(env="local", **overrides)
    assert cli._scan_banner(settings) == f"on, clamd at {clamd_address}"
    monkeypatch.setenv("BROKER_SCANNER", "none")
    assert cli._local_scanner() == {}
    assert cli._scan_banner(load_settings(env="local")).startswith("OFF: uploads are not")


class CountingScanner:
    """A scanner that finds nothing and counts the streams it was given."""

    def __init__(self, stream_max: int) -> None:
        self.stream_max: int | None = stream_max
        self.scanned = 0

    def scan(self, chunks: object) -> object:
        from broker.domain.inspection.scanner import ScanResult

        self.scanned += 1
        for _ in chunks:  # type: ignore[attr-defined]
            pass
        return ScanResult()

    def version(self) -> object:
        from broker.domain.inspection.scanner import ScannerVersion

        return ScannerVersion("Counting 1.0")


def _profile(**limits: object) -> object:
    return PROFILES.get("document").model_copy(update=limits)


def test_a_profiles_scan_limit_applies_below_the_scanners() -> None:
    data = b"fine text\n" * 1000
    scanner = CountingScanner(stream_max=10 * len(data))
    declared = Declared("a.txt", "text/plain", len(data))
    verdict = inspect(BytesSource(data), _profile(scan_max_size=len(data) - 1),  # type: ignore[arg-type]
                      declared, scanner).verdict
    assert verdict.reason is not None
    assert verdict.reason.code == "too_large_to_scan"
    assert scanner.scanned == 0


def test_a_profile_may_serve_files_over_the_scan_limit_unscanned_and_says_so() -> None:
    data = b"fine text\n" * 1000
    scanner = CountingScanner(stream_max=len(data) - 1)
    declared = Declared("a.txt", "text/plain", len(data))
    verdict = inspect(BytesSource(data), _profile(serve_unscanned_over_limit=True),  # type: ignore[arg-type]
                      declared, scanner).verdict
    assert verdict.accepted
    assert scanner.scanned == 0  # not scanned, but still hashed: the served bytes are pinned
    assert verdict.sha256 == hashlib.sha256(data).hexdigest()
    assert "unscanned" in verdict.detail
    small = b"fine text\n"
    inspect(BytesSource(small), _profile(serve_unscanned_over_limit=True),  # type: ignore[arg-type]
            Declared("a.txt", "text/plain", len(small)), scanner)
    assert scanner.scanned == 1  # within the limit, files are scanned as ever


def test_a_scanner_closing_mid_stream_is_an_outage_that_says_why(tmp_path: Path) -> None:
    import socket
    import threading

    path = str(tmp_path / "closing.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)

    def refuse_after_a_little() -> None:  # as clamd does past its stream limit
        conn, _ = server.accept()
        conn.recv(4096)
        conn.sendall(b"INSTREAM size limit exceeded. ERROR\0")
        conn.close()

    threading.Thread(target=refuse_after_a_little, daemon=True).start()
    try:
        with pytest.raises(ScannerUnavailable, match="size limit exceeded"):
            ClamdScanner(f"unix://{path}").scan(iter([b"x" * (8 << 20)] * 4))
    finally:
        server.close()


@pytest.fixture(scope="module")
def strict_clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """clamd told to name what it skips (AlertExceedsMax), with a small MaxFileSize."""
    from tests.clamd_server import clamd_installed, running_clamd
    from tests.conftest import require_system

    require_system("clamd", clamd_installed(), "apt-get install clamav clamav-daemon")
    with running_clamd(tmp_path_factory.mktemp("strict-clamd"),
                       settings="AlertExceedsMax yes\nMaxFileSize 1M\n") as address:
        yield address


def _docx_carrying(member: bytes) -> bytes:
    from tests.corpus import rezipped

    return rezipped(docx(), add={"word/media/film.bin": member})


def test_a_member_over_the_scanners_limits_is_not_taken_for_clean(strict_clamd: str) -> None:
    data = _docx_carrying(os.urandom(2 * 1024 * 1024))  # clamd skips a member over 1 MiB
    verdict = scan(data, "document", "r.docx", DOCX, ClamdScanner(strict_clamd))
    assert verdict.reason is not None
    assert verdict.reason.code == "too_large_to_scan"
    assert "Heuristics.Limits.Exceeded.MaxFileSize" in verdict.detail
    assert "not wholly scanned by ClamAV" in verdict.judged_by


def test_a_profile_that_serves_unscanned_files_says_this_one_was_not_scanned_whole(
        strict_clamd: str) -> None:
    data = _docx_carrying(os.urandom(2 * 1024 * 1024))
    declared = Declared("r.docx", DOCX, len(data))
    verdict = inspect(BytesSource(data), _profile(serve_unscanned_over_limit=True),  # type: ignore[arg-type]
                      declared, ClamdScanner(strict_clamd)).verdict
    assert verdict.accepted
    assert verdict.detail.startswith("served not wholly scanned: Heuristics.Limits.Exceeded")


def test_every_verdict_says_what_judged_it(clamd_address: str) -> None:
    from broker.domain.inspection import RULES_VERSION

    scanned = scan(docx(), "document", "r.docx", DOCX, ClamdScanner(clamd_address))
    assert scanned.judged_by.startswith(f"rules {RULES_VERSION}; scanned by ClamAV ")
    unscanned = inspect(BytesSource(docx()), PROFILES.get("document"),
                        Declared("r.docx", DOCX, None), NoScanner()).verdict
    assert unscanned.judged_by == f"rules {RULES_VERSION}; not scanned: no malware scanner"
    refused = scan(b"%PDF-1.4 nothing", "document", "r.docx", DOCX, ClamdScanner(clamd_address))
    assert refused.judged_by == f"rules {RULES_VERSION}; not scanned"  # refused before


def test_the_scanners_version_and_signature_date_are_read_from_clamd(
        clamd_address: str) -> None:
    from broker.domain.inspection.scanner import parse_version

    assert ClamdScanner(clamd_address).version().engine.startswith("ClamAV ")
    dated = parse_version("ClamAV 1.4.3/27450/Thu Dec  3 09:24:02 2026")
    assert (dated.signatures, dated.published) == (27450, datetime(2026, 12, 3, 9, 24, 2,
                                                                   tzinfo=UTC))
    assert str(dated) == "ClamAV 1.4.3, signatures 27450 of 2026-12-03"


class VersionOnlyClamd:
    """Answers clamd's PING and VERSION as a clamd fed by freshclam does, with a database
    of a given date (a real clamd here has a database built by the tests, undated)."""

    def __init__(self, path: Path, published: datetime) -> None:
        import socket
        import threading

        self.reply = f"ClamAV 1.4.3/27450/{published:%a %b %d %H:%M:%S %Y}".encode()
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen()
        self.address = f"unix://{path}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                command = connection.recv(64)
                connection.sendall((b"PONG" if b"PING" in command else self.reply) + b"\0")


@pytest.mark.parametrize(("hours_old", "ready"), [(2, True), (100, False)])
def test_readiness_fails_when_the_signatures_stop_updating(
        tmp_path: Path, settings: Settings, aws: AwsClients, hours_old: int,
        ready: bool) -> None:
    from datetime import timedelta

    from broker.web import create_app

    fake = VersionOnlyClamd(tmp_path / "clamd.sock",
                            datetime.now(UTC) - timedelta(hours=hours_old))
    app = create_app(settings.model_dump() | {"scanner": "clamd",
                                              "clamd_address": fake.address}, clients=aws)
    answer = app.test_client().get("/readyz")
    assert answer.status_code == (200 if ready else 503)
    said = answer.json["checks"]["scanner"]
    if ready:
        assert said == "ok"
    else:
        assert "signatures are 100 h old, over BROKER_SCANNER_MAX_SIGNATURE_AGE (72 h)" in said
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert "broker_scanner_signature_age_seconds" in metrics
    fake.server.close()
