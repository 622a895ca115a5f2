"""EmrActivity steps read as EMR writes them, and the [spark] section's checks (no Spark needed;
the steps running on a real cluster are in tests/engines/test_spark_pipeline.py)."""

from __future__ import annotations

import pytest

from tailrace.config import load_settings
from tailrace.errors import ConfigError
from tailrace.runtime.activities.emr import classify, hive_arguments, split_step
from tailrace.runtime.staging import ActivityError


def test_commas_escaped_in_a_step_stay_inside_the_argument():
    assert split_step("command-runner.jar,spark-submit,--conf,a=1\\,2,s3://b/app.py") == [
        "command-runner.jar",
        "spark-submit",
        "--conf",
        "a=1,2",
        "s3://b/app.py",
    ]


@pytest.mark.parametrize(
    "step, kind, args",
    [
        (
            "command-runner.jar,spark-submit,--class,X,s3://b/a.jar,1",
            "spark-submit",
            ["--class", "X", "s3://b/a.jar", "1"],
        ),
        (
            "/usr/share/aws/emr/command-runner.jar,hive-script,--run-hive-script,--args,-f,s3://b/q.q",
            "hive-script",
            ["--run-hive-script", "--args", "-f", "s3://b/q.q"],
        ),
        (
            "s3://us-east-1.elasticmapreduce/libs/script-runner/script-runner.jar,"
            "s3://us-east-1.elasticmapreduce/libs/hive/hive-script,--base-path,s3://x/,--run-hive-script,--args,-f,s3://b/q.q",
            "hive-script",
            ["--base-path", "s3://x/", "--run-hive-script", "--args", "-f", "s3://b/q.q"],
        ),
    ],
)
def test_the_step_forms_that_run(step, kind, args):
    assert classify(step, 1) == (kind, args)


@pytest.mark.parametrize(
    "step, message",
    [
        ("s3://b/wordcount.jar,org.X,in,out", "step 3 (s3://b/wordcount.jar) cannot run here"),
        (
            "command-runner.jar,hadoop-streaming,-mapper,m.py",
            "step 3 (command-runner.jar) runs 'hadoop-streaming'",
        ),
        ("s3://x/script-runner.jar,s3://b/myscript.sh", "step 3 (s3://x/script-runner.jar) cannot run here"),
    ],
)
def test_any_other_jar_is_refused_naming_the_step(step, message):
    with pytest.raises(ActivityError) as info:
        classify(step, 3)
    assert message in str(info.value)


def test_hive_script_arguments():
    args = [
        "--run-hive-script",
        "--args",
        "-f",
        "s3://b/q.q",
        "-d",
        "A=1",
        "--hiveconf",
        "k=v",
        "-d",
        "B=x=y",
    ]
    assert hive_arguments(args, "step 1") == ("s3://b/q.q", {"A": "1", "B": "x=y"}, {"k": "v"})
    with pytest.raises(ActivityError, match="step 1: a hive-script step needs -f"):
        hive_arguments(["--run-hive-script", "--args", "-d", "A=1"], "step 1")
    with pytest.raises(ActivityError, match="step 2: unknown hive argument '-e'"):
        hive_arguments(["--run-hive-script", "--args", "-e", "SELECT 1"], "step 2")
    with pytest.raises(ActivityError, match="needs --run-hive-script"):
        hive_arguments(["-f", "s3://b/q.q"], "step 1")


def test_the_spark_section(tmp_path):
    path = tmp_path / "tailrace.toml"
    path.write_text(
        '[spark]\nmaster = "spark://h:7077"\nemr_cluster = true\n[spark.conf]\n"spark.executor.memory" = "2g"\n'
    )
    settings = load_settings(environ={}, config_file=path)
    assert settings.spark.master == "spark://h:7077" and settings.spark.emr_cluster
    assert dict(settings.spark.conf) == {"spark.executor.memory": "2g"}
    path.write_text('[spark]\nmaster = "yarn"\n')
    with pytest.raises(ConfigError, match="master 'yarn' is not local"):
        load_settings(environ={}, config_file=path)
    path.write_text('[spark]\nmastr = "local[2]"\n')
    with pytest.raises(ConfigError, match="Did you mean 'master'"):
        load_settings(environ={}, config_file=path)
    settings = load_settings(environ={"TAILRACE_SPARK__MASTER": "local[3]"}, config_file=None)
    assert settings.spark.master == "local[3]"


def test_emr_cluster_fields_with_no_meaning_here_are_reported_as_ignored():
    from tailrace.definition import loads, validate
    from tailrace.sample.demo import seed_definition_text

    report = validate(loads(seed_definition_text()))
    ignored = {
        (p.object_id, p.field)
        for p in report.problems
        if p.severity == "warning" and "has no meaning here and is ignored" in p.message
    }
    assert ignored == {
        ("emr-log", "masterInstanceType"),
        ("emr-log", "coreInstanceType"),
        ("emr-log", "coreInstanceCount"),
        ("emr-log", "enableDebugging"),
        ("emr-log", "installHive"),
        ("emr-log", "emrLogUri"),
    }
    assert not any(p.is_error for p in report.problems)
