"""Pipelines on the Spark cluster: the seed pipeline with its EmrCluster mapped to Spark writes
what the DuckDB run writes (inputs staged as tables, outputs committed), and EmrActivity steps
(spark-submit on the cluster, hive-script through the engine, any other jar refused)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tailrace.cli.main import run as cli
from tailrace.sample.accesslog import hits, write_fluentd_objects
from tailrace.sample.demo import seed_definition_text
from tailrace.services import build_services

pytestmark = pytest.mark.spark
DAY1 = datetime(2012, 12, 24, tzinfo=UTC)


def tailrace(*argv: str) -> int:
    return cli(list(argv), build_services)


def config(path: Path, spark_options, *, emr_cluster: bool) -> Path:
    conf = "\n".join(f'"{k}" = "{v}"' for k, v in spark_options.conf)
    path.write_text(
        f'[spark]\nmaster = "{spark_options.master}"\nstaging_dir = "{spark_options.staging_dir}"\n'
        f"emr_cluster = {'true' if emr_cluster else 'false'}\n\n[spark.conf]\n{conf}\n"
    )
    return path


def read_dir(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


def test_seed_pipeline_on_an_emr_cluster_mapped_to_spark_writes_what_duckdb_writes(
    tmp_path, monkeypatch, spark_session, spark_options, capsys
):
    definition = tmp_path / "log-pipeline.json"
    definition.write_text(seed_definition_text())
    written: dict[bool, dict[str, dict[str, bytes]]] = {}
    for emr in (False, True):
        home = tmp_path / f"home-{emr}"
        home.mkdir()
        monkeypatch.setenv("TAILRACE_HOME", str(home))
        monkeypatch.setenv(
            "TAILRACE_CONFIG", str(config(tmp_path / f"t-{emr}.toml", spark_options, emr_cluster=emr))
        )
        by_host = {
            f"ip-10-0-0-{n}": list(hits(DAY1, DAY1 + timedelta(days=1), per_hour=90, seed=n)) for n in (1, 2)
        }
        write_fluentd_objects(home / "s3" / "memorycraft-us-log" / "logs", by_host)
        assert tailrace("run", str(definition), "--until", "2012-12-25T00:00:00") == 0, capsys.readouterr()
        out = capsys.readouterr().out
        assert (
            "@archive_2012-12-24T00:00:00  FINISHED" in out and "@stats_2012-12-24T00:00:00  FINISHED" in out
        )
        base = home / "s3" / "memorycraft-us-log-archive"
        written[emr] = {k: read_dir(base / k / "2012-12-24") for k in ("archive", "stats")}
        logs = "".join(p.read_text() for p in (home / "s3" / "memorycraft-us-hive-log").rglob("attempt.log"))
        assert ("engine: spark (runsOn an EmrCluster" in logs) is emr
        if emr:
            assert "spark: reusing the session" in logs  # the worker's long-lived session
    assert written[True] == written[False]
    assert list(written[True]["archive"]) == ["000000_0"] and written[True]["archive"]["000000_0"]


def _emr_definition(steps: list[str]) -> str:
    import json

    return json.dumps(
        {
            "objects": [
                {
                    "id": "Default",
                    "scheduleType": "cron",
                    "schedule": {"ref": "schedule"},
                    "role": "DataPipelineDefaultRole",
                    "resourceRole": "DataPipelineDefaultResourceRole",
                    "pipelineLogUri": "s3://emr-logs/pipeline/",
                },
                {
                    "id": "schedule",
                    "type": "Schedule",
                    "startDateTime": "2012-12-24T00:00:00",
                    "period": "1 Days",
                },
                {
                    "id": "cluster",
                    "type": "EmrCluster",
                    "schedule": {"ref": "schedule"},
                    "masterInstanceType": "m1.small",
                    "coreInstanceCount": "2",
                    "releaseLabel": "emr-5.36.0",
                },
                {
                    "id": "steps",
                    "type": "EmrActivity",
                    "schedule": {"ref": "schedule"},
                    "runsOn": {"ref": "cluster"},
                    "step": steps,
                },
            ]
        }
    )


def test_emr_activity_runs_spark_submit_and_hive_script_steps_on_the_cluster(
    tmp_path, monkeypatch, spark_session, spark_options, capsys
):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("TAILRACE_HOME", str(home))
    monkeypatch.setenv("TAILRACE_CONFIG", str(config(tmp_path / "t.toml", spark_options, emr_cluster=True)))
    code = home / "s3" / "emr-code"
    code.mkdir(parents=True)
    result = tmp_path / "app-result.txt"
    (code / "app.py").write_text(
        "import sys\nfrom pyspark.sql import SparkSession\n"
        "s = SparkSession.builder.getOrCreate()\n"
        "open(sys.argv[1], 'w').write(f'{s.sparkContext.master} {s.range(1000).count()}')\n"
        "s.stop()\n"
    )
    data = home / "s3" / "emr-data" / "in"
    data.mkdir(parents=True)
    (data / "part-0").write_text("a\t1\nb\t2\na\t3\n")
    (code / "job.q").write_text(
        "CREATE EXTERNAL TABLE src (k string, v int) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' "
        "LOCATION 's3://emr-data/in/';\n"
        "CREATE EXTERNAL TABLE dst (k string, n bigint) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' "
        "LOCATION '${OUT}';\n"
        "INSERT OVERWRITE TABLE dst SELECT k, sum(v) FROM src GROUP BY k;\n"
    )
    steps = [
        f"command-runner.jar,spark-submit,--deploy-mode,cluster,s3://emr-code/app.py,{result}",
        "s3://us-east-1.elasticmapreduce/libs/script-runner/script-runner.jar,"
        "s3://us-east-1.elasticmapreduce/libs/hive/hive-script,--base-path,s3://us-east-1.elasticmapreduce/libs/hive/,"
        "--run-hive-script,--args,-f,s3://emr-code/job.q,-d,OUT=s3://emr-data/out/",
    ]
    definition = tmp_path / "emr.json"
    definition.write_text(_emr_definition(steps))
    assert tailrace("run", str(definition), "--until", "2012-12-25T00:00:00") == 0, capsys.readouterr()
    out = capsys.readouterr()
    assert "@steps_2012-12-24T00:00:00  FINISHED" in out.out
    # spark-submit ran against the configured cluster master, not EMR's (--deploy-mode ignored).
    assert result.read_text() == f"{spark_options.master} 1000"
    assert (home / "s3" / "emr-data" / "out" / "000000_0").read_text() == "a\t4\nb\t2\n"
    logs = "".join(p.read_text() for p in (home / "s3" / "emr-logs").rglob("attempt.log"))
    assert "--deploy-mode cluster ignored (client mode)" in logs


def test_emr_activity_refuses_another_jar_naming_the_step(tmp_path, monkeypatch, spark_options, capsys):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("TAILRACE_HOME", str(home))
    monkeypatch.setenv("TAILRACE_CONFIG", str(config(tmp_path / "t.toml", spark_options, emr_cluster=True)))
    definition = tmp_path / "emr.json"
    marker = tmp_path / "ran"
    definition.write_text(
        _emr_definition(
            [
                f"command-runner.jar,spark-submit,s3://emr-code/app.py,{marker}",
                "s3://mybucket/wordcount.jar,org.example.WordCount,s3://in,s3://out",
            ]
        )
    )
    assert tailrace("run", str(definition), "--until", "2012-12-25T00:00:00") == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "@steps_2012-12-24T00:00:00  FAILED" in out.out
    assert "step 2 (s3://mybucket/wordcount.jar) cannot run here" in text
    assert not marker.exists()  # checked before the first step ran
