"""The live feed in a real browser (headless system Chromium): banner, siren, broadcasts, replay,
XSS. Alarms are committed from the server side (the state store's outbox), never from page script."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from livekit import RoundRobin, alarm, broadcast, commit, wait_history

from tailrace.events.model import InstanceStatusChanged

pytestmark = [pytest.mark.postgres]


def test_banner_and_siren_only_after_enable_click_then_stop(store, servers, pages):
    server = servers()
    page = pages(server)
    assert page.state["sound"] == "disabled"
    assert "Enable sound" in page.text

    commit(store, alarm("cpu-high", reason="Threshold Crossed: 1 datapoint [95.0] was greater than 90.0"))
    page.wait(lambda: page.state.get("alarm") == "active")
    assert 'ALARM: "cpu-high" in us-east-1' in page.text
    assert "Threshold Crossed: 1 datapoint [95.0]" in page.text
    assert "Sound is off on this page" in page.text  # the visible fallback
    # No gesture yet: the page may not play audio, and the feed did not try.
    (reported,) = [r for r in page.reports if r["kind"] == "event" and r["event"]["type"] == "alarm.state"]
    assert reported["probe"] == "suspended"
    assert page.audio("start") == 0

    page.page.click(".tr-enable-sound")  # the user's gesture
    page.wait(lambda: page.state.get("siren") == "on")
    assert page.audio("resumed") == 1
    assert page.audio("start") == 2  # the tone and its sweep

    page.page.click(".tr-stop")
    page.wait(lambda: page.state.get("siren") == "off")
    assert page.audio("stop") == 2

    # The next alarm sounds at once: sound stays enabled on this page.
    commit(store, alarm("disk-full"))
    page.wait(lambda: page.state.get("siren") == "on")
    assert 'ALARM: "disk-full"' in page.text
    assert page.audio("start") == 4


def test_the_siren_sounds_in_every_open_page_and_each_page_stops_its_own(store, servers, pages):
    server = servers()
    first, second, silent = pages(server), pages(server, "al.alice.r"), pages(server, "a3.alice.r")
    for p in (first, second):
        p.page.click(".tr-enable-sound")
        p.wait(lambda p=p: p.state.get("sound") == "enabled")
    commit(store, alarm("everyone-hears"))
    for p in (first, second):
        p.wait(lambda p=p: p.state.get("siren") == "on")
    silent.wait(lambda: silent.state.get("alarm") == "active")
    assert silent.audio("start") == 0 and "Sound is off on this page" in silent.text
    first.page.click(".tr-stop")
    first.wait(lambda: first.state.get("siren") == "off")
    second.page.wait_for_timeout(300)
    assert second.state["siren"] == "on" and second.audio("stop") == 0


def test_alarm_before_enable_sounds_once_enabled_until_stop(store, servers, pages):
    server = servers()
    page = pages(server)
    commit(store, alarm("late-run"))
    page.wait(lambda: page.state.get("alarm") == "active")
    assert page.audio("start") == 0
    page.page.click(".tr-enable-sound")
    page.wait(lambda: page.state.get("siren") == "on")
    page.page.click(".tr-stop")
    page.wait(lambda: page.state.get("siren") == "off" and page.state.get("alarm") == "none")


def test_broadcast_from_the_form_reaches_the_owners_open_pages_and_operators(servers, pages):
    server = servers()
    writer = pages(server, "ann.alice.w")
    alice2, ops, bob = pages(server, "al.alice.r"), pages(server, "ops._.r"), pages(server, "bob.bob.w")
    assert alice2.state and "Broadcast\n" not in alice2.text + "\n"  # no form without write access
    writer.page.fill(".tr-broadcast-form input", "deploy at 10:00, expect a short pause")
    writer.page.click(".tr-broadcast-form button")
    for p in (writer, alice2, ops):
        p.wait(
            lambda p=p: (
                [e["text"] for e in p.events("operator.broadcast")]
                == ["deploy at 10:00, expect a short pause"]
            )
        )
    # alice is not an operator: her broadcast reaches her owner's pages and the operators', not bob's.
    assert [e["owner"] for e in ops.events("operator.broadcast")] == ["alice"]
    assert ops.events("operator.broadcast")[0]["sender"] == "ann"
    bob.page.fill(".tr-broadcast-form input", "bob here")
    bob.page.click(".tr-broadcast-form button")
    ops.wait(lambda: len(ops.events("operator.broadcast")) == 2)
    bob.wait(lambda: [e["text"] for e in bob.events("operator.broadcast")] == ["bob here"])
    assert len(bob.events()) == 1 and len(writer.events()) == 1


def test_operator_broadcast_reaches_every_owner_and_alarms_stay_with_their_owner(store, servers, pages):
    server = servers()
    alice, bob, ops = pages(server, "ann.alice.r"), pages(server, "bo.bob.r"), pages(server, "op._.w")
    ops.page.fill(".tr-broadcast-form input", "maintenance tonight")
    ops.page.click(".tr-broadcast-form button")
    ops.wait(lambda: len(ops.events("operator.broadcast")) == 1)  # committed before the next ones
    status = InstanceStatusChanged(
        at=datetime.now(UTC),
        owner="alice",
        pipeline_id="df-1",
        object_id="@Hello_2026",
        old="WAITING",
        new="RUNNING",
    )
    commit(store, alarm("alice-only", owner="alice"), status, broadcast("after", owner=None))
    for p in (alice, bob, ops):
        p.wait(
            lambda p=p: (
                [e["text"] for e in p.events("operator.broadcast")] == ["maintenance tonight", "after"]
            )
        )
    assert [e["alarm_name"] for e in alice.events("alarm.state")] == ["alice-only"]
    assert [e["alarm_name"] for e in ops.events("alarm.state")] == ["alice-only"]
    assert bob.events("alarm.state") == []
    # Status changes reach the owner's page scripts as `tr:event` (the pages update without reload).
    (changed,) = alice.events("instance.status")
    assert (changed["pipelineId"], changed["object_id"], changed["new"]) == ("df-1", "@Hello_2026", "RUNNING")
    assert bob.events("instance.status") == []


def test_late_page_gets_recent_alarms_and_broadcasts_without_siren(store, servers, pages):
    server = servers()
    commit(store, alarm("early"), broadcast("hello all"), alarm("bob's", owner="bob"))
    assert len(wait_history(server, "ann.alice.w", 2)) == 2  # the console has them: now a page opens
    page = pages(server)
    page.wait(lambda: len(page.events()) == 2)
    assert [e["type"] for e in page.events()] == ["alarm.state", "operator.broadcast"]
    assert "hello all" in page.text and 'ALARM: "early"' in page.text
    assert page.state["alarm"] == "none"  # history is shown, not sounded


XSS = [
    '<img src=x onerror="window.__trXss()">',
    "<script>window.__trXss()</script>",
    '"><svg onload=window.__trXss()>',
]


def test_xss_payloads_in_alarm_names_reasons_and_broadcasts_do_not_run(store, servers, pages):
    server = servers()
    page = pages(server, "ann._.w")
    for payload in XSS:
        commit(store, alarm(payload, reason=payload), broadcast(payload))
    page.page.fill(".tr-broadcast-form input", XSS[0])
    page.page.click(".tr-broadcast-form button")
    page.wait(lambda: len(page.events()) == 2 * len(XSS) + 1)
    page.page.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert page.xss == 0
    # Shown as text: the banner holds the last alarm, the bar the last broadcast.
    assert f'ALARM: "{XSS[2]}"' in page.text and f"NewStateReason\n{XSS[2]}" in page.text
    assert XSS[0] in page.text
    assert [e["text"] for e in page.events("operator.broadcast")] == [*XSS, XSS[0]]
    assert page.page.locator("#tr-live img, #tr-live script, #tr-live svg").count() == 0


def test_replay_after_the_server_dropped_the_connection_in_order_without_duplicates(store, servers, pages):
    server = servers()
    page = pages(server)
    commit(store, alarm("before-1"), broadcast("b1"))
    page.wait(lambda: len(page.events()) == 2)
    page.page.click(".tr-enable-sound")
    server.stop()  # mid-stream: the browser sees the connection drop
    page.wait(lambda: page.state.get("connection") == "connecting")
    commit(store, alarm("missed-1"), broadcast("missed-2"), alarm("bob-missed", owner="bob"))
    restarted = servers(port=server.port)
    page.wait(lambda: len(page.events()) == 4 and page.state.get("connection") == "open", timeout=30)
    commit(store, alarm("after-1"))
    page.wait(lambda: len(page.events()) == 5)
    ids = [e["id"] for e in page.events()]
    assert ids == sorted(set(ids))  # in order, each once
    names = [e.get("alarm_name") or e.get("text") for e in page.events()]
    assert names == ["before-1", "b1", "missed-1", "missed-2", "after-1"]
    assert page.state["siren"] == "on"  # a missed alarm is still an alarm
    assert restarted.proc.poll() is None


@pytest.mark.redis
def test_two_console_processes_on_one_redis_bus_each_deliver_to_their_pages(store, servers, pages, stream):
    first, second = servers(stream), servers(stream)
    on_first = [pages(first, "ann.alice.w"), pages(first, "op._.r")]
    on_second = [pages(second, "al.alice.r"), pages(second, "bob.bob.r")]
    commit(store, alarm("shared-alarm"))  # committed once, by a third process (this test)
    for p in (*on_first, on_second[0]):
        p.wait(lambda p=p: [e["alarm_name"] for e in p.events("alarm.state")] == ["shared-alarm"])
    on_first[0].page.fill(".tr-broadcast-form input", "from the first process")
    on_first[0].page.click(".tr-broadcast-form button")
    on_second[0].wait(
        lambda: [e["text"] for e in on_second[0].events("operator.broadcast")] == ["from the first process"]
    )
    assert on_second[1].events() == []  # bob sees neither alice's alarm nor her broadcast
    ids = {p.events()[0]["id"] for p in (*on_first, on_second[0])}
    assert len(ids) == 1  # the same event, relayed once through the stream


def test_a_refused_stream_is_retried_until_it_is_accepted(store, servers, pages):
    server = servers()
    page = pages(server, None)  # not logged in: the stream answers 401, EventSource gives up
    page.wait(lambda: page.state.get("connection") == "closed")
    assert "retrying in" in page.text
    page.context.add_cookies([{"name": "tr_user", "value": "ann.alice.r", "url": server.url}])  # logged in
    page.wait(lambda: page.state.get("connection") == "open", timeout=30)
    commit(store, alarm("after-login"))
    page.wait(lambda: [e["alarm_name"] for e in page.events("alarm.state")] == ["after-login"])


@pytest.mark.redis
def test_behind_a_load_balancer_without_sticky_sessions_a_page_follows_across_processes(
    store, servers, pages, stream
):
    first, second = servers(stream), servers(stream)
    balancer = RoundRobin([first.port, second.port])
    try:
        page = pages(balancer, "ann.alice.r")  # the page and its stream may land on either process
        commit(store, alarm("a"))
        page.wait(lambda: len(page.events()) == 1)
        first.stop()  # a page on it reconnects through the balancer to the other one
        commit(store, alarm("b"))
        page.wait(lambda: len(page.events()) == 2, timeout=30)
        first = servers(stream, port=first.port)
        second.stop()  # now every page had to move at least once
        commit(store, alarm("c"))
        page.wait(lambda: len(page.events()) == 3, timeout=30)
        ids = [e["id"] for e in page.events()]
        assert ids == sorted(set(ids))
        assert [e["alarm_name"] for e in page.events()] == ["a", "b", "c"]
    finally:
        balancer.close()
