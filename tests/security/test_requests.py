"""Requests an attacker (or a broken client) sends: each gets a structured AWS error, never a
500, and nothing is read or evaluated past its bound."""

from __future__ import annotations

import hashlib
import json
import socket
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import pytest
from api_helpers import DEFINITION, client_for
from rawhttp import send, signed_headers

from tailrace.api.app import create_app
from tailrace.api.keys import KeyStore
from tailrace.api.server import ApiServer
from tailrace.clock import SystemClock
from tailrace.definition import from_file_dict, to_wire
from tailrace.runtime.service import PipelineService
from tailrace.state import open_store

JSON11 = "application/x-amz-json-1.1"


@pytest.fixture
def live(tmp_path, db_url):
    store = open_store(db_url)
    service = PipelineService(store=store, home=tmp_path / "home", clock=SystemClock())
    keys = KeyStore(store, SystemClock(), cache_seconds=0)
    key = keys.create("mallory")
    app = create_app(service=service, store=store, keys=keys, clock=SystemClock())
    with ApiServer(app) as srv:
        dp = client_for(srv.url, key)
        pid = dp.create_pipeline(name="p", uniqueId="p")["pipelineId"]
        dp.put_pipeline_definition(pipelineId=pid, **to_wire(from_file_dict(DEFINITION)))
        yield srv, key, pid, dp
    store.close()


def _get(srv, key, path: str) -> tuple[int, dict]:
    url = srv.url + path
    headers = signed_headers(url, b"", key.access_key_id, key.secret_access_key, method="GET")
    status, _, payload = send(url, method="GET", headers=headers)
    return status, json.loads(payload)


def _aws_error(status: int, body: dict) -> str:
    assert 400 <= status < 500, body
    assert "#" in body["__type"] and body["message"], body
    return body["__type"].split("#")[1]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/pipelines/{pid}/instances/%00",
        "/api/v1/pipelines?after=%00",
        "/api/v1/pipelines/{pid}/runs?scheduledBetween=2026-01-01T00:00:00,9999-12-31T23:59:59",
        "/api/v1/pipelines/{pid}/runs?startedBetween=0001-01-01T00:00:00,9999-12-31T23:59:59",
        "/api/v1/pipelines/{pid}/grid?from=9999-12-31T23:59:59&to=0001-01-01T00:00:00",
        "/api/v1/pipelines/%00/graph",
        "/api/v1/events?pipelineId=%00",
    ],
)
def test_rest_nul_and_extreme_dates_are_client_errors(live, path):
    srv, key, pid, _ = live
    status, body = _get(srv, key, path.format(pid=pid))
    if status != 200:
        _aws_error(status, body)


def test_activation_preview_of_a_schedule_in_year_9999_is_answered(live):
    srv, key, pid, dp = live
    definition = json.loads(json.dumps(DEFINITION))
    definition["objects"][1]["startDateTime"] = "9999-12-31T00:00:00"
    dp.put_pipeline_definition(pipelineId=pid, **to_wire(from_file_dict(definition)))
    url = srv.url + f"/api/v1/pipelines/{pid}/activation-preview"
    raw = json.dumps({}).encode()
    headers = signed_headers(
        url,
        raw,
        key.access_key_id,
        key.secret_access_key,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    status, _, payload = send(url, method="POST", body=raw, headers=headers)
    body = json.loads(payload)
    if status == 200:
        assert body["periods"] == 0
    else:
        assert _aws_error(status, body) == "InvalidRequestException"
        assert "9999" in body["message"] or "range" in body["message"]


def _raw_post(srv, headers: dict[str, str], declared: int, sent: bytes) -> tuple[int, bytes]:
    """POST with a Content-Length of `declared` but only `sent` bytes written: the answer must
    come without the server waiting for (or reading) the rest."""
    parts = urlsplit(srv.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
        head = f"POST / HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {declared}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode() + sent)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head_part, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head_part.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
    return int(head_part.split(b" ")[1]), rest


def test_unauthenticated_body_is_refused_before_it_is_read(live):
    """A 24 MiB body with no signature: the answer comes after the headers alone."""
    srv, _, _, _ = live
    status, payload = _raw_post(
        srv, {"X-Amz-Target": "DataPipeline.ListPipelines", "Content-Type": JSON11}, 24 << 20, b"{"
    )
    assert _aws_error(status, json.loads(payload)) == "MissingAuthenticationTokenException"


def test_unknown_key_is_refused_before_the_body_is_read(live):
    srv, key, _, _ = live
    headers = signed_headers(
        srv.url + "/",
        b"{}",
        "AKIDNOSUCHKEY",
        key.secret_access_key,
        headers={"X-Amz-Target": "DataPipeline.ListPipelines", "Content-Type": JSON11},
    )
    headers.pop("Content-Length", None)
    status, payload = _raw_post(srv, headers, 24 << 20, b"{")
    assert _aws_error(status, json.loads(payload)) == "UnrecognizedClientException"


def test_bad_signature_with_declared_payload_hash_is_refused_before_the_body_is_read(live):
    srv, key, _, _ = live
    body = b"{}"
    headers = signed_headers(
        srv.url + "/",
        body,
        key.access_key_id,
        "not-the-secret",
        headers={
            "X-Amz-Target": "DataPipeline.ListPipelines",
            "Content-Type": JSON11,
            "X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest(),
        },
    )
    headers.pop("Content-Length", None)
    status, payload = _raw_post(srv, headers, 24 << 20, b"{")
    assert _aws_error(status, json.loads(payload)) == "InvalidSignatureException"


def test_declared_payload_hash_must_match_the_body(live):
    srv, key, _, _ = live
    headers = signed_headers(
        srv.url + "/",
        b"{}",
        key.access_key_id,
        key.secret_access_key,
        headers={
            "X-Amz-Target": "DataPipeline.ListPipelines",
            "Content-Type": JSON11,
            "X-Amz-Content-SHA256": hashlib.sha256(b"{}").hexdigest(),
        },
    )
    status, _, payload = send(srv.url + "/", body=b'{"marker": "x"}', headers=headers)
    assert _aws_error(status, json.loads(payload)) == "InvalidSignatureException"


def test_signed_body_over_the_operation_cap_is_refused_unread(live):
    srv, key, _, _ = live
    headers = signed_headers(
        srv.url + "/",
        b"{}",
        key.access_key_id,
        key.secret_access_key,
        headers={"X-Amz-Target": "DataPipeline.ListPipelines", "Content-Type": JSON11},
    )
    headers.pop("Content-Length", None)
    status, payload = _raw_post(srv, headers, 5 << 20, b"{")
    code = _aws_error(status, json.loads(payload))
    assert status == 413 and code == "RequestEntityTooLargeException"
    assert "ListPipelines" in json.loads(payload)["message"]


def test_definition_may_be_larger_than_other_bodies(live):
    srv, key, pid, dp = live
    definition = json.loads(json.dumps(DEFINITION))
    for n in range(30):
        definition["objects"].append(
            {
                "id": f"Note{n}",
                "type": "Schedule",
                "period": "1 day",
                "startDateTime": "2026-01-01T00:00:00",
                "description": "x" * 9000,
            }
        )
    dp.validate_pipeline_definition(pipelineId=pid, **to_wire(from_file_dict(definition)))  # ~270 KB
    raw = json.dumps({"pipelineIds": [pid], "pad": "x" * 200_000}).encode()
    headers = signed_headers(
        srv.url + "/",
        raw,
        key.access_key_id,
        key.secret_access_key,
        headers={"X-Amz-Target": "DataPipeline.DescribePipelines", "Content-Type": JSON11},
    )
    headers.pop("Content-Length", None)
    status, payload = _raw_post(srv, headers, len(raw), raw[:1000])  # answered without the rest
    assert status == 413 and _aws_error(status, json.loads(payload)) == "RequestEntityTooLargeException"


def _signed_call(srv, key, op: str, body: dict, *, sign_over: tuple[str, ...] | None = None):
    raw = json.dumps(body).encode()
    headers = {"X-Amz-Target": f"DataPipeline.{op}", "Content-Type": JSON11}
    headers = signed_headers(srv.url + "/", raw, key.access_key_id, key.secret_access_key, headers=headers)
    status, _, payload = send(srv.url + "/", body=raw, headers=headers)
    return status, json.loads(payload)


def test_long_expression_is_refused(live):
    srv, key, pid, _ = live
    status, body = _signed_call(
        srv,
        key,
        "EvaluateExpression",
        {"pipelineId": pid, "objectId": "Hello", "expression": "#{" + "1+" * 40_000 + "1}"},
    )
    assert _aws_error(status, body) == "InvalidRequestException"
    assert "65536" in body["message"]


def test_expensive_expression_is_stopped(live):
    """A short expression that would take long (deeply nested calls) gets a clear error."""
    srv, key, pid, _ = live
    expr = "#{" + "concat(" * 2000 + "'a'" + ",'b')" * 2000 + "}"
    status, body = _signed_call(
        srv, key, "EvaluateExpression", {"pipelineId": pid, "objectId": "Hello", "expression": expr}
    )
    assert status < 500, body
    if status != 200:
        _aws_error(status, body)


def _sign_only(url: str, raw: bytes, key, signed: list[str], headers: dict[str, str]) -> dict[str, str]:
    """Sign over exactly `signed` header names (what a replaying attacker keeps)."""
    from tailrace.api import sigv4

    host = urlsplit(url).netloc
    now = datetime.now(UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    full = {**headers, "Host": host, "X-Amz-Date": amz_date}
    auth = sigv4.Authorization(
        access_key_id=key.access_key_id,
        date=amz_date[:8],
        region="us-east-1",
        service="datapipeline",
        signed_headers=tuple(sorted(signed)),
        signature="",
    )
    canonical = sigv4.canonical_request(
        method="POST",
        raw_path="/",
        raw_query="",
        headers=list(full.items()),
        signed_headers=sorted(signed),
        payload_hash=hashlib.sha256(raw).hexdigest(),
    )
    sig = sigv4.signature(key.secret_access_key, auth, amz_date, canonical)
    full["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={key.access_key_id}/{auth.scope}, "
        f"SignedHeaders={';'.join(sorted(signed))}, Signature={sig}"
    )
    return full


def test_replay_with_another_target_is_refused(live):
    """Signed over host;x-amz-date only, then the target is swapped: refused, pipeline kept."""
    srv, key, pid, dp = live
    raw = json.dumps({"pipelineId": pid}).encode()
    headers = _sign_only(
        srv.url + "/",
        raw,
        key,
        ["host", "x-amz-date"],
        {"X-Amz-Target": "DataPipeline.GetPipelineDefinition", "Content-Type": JSON11},
    )
    headers["X-Amz-Target"] = "DataPipeline.DeletePipeline"
    status, _, payload = send(srv.url + "/", body=raw, headers=headers)
    body = json.loads(payload)
    assert _aws_error(status, body) == "IncompleteSignatureException"
    assert "x-amz-target" in body["message"].lower()
    assert dp.describe_pipelines(pipelineIds=[pid])["pipelineDescriptionList"]


@pytest.mark.parametrize("missing", ["content-type", "x-amz-target", "x-amz-security-token"])
def test_every_amz_header_target_and_content_type_must_be_signed(live, missing):
    srv, key, pid, _ = live
    raw = json.dumps({"pipelineIds": [pid]}).encode()
    given = {
        "X-Amz-Target": "DataPipeline.DescribePipelines",
        "Content-Type": JSON11,
        "X-Amz-Security-Token": "tok",
    }
    names = ["host", "x-amz-date", "content-type", "x-amz-target", "x-amz-security-token"]
    names.remove(missing)
    headers = _sign_only(srv.url + "/", raw, key, names, given)
    status, _, payload = send(srv.url + "/", body=raw, headers=headers)
    body = json.loads(payload)
    assert _aws_error(status, body) == "IncompleteSignatureException"
    assert missing in body["message"].lower()


def test_signed_over_everything_is_accepted(live):
    srv, key, pid, _ = live
    raw = json.dumps({"pipelineIds": [pid]}).encode()
    given = {"X-Amz-Target": "DataPipeline.DescribePipelines", "Content-Type": JSON11}
    headers = _sign_only(
        srv.url + "/", raw, key, ["host", "x-amz-date", "content-type", "x-amz-target"], given
    )
    status, _, payload = send(srv.url + "/", body=raw, headers=headers)
    assert status == 200, payload


def test_rest_path_with_control_characters_in_every_segment(live):
    srv, key, pid, _ = live
    for seg in (
        "\x00",
        "\x01abc",
        "a\x7fb",
        "%",
        "\udcff".encode("utf-8", "surrogatepass").decode("latin-1"),
    ):
        path = f"/api/v1/pipelines/{pid}/attempts/{quote(seg, safe='')}/log"
        status, body = _get(srv, key, path)
        _aws_error(status, body)


def test_field_fan_out_evaluation_is_stopped(live):
    """Fields that each refer twice to the next: 2^40 pieces. Stopped with a clear error."""
    srv, key, pid, dp = live
    definition = json.loads(json.dumps(DEFINITION))
    hello = definition["objects"][2]
    for n in range(40):
        hello[f"myF{n}"] = f"#{{myF{n + 1}}}#{{myF{n + 1}}}"
    hello["myF40"] = "ab"
    dp.put_pipeline_definition(pipelineId=pid, **to_wire(from_file_dict(definition)))
    status, body = _signed_call(
        srv, key, "EvaluateExpression", {"pipelineId": pid, "objectId": "Hello", "expression": "#{myF0}"}
    )
    assert _aws_error(status, body) == "InvalidRequestException"
    assert "time limit" in body["message"], body


def test_nul_in_json_strings_is_a_validation_error(live):
    srv, key, pid, _ = live
    status, body = _signed_call(srv, key, "DescribePipelines", {"pipelineIds": [pid + "\x00"]})
    assert _aws_error(status, body) == "InvalidRequestException"
    assert "pipelineIds[0]" in body["message"]
