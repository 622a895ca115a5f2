"""S3 with an endpoint configured: inputs are downloaded to staging, outputs uploaded on commit."""

from __future__ import annotations

import gzip

import pytest
from hive_helpers import SEED
from hive_reference import seed_outputs

from tailrace.engines.hive import HiveEngine, HiveError
from tailrace.storage import Storage
from tailrace.storage.s3 import S3Store

LINES = [
    '2012-12-21T00:00:01+09:00\tapache.access\t{"host":"h1","path":"/a","size":"10"}',
    "2012-12-21T00:00:02+09:00\tapache.access\t{broken",
    '2012-12-20T23:59:59+09:00\tapache.access\t{"host":"h0","path":"/old"}',
    '2012-12-21T00:00:00+09:00\tapache.access\t{"host":"h2","path":"/a","size":"-"}',
]


@pytest.fixture
def remote(moto_url, data_home, metastore, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = S3Store(endpoint_url=moto_url, access_key_id="testing", secret_access_key="testing")
    for bucket in ("memorycraft-log", "memorycraft-log-archive"):
        try:
            store.client.create_bucket(Bucket=bucket)
        except store.client.exceptions.BucketAlreadyOwnedByYou:
            pass
        for obj in store.client.list_objects_v2(Bucket=bucket).get("Contents", []):
            store.client.delete_object(Bucket=bucket, Key=obj["Key"])
    engine = HiveEngine(Storage(home=data_home, s3=store), metastore, work_dir=data_home / "work")
    yield store, engine
    engine.close()


def test_seed_script_against_an_s3_endpoint(remote, data_home):
    store, engine = remote
    store.put(
        "memorycraft-log", "logs/20121221/ip-1-00_0.gz", gzip.compress(("\n".join(LINES[:2]) + "\n").encode())
    )
    store.put(
        "memorycraft-log", "logs/20121221/ip-1-01_0.gz", gzip.compress(("\n".join(LINES[2:]) + "\n").encode())
    )
    store.put("memorycraft-log-archive", "archives/20121221/stale_file", b"old")
    result = engine.run_script(SEED.read_text(), {"DATE": "20121221"})
    archive, stats, _, bad = seed_outputs(LINES, "20121221")
    assert store.get("memorycraft-log-archive", "archives/20121221/000000_0") == archive
    assert store.get("memorycraft-log-archive", "stats/20121221/000000_0") == stats
    keys = [i.key for i in store.list("memorycraft-log-archive", "")]
    assert keys == ["archives/20121221/000000_0", "stats/20121221/000000_0"]
    assert result.malformed_json == bad == 1
    assert not (data_home / "s3").exists()  # nothing went to the embedded store


def test_missing_s3_input_is_an_error(remote):
    _, engine = remote
    with pytest.raises(
        HiveError, match=r"input folder s3://memorycraft-log/logs/20121222 .*no objects under"
    ):
        engine.run_script(SEED.read_text(), {"DATE": "20121222"})
