"""Caller-ID lookup with a million customers (issue 4: p99 under 5 ms).

    .venv/bin/python -m bench.bench_customer_lookup [--customers 1000000] [--lookups 10000]
        [--hit-ratio 0.8] [--json FILE]

Migrates a fresh SQLite file in a temporary directory (the real Alembic scripts, so the real
indexes), loads `--customers` customers through `CustomerService.bulk_import` (every number
normalised by phonenumbers, as a CRM import would be), then times `CustomerService.match` one
awaited call at a time: a session per call, the statement the ACD runs, aiosqlite's thread hop
included. Lookups mix hits and misses; every tenth customer has a second number and one in a
hundred shares its number with another customer (a shared office line: several matches).

Writes bench/results-customers.json. Figures depend on the machine; compare runs on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from callcenter.cli import migrate
from callcenter.db.session import create_engine, create_sessionmaker
from callcenter.services.customers import CustomerRecord, CustomerService
from callcenter.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results-customers.json"
TARGET_P99_MS = 5.0
TIERS = ("regular",) * 85 + ("silver",) * 10 + ("gold",) * 4 + ("vip",)
# GB mobile numbers +447 followed by nine digits: customer i owns number(i).
MOBILE_BASE = 7_000_000_000


def number(i: int) -> str:
    # A fixed permutation of 0..99,999,999 spreads neighbours apart in the index.
    return f"+44{MOBILE_BASE + (i * 7_919_993) % 100_000_000}"


def records(count: int) -> Iterator[CustomerRecord]:
    rng = random.Random(4)
    for i in range(count):
        phones = [number(i)]
        if i % 10 == 0:
            phones.append(number(count + i))
        if i % 100 == 1:
            phones.append(number(i - 1))  # shares customer i-1's main number
        yield CustomerRecord(
            name=f"Customer {i}",
            company=f"Company {i % 50_000}",
            tier=rng.choice(TIERS),
            email=f"customer{i}@example.com",
            phones=phones,
        )


def percentile(sorted_ms: list[float], p: float) -> float:
    index = min(len(sorted_ms) - 1, max(0, round(p / 100 * len(sorted_ms)) - 1))
    return sorted_ms[index]


async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, object]:
    settings = Settings(data_dir=data_dir)
    engine = create_engine(settings.database_url)
    try:
        service = CustomerService(create_sessionmaker(engine), default_region="GB")

        start = time.perf_counter()
        imported = await service.bulk_import(records(args.customers), batch_size=10_000)
        load_s = time.perf_counter() - start
        print(
            f"loaded {imported.customers:,} customers, {imported.phones:,} phones "
            f"in {load_s:.1f} s ({imported.customers / load_s:,.0f} customers/s)",
            flush=True,
        )

        rng = random.Random(7)
        lookups: list[tuple[str, bool]] = []
        for _ in range(args.lookups):
            if rng.random() < args.hit_ratio:
                lookups.append((number(rng.randrange(args.customers)), True))
            else:
                # Never issued: numbers past every customer's first and second number.
                miss = rng.randrange(2 * args.customers, 4 * args.customers)
                lookups.append((number(miss), False))

        for e164, _ in lookups[:500]:  # warm-up: statement cache, connection pool
            await service.match(e164)

        samples_ms: list[float] = []
        hits = multi = 0
        for e164, expect_hit in lookups:
            t0 = time.perf_counter()
            matches = await service.match(e164)
            samples_ms.append((time.perf_counter() - t0) * 1000)
            if bool(matches) != expect_hit:
                raise SystemExit(f"wrong answer for {e164}: {matches!r}")
            hits += bool(matches)
            multi += len(matches) > 1
    finally:
        await engine.dispose()

    samples_ms.sort()
    db_file = data_dir / "callcenter.db"
    p99 = percentile(samples_ms, 99)
    return {
        "scenario": "customer_lookup",
        "machine": f"{platform.machine()} python {platform.python_version()} cpus {os.cpu_count()}",
        "database": "sqlite (aiosqlite), WAL",
        "customers": imported.customers,
        "phones": imported.phones,
        "load_seconds": round(load_s, 1),
        "db_megabytes": round(db_file.stat().st_size / 1e6, 1) if db_file.exists() else None,
        "lookups": len(samples_ms),
        "hits": hits,
        "misses": len(samples_ms) - hits,
        "multi_matches": multi,
        "lookup_p50_ms": round(percentile(samples_ms, 50), 3),
        "lookup_p99_ms": round(p99, 3),
        "lookup_max_ms": round(samples_ms[-1], 3),
        "lookup_mean_ms": round(statistics.fmean(samples_ms), 3),
        "target_p99_ms": TARGET_P99_MS,
        "pass": p99 < TARGET_P99_MS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--hit-ratio", type=float, default=0.8)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.customers < 2 or args.lookups < 1:
        parser.error("need at least 2 customers and 1 lookup")

    with tempfile.TemporaryDirectory(prefix="bench-customers-") as tmp:
        data_dir = Path(tmp)
        # Alembic's env runs its own event loop: migrate before ours starts.
        if migrate(Settings(data_dir=data_dir)) != 0:
            return 1
        result = asyncio.run(run(args, data_dir))

    print(json.dumps(result, indent=2))
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
