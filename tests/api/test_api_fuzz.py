"""Property tests: whatever arrives, the API answers without a 5xx, every error is a well-formed
AWS error, and every success parses with botocore's own JSON parser against the output shape."""

from __future__ import annotations

import contextlib
import json
import os
import string
from datetime import timedelta
from urllib.parse import quote

import pytest
from api_helpers import DEFINITION, T0, client_for
from botocore.parsers import create_parser
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rawhttp import send, signed_headers

from tailrace.api import shapes
from tailrace.api.app import create_app
from tailrace.api.keys import KeyStore
from tailrace.api.server import ApiServer
from tailrace.clock import FrozenClock, SystemClock
from tailrace.definition import from_file_dict, to_wire
from tailrace.runtime.scheduler import Scheduler
from tailrace.runtime.service import PipelineService
from tailrace.state import open_store
from tailrace.state.testing import postgres_available, temporary_schema

PG_URL = os.environ.get("TAILRACE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

OPS = sorted(shapes.operation_names())
HEADER_CHARS = string.ascii_letters + string.digits + ".-_ #"
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def live(tmp_path_factory, request):
    tmp = tmp_path_factory.mktemp("fuzz")
    clock = FrozenClock(T0)
    with contextlib.ExitStack() as stack:
        url = f"sqlite:///{tmp}/state.db"
        if request.param == "postgres":
            # PostgreSQL refuses NUL in text: what SQLite stores, it must answer as a client error.
            reason = postgres_available(PG_URL)
            if reason:
                pytest.skip(f"PostgreSQL at {PG_URL} is not reachable ({reason})")
            url = stack.enter_context(temporary_schema(PG_URL))
        yield from _serve(tmp, clock, url)


def _serve(tmp, clock, url):
    store = open_store(url, clock=clock)
    service = PipelineService(store=store, home=tmp / "home", clock=clock)
    keys = KeyStore(store, SystemClock())
    key = keys.create("fuzzer")
    app = create_app(service=service, store=store, keys=keys, clock=SystemClock(), poll_wait=0)
    with ApiServer(app) as srv:
        dp = client_for(srv.url, key)
        pid = dp.create_pipeline(name="fuzz", uniqueId="fuzz")["pipelineId"]
        dp.put_pipeline_definition(pipelineId=pid, **to_wire(from_file_dict(DEFINITION)))
        dp.activate_pipeline(pipelineId=pid, startTimestamp=T0 - timedelta(days=2))
        Scheduler(store=store, transitions=service.transitions, clock=clock).tick()
        yield srv, key, pid
    store.close()


def _json_values() -> st.SearchStrategy:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**63)
        | st.floats(allow_nan=False)
        | st.text(max_size=40)
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=12,
    )


def _mostly(good: st.SearchStrategy, junk: st.SearchStrategy) -> st.SearchStrategy:
    # Hypothesis favours the bounds of a range, so the rare branch sits in the middle of it.
    return st.integers(0, 15).flatmap(lambda n: junk if n == 7 else good)


def _for_shape(shape, known: list[str], depth: int = 0) -> st.SearchStrategy:
    """Mostly well-typed values for the shape (so requests reach the handlers), sometimes junk."""
    junk = _json_values()
    kind = shape.type_name
    if depth > 4:
        return junk
    if kind == "structure":
        members = {name: _for_shape(member, known, depth + 1) for name, member in shape.members.items()}
        required = {n: members.pop(n) for n in shape.metadata.get("required", ())}
        return _mostly(st.fixed_dictionaries(required, optional=members), junk)
    if kind == "list":
        return _mostly(st.lists(_for_shape(shape.member, known, depth + 1), max_size=4), junk)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), _for_shape(shape.value, known, depth + 1), max_size=3)
    if kind == "string":
        good = st.sampled_from(shape.enum) if shape.enum else st.sampled_from(known)
        return _mostly(st.one_of(good, st.text(max_size=30)), junk)
    if kind == "timestamp":
        return st.one_of(
            st.integers(-(10**12), 10**12),
            st.floats(allow_nan=False, allow_infinity=True),
            st.text(max_size=25),
        )
    if kind == "boolean":
        return _mostly(st.booleans(), junk)
    if kind == "integer":
        return _mostly(st.integers(-5, 2000), junk)
    return junk


def _request(live_pid: str):
    known = [
        live_pid,
        "Default",
        "Hello",
        "Daily",
        "@Hello_2026-01-03T00:00:00",
        "wg-1",
        "@sphere",
        "@status",
        "INSTANCE",
        "COMPONENT",
        "ATTEMPT",
        "latest",
        "active",
        "FINISHED",
        "RERUN",
        "PAUSE",
        "#{myMsg}",
        "#{format(@scheduledStartTime,'YYYY')}",
        "#{",
        "BETWEEN",
        "EQ",
    ]
    return st.sampled_from(OPS).flatmap(
        lambda op: st.tuples(st.just(op), _for_shape(shapes.operation(op).input_shape, known))
    )


def _assert_aws_error(status: int, payload: bytes) -> None:
    body = json.loads(payload)
    assert isinstance(body, dict), payload
    assert isinstance(body.get("__type"), str) and "#" in body["__type"], payload
    assert isinstance(body.get("message"), str) and body["message"], payload


def _check_json_answer(op: str | None, status: int, headers: dict[str, str], payload: bytes) -> None:
    assert status < 500, payload
    if status >= 400:
        _assert_aws_error(status, payload)
        return
    assert op is not None
    parsed = create_parser("json").parse(
        {"body": payload, "headers": {k.lower(): v for k, v in headers.items()}, "status_code": status},
        shapes.operation(op).output_shape,
    )
    assert "Error" not in parsed


@FUZZ
@given(data=st.data())
def test_json_endpoint_typed_requests(live, data):
    """Signed requests whose bodies mostly follow the input shape, so they reach the service."""
    srv, key, pid = live
    op, body = data.draw(_request(pid))
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"DataPipeline.{op}"}
    headers = signed_headers(srv.url + "/", raw, key.access_key_id, key.secret_access_key, headers=headers)
    status, resp_headers, payload = send(srv.url + "/", body=raw, headers=headers)
    event(f"{op} {status}")
    _check_json_answer(op, status, resp_headers, payload)


@FUZZ
@given(
    target=st.one_of(
        st.sampled_from(OPS).map(lambda o: f"DataPipeline.{o}"), st.text(alphabet=HEADER_CHARS, max_size=30)
    ),
    raw=st.one_of(st.binary(max_size=80), _json_values().map(lambda v: json.dumps(v).encode())),
    signed=st.booleans(),
    method=st.sampled_from(["POST", "PUT", "GET", "DELETE"]),
)
def test_json_endpoint_raw_requests(live, target, raw, signed, method):
    """Any target, any bytes, signed or not, any method."""
    srv, key, _ = live
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
    if signed:
        headers = signed_headers(
            srv.url + "/", raw, key.access_key_id, key.secret_access_key, headers=headers, method=method
        )
    status, resp_headers, payload = send(srv.url + "/", method=method, body=raw, headers=headers)
    if method == "GET" and status == 200:
        assert json.loads(payload)["service"] == "tailrace"  # GET / is the index
        return
    op = target.removeprefix("DataPipeline.")
    _check_json_answer(op if op in OPS else None, status, resp_headers, payload)


_segments = st.one_of(
    st.sampled_from(
        [
            "pipelines",
            "grid",
            "graph",
            "runs",
            "instances",
            "attempts",
            "log",
            "events",
            "@Hello_2026-01-03T00:00:00",
            "@Hello_2026-01-03T00:00:00_Attempt=1",
            "..",
            "\x00",
            "activation-preview",
        ]
    ),
    st.text(alphabet=string.printable, max_size=12),
)


@FUZZ
@given(data=st.data())
def test_rest_api_never_fails_on_any_input(live, data):
    srv, key, pid = live
    parts = data.draw(st.lists(st.one_of(st.just(pid), _segments), max_size=5))
    query = data.draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "limit",
                    "after",
                    "from",
                    "to",
                    "offset",
                    "pipelineId",
                    "status",
                    "startedBetween",
                    "scheduledBetween",
                    "x",
                ]
            ),
            st.one_of(
                st.integers(-5, 2000).map(str),
                st.text(max_size=20),
                st.sampled_from(["\x00", "a\x00b", "\x7f", "\ud7ff\x01"]),
                st.just("2026-01-04T00:00:00"),
                st.just("2026-01-01T00:00:00,2026-01-05T00:00:00"),
                st.just("0001-01-01T00:00:00,9999-12-31T23:59:59"),
                st.just("9999-12-31T23:59:59"),
                st.sampled_from(["finished", "RUNNING,cancelled", ","]),
                st.just(pid),
            ),
            max_size=3,
        )
    )
    path = "/api/v1/" + "/".join(quote(p, safe="@=:") for p in parts)
    if query:
        path += "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items())
    url = srv.url + path
    headers = signed_headers(url, b"", key.access_key_id, key.secret_access_key, method="GET")
    status, _, payload = send(url, method="GET", headers=headers)
    assert status < 500, (path, payload)
    if status >= 400:
        _assert_aws_error(status, payload)
