"""Costs that must not grow with the data: a create, a status read and a first listing
page, for an owner with 10 uploads and one with 100,000, on stores seeded with 200,000
and with 1,000,000 records: SQLite (what `broker run` keeps) and PostgreSQL (when the
machine has it). Each figure is the median of many calls, in this process.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

from broker.domain.records import RecordStore, UploadRecord

SIZES = (200_000, 1_000_000)
HEAVY, LIGHT = 100_000, 10  # uploads of the two owners measured
CALLS = 300
BATCH = 20_000

TEMPLATE = UploadRecord(
    id="", owner="", profile="avatar", visibility="public", status="ready",
    filename="me.png", declared_type="image/png", declared_size=48_213,
    incoming_key="", created_at="", updated_at="", expires_at="",
    content_type="image/png", size=48_213, etag='"0123456789abcdef0123456789abcdef"',
    stored_key="", sha256="ab" * 32, served_size=40_122, served_sha256="cd" * 32)


def _owner(n: int) -> str:
    if n < LIGHT:
        return "light"
    if n < LIGHT + HEAVY:
        return "heavy"
    return f"user-{n % 50_000}"  # everyone else: 50,000 owners


def _record(n: int) -> UploadRecord:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_700_000_000 + n))
    upload_id = f"up_{n:032x}"
    return replace(TEMPLATE, id=upload_id, owner=_owner(n), incoming_key=f"incoming/{upload_id}",
                   stored_key=f"{upload_id}.png", created_at=stamp, updated_at=stamp,
                   expires_at=stamp)


def _seed_sqlite(path: Path, start: int, stop: int) -> None:
    import sqlite3

    from broker.domain.records.sqlite import _row

    with sqlite3.connect(path) as db:
        for first in range(start, stop, BATCH):
            db.executemany("INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (_row(_record(n)) for n in range(first, min(stop, first + BATCH))))


def _seed_postgres(url: str, start: int, stop: int) -> None:
    import psycopg

    columns = list(asdict(TEMPLATE))
    with psycopg.connect(url) as conn, conn.cursor() as cursor, \
            cursor.copy(f"COPY uploads ({', '.join(columns)}) FROM STDIN") as copy:
        for n in range(start, stop):
            values = asdict(_record(n))
            copy.write_row([values[c] for c in columns])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE uploads")  # as autovacuum would after a bulk load


@contextmanager
def _sqlite() -> Iterator[tuple[RecordStore, Callable[[int, int], None]]]:
    from broker.domain.records.sqlite import SqliteRecords

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "records.sqlite3"
        store = SqliteRecords(str(path))
        yield store, lambda start, stop: _seed_sqlite(path, start, stop)
        store.close()


@contextmanager
def _postgres() -> Iterator[tuple[RecordStore, Callable[[int, int], None]] | None]:
    from tests.postgres_server import postgres_installed, running_postgres

    if not postgres_installed():
        yield None
        return
    from broker.domain.records.migrations import migrate
    from broker.domain.records.postgres import PostgresRecords

    with running_postgres() as server:
        migrate(server.url)
        store = PostgresRecords.connect(server.url, pool_size=2)
        yield store, lambda start, stop: _seed_postgres(server.url, start, stop)
        store.close()


def _median_ms(call: Callable[[int], object]) -> float:
    for n in range(20):
        call(n)
    times = []
    for n in range(CALLS):
        started = time.perf_counter()
        call(n)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _operations(store: RecordStore, size: int) -> dict[str, float]:
    fresh = iter(range(10 ** 9 + size, 10 ** 10))  # ids no earlier size used

    def create(_: int) -> None:
        record = _record(next(fresh))
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        store.create(replace(record, owner=f"new-{size}", status="pending", created_at=now,
                             updated_at=now, expires_at="2999-01-01T00:00:00Z"),
                     pending_cap=10 ** 6)

    return {
        "create": _median_ms(create),
        "status read": _median_ms(lambda n: store.get(_record(n * 997 % size).id)),
        "first page, 10 uploads": _median_ms(lambda n: store.list_by_owner("light", 20)),
        "first page, 100,000 uploads": _median_ms(lambda n: store.list_by_owner("heavy", 20)),
    }


def bench_growth() -> dict[str, dict[int, dict[str, float]]]:
    """{store: {records: {operation: median ms}}}"""
    results: dict[str, dict[int, dict[str, float]]] = {}
    for name, opened in (("SQLite (broker run)", _sqlite), ("PostgreSQL", _postgres)):
        with opened() as ready:
            if ready is None:
                continue
            store, seed = ready
            seeded = 0
            for size in SIZES:
                started = time.perf_counter()
                seed(seeded, size)
                seeded = size
                print(f"  ({name}: seeded {size:,} records in "
                      f"{time.perf_counter() - started:.0f} s)", flush=True)
                results.setdefault(name, {})[size] = _operations(store, size)
    return results


def print_growth(results: dict[str, dict[int, dict[str, float]]]) -> None:
    small, large = SIZES
    print(f"\nrecords: cost as the data grows (median of {CALLS} calls; owners with "
          f"{LIGHT} and {HEAVY:,} uploads):")
    for name, by_size in results.items():
        print(f"  {name}:")
        for operation in by_size[small]:
            a, b = by_size[small][operation], by_size[large][operation]
            print(f"    {operation:<28} {small:>9,} records {a:7.3f} ms   "
                  f"{large:>9,} records {b:7.3f} ms   ratio {b / a:4.2f}x")
    if "PostgreSQL" not in results:
        print("  (PostgreSQL is not installed: apt-get install postgresql adds its rows)")


if __name__ == "__main__":
    print_growth(bench_growth())
