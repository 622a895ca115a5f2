"""Pipeline SnsAlarm actions reach their topic: the relay publishes each `action.fired` event of
type SnsAlarm (as runtime/firing.py records it) exactly once, as the pipeline's owner."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from subscriber import Subscriber
from test_delivery import World

from tailrace.events.model import ActionFired, AttemptStatusChanged
from tailrace.notify.pipelinealarms import SnsAlarmRelay
from tailrace.runtime.service import PipelineService

T_FIRED = datetime(2026, 3, 2, tzinfo=UTC)


def _fire(store, pid, topic_arn, *, kind="SnsAlarm", node="@Hive_2026-03-01T00:00:00"):
    # The payload firing.py writes for a fired action.
    with store.transaction() as tx:
        tx.events.append(
            ActionFired(
                at=T_FIRED,
                pipeline_id=pid,
                action_id="FailureAlarm",
                action_type=kind,
                trigger="onFail",
                node=node,
                subject=f"Failed: {node}",
                message=f"{node} failed",
                topic_arn=topic_arn,
            )
        )


def test_relay_publishes_each_fired_snsalarm_once(tmp_path):
    w = World(tmp_path)
    try:
        svc = PipelineService(store=w.store, home=tmp_path / "home", clock=w.clock)
        old = svc.create_pipeline("before", "u0", owner="alice")
        with Subscriber() as sub:
            arn, _ = w.subscribed(sub)
            _fire(w.store, old, arn, node="@old")  # fired before the relay ever ran: not replayed
            relay = SnsAlarmRelay(w.store.engine, w.topics)
            second = SnsAlarmRelay(w.store.engine, w.topics)  # another process
            pid = svc.create_pipeline("etl", "u1", owner="alice")
            bobs = svc.create_pipeline("bob's", "u2", owner="bob")
            _fire(w.store, pid, arn)
            _fire(w.store, pid, arn, kind="Terminate")
            _fire(w.store, bobs, arn)  # bob's pipeline naming alice's topic: refused
            _fire(w.store, pid, arn.replace(":alarms", ":missing"))  # no such topic: logged, no crash
            assert relay.run_once() + second.run_once() == 1
            assert relay.run_once() == 0
            w.worker.run_once()
            (got,) = sub.of_type("Notification")
            assert got["Subject"] == "Failed: @Hive_2026-03-01T00:00:00"
            assert got["Message"] == "@Hive_2026-03-01T00:00:00 failed"
            assert sub.rejected == []
            assert json.loads(w.rows()[-1]["payload"])["TopicArn"] == arn
    finally:
        w.close()


def test_ended_attempts_become_builtin_metrics(tmp_path):
    w = World(tmp_path)
    try:
        svc = PipelineService(store=w.store, home=tmp_path / "home", clock=w.clock)
        relay = SnsAlarmRelay(w.store.engine, w.topics, w.metrics)
        pid = svc.create_pipeline("etl", "u1", owner="alice")
        for attempt, to in (("1", "FAILED"), ("2", "FINISHED"), ("3", "RUNNING")):
            with w.store.transaction() as tx:
                tx.events.append(
                    AttemptStatusChanged(
                        at=w.clock.now(),
                        pipeline_id=pid,
                        object_id=f"@Hive_2026-03-01T00:00:00_Attempt={attempt}",
                        old="RUNNING" if to != "RUNNING" else "WAITING_FOR_RUNNER",
                        new=to,
                    )
                )
        relay.run_once()
        start, end = w.clock.now().replace(second=0), w.clock.now().replace(second=0).replace(minute=1)
        dims = [{"Name": "PipelineId", "Value": pid}, {"Name": "Activity", "Value": "Hive"}]
        failed = w.metrics.statistics(
            "alice", "Tailrace/Pipelines", "AttemptsFailed", dims, start, end, 60, ["Sum"]
        )
        ok = w.metrics.statistics(
            "alice", "Tailrace/Pipelines", "AttemptsSucceeded", dims[:1], start, end, 60, ["Sum"]
        )
        assert [v["Sum"] for _, v in failed] == [1.0] and [v["Sum"] for _, v in ok] == [1.0]
        assert w.metrics.list_metrics("bob") == []  # the pipeline's owner's metrics only
        with __import__("pytest").raises(Exception, match="reserved"):
            w.metrics.put("alice", "Tailrace/Pipelines", [{"MetricName": "AttemptsFailed", "Value": 1}])
    finally:
        w.close()
