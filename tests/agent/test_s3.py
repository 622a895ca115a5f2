"""Shipping to S3 over HTTP with real boto3 (moto's server), through an outage of the endpoint."""

from __future__ import annotations

import gzip
import socket

import boto3
import pytest

from tailrace.storage import Storage
from tailrace.storage.s3 import S3Store

from .conftest import Env, append, multiset, reference_apache2, sample_lines

moto_server = pytest.importorskip("moto.server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    url = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    client.create_bucket(Bucket="memorycraft-log")
    state = {"server": server, "port": port, "url": url, "client": client}
    yield state
    state["server"].stop()


def shipped(client) -> tuple[list[str], list[str]]:
    keys, lines = [], []
    for item in client.list_objects_v2(Bucket="memorycraft-log").get("Contents", []):
        keys.append(item["Key"])
        body = client.get_object(Bucket="memorycraft-log", Key=item["Key"])["Body"].read()
        lines += gzip.decompress(body).decode().splitlines()
    return keys, lines


def test_ships_to_s3_and_survives_the_endpoint_going_away(env: Env, s3):
    storage = Storage(home=env.home, s3=S3Store(endpoint_url=s3["url"]))
    lines = sample_lines(2000, per_hour=4000)
    agent = env.agent(storage=storage)
    append(env.log, lines[:1000])
    agent.step()
    agent.seal_all()
    agent.flush()
    keys, got = shipped(s3["client"])
    assert keys == ["logs/20240115/web1-00_0.gz"]

    s3["server"].stop()  # the endpoint is down: connection refused
    append(env.log, lines[1000:])
    for _ in range(5):
        agent.step()
        agent.seal_all()
        agent.flush()
        env.clock.advance(1)
    out = agent.status()["outputs"][0]
    assert out["retries"] >= 1 and out["last_error"] and out["chunks_queued"] >= 1

    s3["server"] = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=s3["port"])
    s3["server"].start()
    env.clock.advance(120)
    agent.step()
    agent.seal_all()
    agent.flush()
    keys, got = shipped(s3["client"])
    assert multiset(got) == multiset(reference_apache2(x) for x in lines)
    assert len(got) == 2000
    assert agent.status()["outputs"][0]["chunks_queued"] == 0
