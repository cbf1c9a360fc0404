"""Peer benchmark: DBOS (Python durable workflows) on Postgres, for comparison with Cairn.

One workflow of 3 no-op steps. Measures
  - per-step latency: workflows run one at a time; per workflow, wall time / 3;
  - throughput: workflows run from a pool of client threads, completed workflows per
    second from the first start to the last completion.
Each workflow is invoked directly (it runs durably in the calling thread); DBOS.start_workflow
adds a hand-off to DBOS's executor threads and measured slower here.
DBOS keeps its state in its own database (dbos_bench, created by DBOS on launch) on the server
named by the URL. Prints one JSON object on stdout; logs go to stderr.

Usage: peer_dbos.py POSTGRES_URL SEQUENTIAL THROUGHPUT [CONCURRENCY]"""

import json
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version

import sqlalchemy as sa
from dbos import DBOS

STEPS = 3
WARMUP = 5
DATABASE = "dbos_bench"


def log(message: str) -> None:
    print(f"peer_dbos: {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float:
    # Nearest rank, as the other bench programs use.
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def database_url(server_url: str) -> str:
    # Same server and user, DBOS's own database; DBOS picks the driver itself.
    url = sa.make_url(server_url).set(drivername="postgresql", database=DATABASE)
    return url.render_as_string(hide_password=False)


def reset_database(server_url: str) -> None:
    # A fresh run every time: drop what an earlier run left; DBOS creates it again on launch.
    url = sa.make_url(server_url).set(drivername="postgresql+psycopg", database="postgres")
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
    finally:
        engine.dispose()


@DBOS.step()
def noop_step(index: int) -> int:
    return index


@DBOS.workflow()
def three_steps(n: int) -> int:
    total = 0
    for index in range(STEPS):
        total += noop_step(index)
    return total + n


def run_one(n: int) -> float:
    """Runs one workflow in the calling thread; returns its wall time in ms."""
    started = time.perf_counter()
    result = three_steps(n)
    elapsed = (time.perf_counter() - started) * 1000
    if result != n + 3:
        raise SystemExit(f"workflow {n} returned {result}")
    return elapsed


def sequential(count: int) -> list[float]:
    return [run_one(n) for n in range(count)]


def throughput(count: int, concurrency: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(run_one, range(count)))
    return count / (time.perf_counter() - started)


def main() -> None:
    if len(sys.argv) not in (4, 5):
        raise SystemExit(__doc__)
    server_url, seq_count, tp_count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    concurrency = int(sys.argv[4]) if len(sys.argv) == 5 else 32

    reset_database(server_url)
    DBOS(
        config={
            "name": "cairn-peer-bench",
            "system_database_url": database_url(server_url),
            # Enough connections that the client threads don't queue for the pool.
            "sys_db_pool_size": concurrency + 8,
            "log_level": "WARNING",
        }
    )
    DBOS.launch()
    try:
        log(f"warm-up: {WARMUP} workflows")
        sequential(WARMUP)
        log(f"sequential: {seq_count} workflows")
        walls = sequential(seq_count)
        log(f"throughput: {tp_count} workflows, {concurrency} at a time")
        rate = throughput(tp_count, concurrency)
    finally:
        DBOS.destroy()

    per_step = [wall / STEPS for wall in walls]
    print(
        json.dumps(
            {
                "sequential_workflows": seq_count,
                "steps_per_workflow": STEPS,
                "step_p50_ms": round(percentile(per_step, 50), 3),
                "step_p95_ms": round(percentile(per_step, 95), 3),
                "step_p99_ms": round(percentile(per_step, 99), 3),
                "workflow_p50_ms": round(percentile(walls, 50), 3),
                "throughput_workflows": tp_count,
                "concurrency": concurrency,
                "workflows_per_second": round(rate, 1),
                "dbos_version": version("dbos"),
            }
        )
    )


if __name__ == "__main__":
    main()
