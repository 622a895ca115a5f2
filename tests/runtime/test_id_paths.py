"""Object ids come from an owner's definition and become directory names (attempt logs, actions
logs, the running log and work directory of an attempt): an id holding '/', '..' or '%' must
never lead a path outside its pipeline's own directory."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote

import pytest

from tailrace.ids import attempt_id, instance_id, path_segment
from tailrace.runtime.logs import attempt_log_uri, is_server_log
from tailrace.runtime.worker import _work_dir, running_log_path

HOSTILE = [
    "x/" + "../" * 12 + "tmp/escape",
    "../df-ALICE/Table",
    "..",
    ".",
    "...",
    "%2e%2e%2f%2e%2e%2fetc",
    "a\\..\\..\\b",
    "a\x00b",
    "",
]


@pytest.mark.parametrize("name", ["Table", "my copy (v2)", "@Table_2026-12-04T21:10:50_Attempt=1", "a..b"])
def test_plain_ids_keep_their_names(name: str) -> None:
    assert path_segment(name) == name


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_id_is_one_plain_segment(name: str) -> None:
    seg = path_segment(name)
    assert seg.startswith("id-") and "/" not in unquote(seg) and seg.strip(".") == seg
    assert path_segment(name) == seg and path_segment(name + "x") != seg


@pytest.mark.parametrize("component", HOSTILE[:7])
def test_logs_and_work_directories_stay_in_the_pipelines_directory(tmp_path: Path, component: str) -> None:
    from datetime import datetime

    home = tmp_path / "home"
    inst = instance_id(component, datetime(2026, 12, 4, 21, 10, 50))
    pid_dir = (home / "logs" / "df-MALLORY").resolve()
    uri = attempt_log_uri(
        pipeline_log_uri=None, home=home, pipeline_id="df-MALLORY", component_id=component, instance_id=inst,
        attempt=1,
    )  # fmt: skip
    assert Path(os.path.normpath(uri)).is_relative_to(pid_dir) and is_server_log(uri, home)
    # A pipelineLogUri of file:// is percent-decoded once: still inside.
    file_uri = attempt_log_uri(
        pipeline_log_uri=f"file://{home}/logs", home=home, pipeline_id="df-MALLORY", component_id=component,
        instance_id=inst, attempt=1,
    )  # fmt: skip
    assert Path(os.path.normpath(unquote(file_uri[len("file://") :]))).is_relative_to(pid_dir)
    work = home / "work" / "df-MALLORY"
    aid = attempt_id(inst, 1)
    for path in (_work_dir(home, "df-MALLORY", aid), running_log_path(home, "df-MALLORY", aid)):
        assert Path(os.path.normpath(path)).parent == work, path


def test_actions_log_stays_in_the_pipelines_directory(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from tailrace.runtime.firing import actions_log_uri

    comp = "x/../../../../tmp/escape"
    inst = SimpleNamespace(component_id=comp, id=f"@{comp}_2026-12-04T21:10:50")
    uri = actions_log_uri(None, tmp_path, "df-MALLORY", inst)  # type: ignore[arg-type]
    assert Path(os.path.normpath(uri)).parents[2] == (tmp_path / "logs" / "df-MALLORY").resolve()


def test_running_logs_of_ids_with_dots_are_apart(tmp_path: Path) -> None:
    """The running log was named by cutting at the id's last dot: `a.b` and `a.c`, or two attempts
    of `a.b`, wrote one file and `tailrace logs --follow` showed the other's lines."""
    from datetime import datetime

    at = datetime(2026, 12, 4, 21, 10, 50)
    ids = [attempt_id(instance_id(c, at), n) for c in ("a.b", "a.c", "a") for n in (1, 2)]
    paths = {running_log_path(tmp_path, "df-A", aid) for aid in ids}
    assert len(paths) == len(ids)
    assert all(p.name.endswith(".log") and p.parent == tmp_path / "work" / "df-A" for p in paths)
