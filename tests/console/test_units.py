"""Unit tests of the console's parts: password hashing and users, sessions and `authorize`,
escaping, the graph layout, the form reader and the cascade dry run."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from tailrace.console import graph
from tailrace.console.auth import COOKIE, SCOPE_KEY, Viewer, authorize
from tailrace.console.html import Markup, esc, fmt
from tailrace.console.users import UserStore, check_password, hash_password
from tailrace.errors import UsageError
from tailrace.state import SqlStateStore
from tailrace.state.engine import create_engine


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    from tailrace.console.app import console_routes
    from tailrace.console.auth import context_of
    from tailrace.runtime.service import PipelineService

    store = SqlStateStore(create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    service = PipelineService(store=store, home=tmp_path)
    console_routes(service=service, store=store, keys=None, clock=service.clock)
    yield context_of(_request({}, None))
    store.close()


def _arun(coro: Any) -> Any:
    """Run a coroutine on a thread of its own (Playwright's sync API may hold this thread's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _request(headers: dict[str, str], ctx: Any, method: str = "GET", body: bytes = b"") -> Request:
    scope = {
        "type": "http",
        "method": method,
        "path": "/console",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "query_string": b"",
    }
    if ctx is not None:
        scope[SCOPE_KEY] = ctx

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def test_scrypt_hash_round_trip_and_salted() -> None:
    a, b = hash_password("s3cret-pass", n=2**10), hash_password("s3cret-pass", n=2**10)
    assert a != b and a.startswith("scrypt$1024$")
    assert check_password("s3cret-pass", a) and not check_password("s3cret-pasS", a)
    assert not check_password("x", "not a hash")


def test_user_store(ctx: Any) -> None:
    users: UserStore = ctx.users
    users.create("ann", "long enough", role="readonly")
    users.create("adm", "long enough", role="admin")
    assert [(u.name, u.role, u.owner) for u in users.list()] == [
        ("adm", "admin", None),
        ("ann", "readonly", "default"),
    ]
    assert users.verify("ann", "long enough") is not None
    assert users.verify("ann", "wrong") is None and users.verify("nobody", "long enough") is None
    with pytest.raises(UsageError, match="already exists"):
        users.create("ann", "long enough")
    with pytest.raises(UsageError, match="role"):
        users.create("x", "long enough", role="root")
    with pytest.raises(UsageError, match="password"):
        users.create("x", "short")
    with pytest.raises(UsageError, match="user name"):
        users.create("a:b", "long enough")
    assert users.delete("ann") and not users.delete("ann")


def test_authorize_reads_the_session_and_checks_csrf_and_role(ctx: Any) -> None:
    token, session = ctx.sessions.open(name="op", role="operator", owner="o1")
    ro_token, ro = ctx.sessions.open(name="ro", role="readonly", owner="o1")

    def run(
        headers: dict[str, str], *, write: bool = False, method: str = "GET", body: bytes = b""
    ) -> Viewer | None:
        return _arun(authorize(_request(headers, ctx, method, body), write=write))

    cookie = {"cookie": f"{COOKIE}={token}"}
    assert run(cookie) == Viewer(name="op", owner="o1", can_write=True)
    assert run({}) is None
    assert run({"cookie": f"{COOKIE}=forged"}) is None
    assert run(cookie, write=True, method="POST") is None  # no token
    assert run({**cookie, "x-csrf-token": "nope"}, write=True, method="POST") is None
    assert run({**cookie, "x-csrf-token": session.csrf}, write=True, method="POST") is not None
    form = {**cookie, "content-type": "application/x-www-form-urlencoded"}
    assert run(form, write=True, method="POST", body=f"csrf={session.csrf}".encode()) is not None
    ro_cookie = {"cookie": f"{COOKIE}={ro_token}", "x-csrf-token": ro.csrf}
    assert run(ro_cookie) == Viewer(name="ro", owner="o1", can_write=False)
    assert run(ro_cookie, write=True, method="POST") is None
    ctx.sessions.close(token)
    assert run(cookie) is None


def test_fmt_escapes_everything_but_markup() -> None:
    out = fmt("<p title='{t}'>{x}{m}</p>", t="'\"><script>", x="<img src=x onerror=1>", m=Markup("<b>ok</b>"))
    assert out == "<p title='&#x27;&quot;&gt;&lt;script&gt;'>&lt;img src=x onerror=1&gt;<b>ok</b></p>"
    assert esc(None) == ""


def _chain_graph(n: int) -> tuple[list[graph.Node], list[graph.Edge]]:
    nodes, refs = [], []
    for i in range(n + 1):
        nodes.append(graph.Node(id=f"dn{i}", name=f"dn{i}", type="S3DataNode", category="datanode"))
    for i in range(n):
        nodes.append(
            graph.Node(id=f"act{i}", name=f"act{i}", type="ShellCommandActivity", category="activity")
        )
        refs.append((f"act{i}", "input", f"dn{i}"))
        refs.append((f"act{i}", "output", f"dn{i + 1}"))
        if i % 3 == 0 and i:
            refs.append((f"act{i}", "dependsOn", f"act{i - 3}"))
    nodes.append(graph.Node(id="pool", name="pool", type="Ec2Resource", category="resource"))
    refs += [(f"act{i}", "runsOn", "pool") for i in range(n)]
    return nodes, graph.edges_of(nodes, refs)


def test_layout_of_a_large_graph_is_layered_and_free_of_overlaps() -> None:
    nodes, edges = _chain_graph(25)  # 52 objects
    pos = graph.layout(nodes, edges)
    assert set(pos) == {n.id for n in nodes}
    assert len(set(pos.values())) == len(nodes)  # no two nodes in one place
    forward = [e for e in edges if pos[e.source][0] < pos[e.target][0]]
    assert len(forward) == len(edges)  # a DAG: every arrow points right
    assert max(c for c, _ in pos.values()) >= 25  # the chain is spread over layers


def test_layout_survives_a_cycle_and_renders_ids_as_text() -> None:
    nodes = [graph.Node(id=i, name=i, type="ShellCommandActivity", category="activity") for i in ("a", "<b>")]
    edges = graph.edges_of(nodes, [("a", "dependsOn", "<b>"), ("<b>", "dependsOn", "a")])
    assert len(graph.layout(nodes, edges)) == 2
    svg = graph.render(nodes, edges, selected="a")
    assert "<b>" not in svg and "&lt;b&gt;" in svg


def test_form_reader_parses_multipart_and_caps_size() -> None:
    from tailrace.console.forms import FormTooLarge, read_form

    body = (
        b'--XX\r\nContent-Disposition: form-data; name="csrf"\r\n\r\ntok\r\n'
        b'--XX\r\nContent-Disposition: form-data; name="definition"; filename="d.json"\r\n'
        b'Content-Type: application/json\r\n\r\n{"objects": []}\r\n--XX--\r\n'
    )
    headers = {"content-type": "multipart/form-data; boundary=XX", "content-length": str(len(body))}
    form = _arun(read_form(_request(headers, None, "POST", body)))
    assert form.get("csrf") == "tok"
    assert (
        form.files["definition"].filename == "d.json" and form.files["definition"].data == b'{"objects": []}'
    )
    with pytest.raises(FormTooLarge):
        _arun(read_form(_request(headers, None, "POST", body), limit=10))


def test_live_routes_are_mounted_with_authorize(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from starlette.routing import Mount, Route

    from tailrace.console import auth
    from tailrace.console.app import console_routes
    from tailrace.runtime.service import PipelineService

    seen: dict[str, Any] = {}

    def live_routes(*, store: Any, bus: Any, authorize: Any) -> list[Any]:
        seen.update(store=store, bus=bus, authorize=authorize)

        async def ok(request: Any) -> Any:
            raise AssertionError

        return [Route("/console/live/stream", ok), Route("/live/other", ok)]

    fake = types.ModuleType("tailrace.console.live")
    fake.live_routes = live_routes  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tailrace.console.live", fake)
    store = SqlStateStore(create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    service = PipelineService(store=store, home=tmp_path)
    routes = console_routes(service=service, store=store, keys=None, clock=service.clock, bus="the bus")
    assert seen == {"store": store, "bus": "the bus", "authorize": auth.authorize}
    assert getattr(routes[0], "path", None) == "/console/live/stream"  # before the console's own
    assert isinstance(routes[1], Mount) and routes[1].path == "/console"  # a relative one, under /console
    store.close()


def test_periods_pages_a_backfill_latest_first(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from tailrace.state import Instance, Pipeline, PipelineState, Status

    store = SqlStateStore(create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    with store.transaction() as tx:
        tx.pipelines.add(
            Pipeline(
                id="df-P",
                name="p",
                unique_id="p",
                owner="o",
                state=PipelineState.SCHEDULED,
                created_at=t0,
                updated_at=t0,
            )
        )
        tx.instances.add_many(
            [
                Instance(
                    pipeline_id="df-P",
                    id=f"@{c}_{w}",
                    component_id=c,
                    category="ACTIVITY",
                    type="ShellCommandActivity",
                    window=w,
                    scheduled_start=t0 + timedelta(hours=w),
                    scheduled_end=t0 + timedelta(hours=w + 1),
                    run_at=t0 + timedelta(hours=w + 1),
                    status=Status.FINISHED,
                    definition_version=1,
                    created_at=t0,
                    updated_at=t0,
                )
                for w in range(10)
                for c in ("a", "b")
            ]
        )
    with store.transaction(readonly=True) as tx:
        latest = tx.instances.periods("df-P", limit=3)
        older = tx.instances.periods("df-P", before=latest[-1][0], limit=3)
        since = tx.instances.periods("df-P", since=t0 + timedelta(hours=8))
    assert [s.hour for s, _ in latest] == [9, 8, 7] and [s.hour for s, _ in older] == [6, 5, 4]
    assert [s.hour for s, _ in since] == [9, 8]
    store.close()


def test_an_attempt_id_with_a_slash_reaches_the_log_routes(tmp_path: Path) -> None:
    """A component id may hold '/': its attempt id, percent-encoded in the page's links, is one
    path parameter of the log and log-stream routes (the path is matched decoded)."""
    from starlette.routing import Match

    from tailrace.console.app import console_routes
    from tailrace.runtime.service import PipelineService

    store = SqlStateStore(create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    service = PipelineService(store=store, home=tmp_path)
    routes = console_routes(service=service, store=store, keys=None, clock=service.clock)
    aid = "@Say/Hello_2026-01-03T00:00:00_Attempt=1"
    for tail in ("/log", "/log/stream"):
        scope = {"type": "http", "method": "GET", "path": f"/console/pipelines/df-X/attempts/{aid}{tail}"}
        found = [child for r in routes for match, child in [r.matches(scope)] if match == Match.FULL]
        assert len(found) == 1, tail
        assert found[0]["path_params"] == {"pipeline_id": "df-X", "attempt_id": aid}
    store.close()
