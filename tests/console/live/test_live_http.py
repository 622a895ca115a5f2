"""The live routes over HTTP (a real uvicorn process): logins, CSRF, bad input, history, static files."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from livekit import alarm, broadcast, commit

pytestmark = [pytest.mark.postgres]


def call(
    server: Any,
    path: str,
    *,
    user: str | None = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    stream: bool = False,
) -> tuple[int, dict[str, str], bytes]:
    h = dict(headers or {})
    if user:
        h["Cookie"] = f"tr_user={user}"
    req = urllib.request.Request(
        server.url + path, data=body, headers=h, method="POST" if body is not None else "GET"
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            data = res.read1(65536) if stream else res.read()
            return res.status, dict(res.headers), data
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def post(server: Any, text: Any, user: str = "ann.alice.w", token: str | None = "csrf-ann", **kw: Any) -> Any:
    headers = {"Content-Type": "application/json", **({"X-CSRF-Token": token} if token else {})}
    return call(
        server, "/console/live/broadcast", user=user, body=json.dumps(text).encode(), headers=headers, **kw
    )


@pytest.fixture
def server(servers: Any) -> Any:
    return servers()


def test_stream_needs_a_login_and_speaks_sse(server):
    status, _, body = call(server, "/console/live/stream")
    assert status == 401 and json.loads(body) == {"error": "not logged in"}
    status, headers, body = call(server, "/console/live/stream", user="ann.alice.r", stream=True)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert b"event: hello" in body and b'"canWrite":false' in body


def test_junk_last_event_id_counts_as_a_new_page(server):
    for junk in ("abc", "-5", "9" * 40, "1e9", "\u00b2"):
        status, _, body = call(
            server, "/console/live/stream", user="a.alice.r", headers={"Last-Event-ID": junk}, stream=True
        )
        assert status == 200 and b"event: hello" in body
    for junk in ("%C2%B2", "%EF%BC%91", "x"):  # superscript two, fullwidth one: digits, not ASCII
        status, _, body = call(
            server, f"/console/live/stream?lastEventId={junk}", user="a.alice.r", stream=True
        )
        assert status == 200 and b"event: hello" in body


def test_broadcast_refused_without_write_access_or_csrf(server, store):
    assert post(server, {"text": "x"}, token=None)[0] == 403
    assert post(server, {"text": "x"}, token="csrf-someone-else")[0] == 403
    assert post(server, {"text": "x"}, user="ro.alice.r", token="csrf-ro")[0] == 403
    status, _, body = post(server, {"text": "x"}, user="")
    assert status == 403 and "CSRF" in json.loads(body)["error"]
    assert store.events_after(0) == []  # nothing was broadcast


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ({"text": ""}, "text: a broadcast needs some text"),
        ({"text": "x" * 1001}, "text: at most 1000 characters; got 1001"),
        ({"text": "bell\x07"}, "text: control character U+0007 is not allowed"),
        ({"message": "x"}, 'text: expected a JSON object {"text": "..."} with a string'),
        ([1, 2], 'text: expected a JSON object {"text": "..."} with a string'),
        ({"text": 5}, 'text: expected a JSON object {"text": "..."} with a string'),
    ],
)
def test_bad_broadcasts_are_refused_naming_the_field(server, text, error):
    status, _, body = post(server, text)
    assert (status, json.loads(body)["error"]) == (400, error)


def test_broadcast_bodies_that_are_not_json_or_too_big(server):
    headers = {"X-CSRF-Token": "csrf-ann", "Content-Type": "application/json"}
    status, _, body = call(
        server, "/console/live/broadcast", user="ann.alice.w", body=b"{nope", headers=headers
    )
    assert status == 400 and json.loads(body)["error"].startswith("the body is not valid JSON")
    status, _, body = call(
        server, "/console/live/broadcast", user="ann.alice.w", body=b"x" * 70000, headers=headers
    )
    assert status == 400 and "over 64 KiB" in json.loads(body)["error"]
    headers["Content-Type"] = "text/plain"
    status, _, body = call(server, "/console/live/broadcast", user="ann.alice.w", body=b"hi", headers=headers)
    assert status == 400 and "content type 'text/plain'" in json.loads(body)["error"]
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    status, _, body = call(
        server, "/console/live/broadcast", user="ann.alice.w", body=b"text=from+a+form", headers=headers
    )
    assert status == 200 and json.loads(body)["text"] == "from a form"


def test_history_is_the_viewers_own_recent_alarms_and_broadcasts(server, store):
    commit(store, alarm("mine"), alarm("bobs", owner="bob"), broadcast("all"))
    post(server, {"text": "  sent by ann  "})

    def history(user: str) -> list[Any]:
        status, _, body = call(server, "/console/live/history?limit=10", user=user)
        assert status == 200
        return [e.get("alarm_name") or e.get("text") for e in json.loads(body)["events"]]

    # The history is the hub's; it catches up with the outbox within a poll.
    import time

    deadline = time.monotonic() + 10
    while len(history("op._.r")) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert history("a.alice.r") == ["mine", "all", "sent by ann"]
    assert history("b.bob.r") == ["bobs", "all"]
    assert history("op._.r") == ["mine", "bobs", "all", "sent by ann"]
    assert call(server, "/console/live/history")[0] == 401
    for bad in ("0", "1001", "ten", "-1", "%C2%B2", "0" * 50 + "1"):
        status, _, body = call(server, f"/console/live/history?limit={bad}", user="a.alice.r")
        assert status == 400 and json.loads(body)["error"].startswith(
            "limit: expected a number from 1 to 1000"
        )


def test_static_files_with_their_content_types_and_nothing_else(server):
    status, headers, body = call(server, "/console/static/live.js")
    assert status == 200 and headers["content-type"] == "text/javascript; charset=utf-8"
    assert b"EventSource" in body and headers["x-content-type-options"] == "nosniff"
    status, headers, _ = call(server, "/console/static/live.css")
    assert status == 200 and headers["content-type"] == "text/css; charset=utf-8"
    for name in ("hub.py", "..%2Fhub.py", "%2e%2e/routes.py", "live.jsx"):
        assert call(server, f"/console/static/{name}")[0] == 404
