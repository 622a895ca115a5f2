"""Shared pieces of the service benchmarks: a store on SQLite or PostgreSQL, pipelines, the
embedded runners, and writing a section of bench/RESULTS.md between its markers."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from tailrace.clock import SystemClock  # noqa: E402
from tailrace.definition import from_file_dict  # noqa: E402
from tailrace.runtime.runners import RunnerConfig, ServiceProcess  # noqa: E402
from tailrace.runtime.service import PipelineService  # noqa: E402
from tailrace.state import SqlStateStore, Status, create_engine  # noqa: E402
from tailrace.state.testing import temporary_schema  # noqa: E402
from tailrace.storage import Storage  # noqa: E402

RESULTS = REPO / "bench" / "RESULTS.md"
PG_URL = os.environ.get("TAILRACE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def machine() -> str:
    return f"CPython {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores"


@contextlib.contextmanager
def database(kind: str, home: Path) -> Iterator[str]:
    """A fresh database URL: a SQLite file under home, or a throw-away PostgreSQL schema."""
    if kind == "sqlite":
        yield f"sqlite:///{home}/tailrace.db"
    else:
        with temporary_schema(PG_URL, prefix="tailrace_bench") as url:
            yield url


@contextlib.contextmanager
def workspace(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        yield home


def open_service(url: str, home: Path, **config: Any) -> PipelineService:
    from tailrace.runtime.transitions import RuntimeConfig

    store = SqlStateStore(create_engine(url), clock=SystemClock())
    return PipelineService(store=store, home=home, config=RuntimeConfig(**config))


def embedded(service: PipelineService, home: Path, **config: Any) -> ServiceProcess:
    """The runners `tailrace up` starts (scheduler, 4 task runners, resource pools)."""
    defaults: dict[str, Any] = {"workers": 4}
    defaults.update(config)
    return ServiceProcess(
        service=service, storage=Storage(home=home), home=home, config=RunnerConfig(**defaults)
    )


def pipeline(
    service: PipelineService,
    objects: list[dict[str, Any]],
    *,
    name: str,
    default: dict[str, Any] | None = None,
    activate: bool = True,
    **schedule: str,
) -> str:
    base: dict[str, Any] = {"id": "Default", "workerGroup": "wg"}
    if schedule:
        base.update(scheduleType="cron", schedule={"ref": "Every"})
        objects = [{"id": "Every", "type": "Schedule", **schedule}, *objects]
    else:
        base.update(scheduleType="ondemand")
    base.update(default or {})
    pid = service.create_pipeline(name, f"{name}-{time.monotonic_ns()}")
    report = service.put_definition(pid, from_file_dict({"objects": [base, *objects]}))
    if report.errored:
        raise SystemExit(f"bad benchmark definition: {report.to_aws()}")
    if activate:
        service.activate(pid)
    return pid


def counts(service: PipelineService, pid: str) -> dict[Status, int]:
    with service.store.transaction(readonly=True) as tx:
        return tx.instances.count(pid)


def wait_finished(
    service: PipelineService, pid: str, total: int, *, timeout: float, progress: bool = True
) -> float:
    """Seconds until `total` instances are FINISHED (raises on a failure or timeout)."""
    began = time.monotonic()
    last = -1
    while True:
        c = counts(service, pid)
        done = c.get(Status.FINISHED, 0)
        bad = {s: n for s, n in c.items() if s in (Status.FAILED, Status.CASCADE_FAILED, Status.CANCELED)}
        if bad:
            raise SystemExit(f"{pid}: instances failed: {bad}")
        if done >= total:
            return time.monotonic() - began
        if progress and done != last and done % 100 < (last % 100 if last >= 0 else 100):
            print(
                f"  {done}/{total} finished after {time.monotonic() - began:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        last = done
        if time.monotonic() - began > timeout:
            raise SystemExit(f"{pid}: only {done}/{total} finished after {timeout:.0f} s: {c}")
        time.sleep(0.05)


def attempts(service: PipelineService, pid: str) -> list[Any]:
    with service.store.transaction(readonly=True) as tx:
        out, after = [], None
        while page := tx.attempts.page(pid, after=after, limit=5000):
            out += page
            after = page[-1].id
        return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_section(key: str, body: str) -> None:
    """Replace (or append) the block between <!-- service:KEY:begin --> and its end marker."""
    begin, end = f"<!-- service:{key}:begin -->", f"<!-- service:{key}:end -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    new = (
        pattern.sub(lambda _m: block, old)
        if pattern.search(old)
        else old.rstrip("\n") + "\n\n" + block + "\n"
    )
    RESULTS.write_text(new)
    print(f"wrote bench/RESULTS.md ({key})", file=sys.stderr)
