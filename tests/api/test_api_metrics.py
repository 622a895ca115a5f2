"""GET /metrics: the service's totals in Prometheus text format, without a key and without any
owner's names; parsed here with a strict reader of the exposition format (0.0.4)."""

from __future__ import annotations

import re
import urllib.request

from api_helpers import DEFINITION

from tailrace.definition import from_file_dict, to_wire
from tailrace.runtime.metrics import SCHEDULER
from tailrace.runtime.scheduler import Scheduler

SAMPLE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"'
    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*)\})? (?P<value>[-+]?(?:\d+(?:\.\d*)?(?:e[-+]?\d+)?|NaN|\+Inf|-Inf))$'
)


def parse(text: str) -> dict[str, dict[str, float]]:
    """{metric: {labels: value}}; every sample's family has HELP and TYPE lines before it."""
    assert text.endswith("\n")
    typed: dict[str, str] = {}
    helped: set[str] = set()
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split(" ")[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge") and name not in typed, line
            typed[name] = kind
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            name = m.group("name")
            assert name in typed and name in helped, f"{name} has no TYPE/HELP before it"
            if typed[name] == "counter":
                assert name.endswith("_total")
            out.setdefault(name, {})[m.group("labels") or ""] = float(m.group("value"))
    return out


def scrape(server) -> tuple[str, dict[str, dict[str, float]]]:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    return text, parse(text)


def test_metrics_count_pipelines_instances_and_attempts(server, dp, service, store):
    text, before = scrape(server)
    assert before["tailrace_pipelines"]['state="SCHEDULED"'] == 0
    assert before["tailrace_attempts_started_total"][""] == 0
    pid = dp.create_pipeline(name="secret-project", uniqueId="u-secret")["pipelineId"]
    dp.put_pipeline_definition(pipelineId=pid, **to_wire(from_file_dict(DEFINITION)))
    dp.activate_pipeline(pipelineId=pid)
    Scheduler(store=store, transitions=service.transitions, clock=service.clock).tick()
    queued = before["tailrace_task_queue_depth"][""]
    _, mid = scrape(server)
    assert mid["tailrace_pipelines"]['state="SCHEDULED"'] == 1
    waiting = mid["tailrace_instances"]['status="WAITING_FOR_RUNNER"']
    assert waiting >= 1 and mid["tailrace_task_queue_depth"][""] == waiting > queued
    # A task runner takes one task and fails it; another takes one and finishes it.
    t1 = dp.poll_for_task(workerGroup="wg-1")["taskObject"]
    dp.set_task_status(taskId=t1["taskId"], taskStatus="FAILED", errorId="E", errorMessage="no")
    t2 = dp.poll_for_task(workerGroup="wg-1").get("taskObject")
    if t2:
        dp.set_task_status(taskId=t2["taskId"], taskStatus="FINISHED")
    text, after = scrape(server)
    assert after["tailrace_attempts_started_total"][""] == (2 if t2 else 1)
    assert after["tailrace_attempts_failed_total"][""] == 1
    assert after["tailrace_attempts_succeeded_total"][""] == (1 if t2 else 0)
    # Totals only: no pipeline id, owner, name or worker group in any label.
    for word in (pid, "alice", "secret-project", "wg-1"):
        assert word not in text


def test_scheduler_ticks_show_once_the_loop_runs(server):
    SCHEDULER.ticked()
    _, metrics = scrape(server)
    assert metrics["tailrace_scheduler_ticks_total"][""] >= 1
    assert metrics["tailrace_scheduler_last_tick_timestamp_seconds"][""] > 1.7e9


def test_parse_rejects_what_prometheus_would():
    for bad in ("x 1\n", "# TYPE x gauge\n# HELP x h\nx{a=b} 1\n", "# TYPE x counter\n# HELP x h\nx 1\n"):
        try:
            parse(bad)
        except AssertionError:
            continue
        raise AssertionError(f"accepted {bad!r}")
