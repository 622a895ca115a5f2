"""Who an owner's shell-like step runs as, with what environment, and what of its output the
server takes back."""

from __future__ import annotations

import os
import pwd
import threading
from pathlib import Path

import pytest

from tailrace.config import ExecutionSettings
from tailrace.errors import ConfigError
from tailrace.runtime.context import ListLog
from tailrace.runtime.sandbox import (
    ExecutionRefused,
    Identity,
    collect_output,
    make_attempt_dir,
    namespaces_work,
    plan_execution,
    remove_tree,
    scrubbed_env,
)
from tailrace.runtime.shell import run_command

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="switching users needs root (CI runs as root)")


def test_one_owner_runs_as_nobody_under_root(tmp_path: Path) -> None:
    plan = plan_execution(ExecutionSettings(), owner="default", owners=1, home=tmp_path, euid=0)
    assert plan.identity is not None and plan.identity.user == "nobody"
    assert not plan.work_root.is_relative_to(tmp_path)  # attempt dirs live outside $TAILRACE_HOME


def test_several_owners_need_a_mapping_and_the_error_says_how(tmp_path: Path) -> None:
    with pytest.raises(ExecutionRefused) as info:
        plan_execution(ExecutionSettings(run_as="nobody"), owner="bob", owners=2, home=tmp_path, euid=0)
    assert "[execution.users]" in str(info.value) and '"bob"' in str(info.value)
    mapped = ExecutionSettings(users={"bob": "nobody"})
    assert plan_execution(mapped, owner="bob", owners=5, home=tmp_path, euid=0).identity.user == "nobody"  # type: ignore[union-attr]


def test_root_only_when_explicitly_allowed(tmp_path: Path) -> None:
    with pytest.raises(ExecutionRefused, match="allow_root"):
        plan_execution(ExecutionSettings(run_as="root"), owner="a", owners=1, home=tmp_path, euid=0)
    plan = plan_execution(
        ExecutionSettings(run_as="root", allow_root=True), owner="a", owners=1, home=tmp_path, euid=0
    )
    assert plan.identity is None  # root already: no switch


def test_unknown_os_user_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ExecutionRefused, match="does not exist on this host"):
        plan_execution(
            ExecutionSettings(run_as="no-such-user-x1"), owner="a", owners=1, home=tmp_path, euid=0
        )


def test_a_non_root_server_cannot_switch(tmp_path: Path) -> None:
    with pytest.raises(ExecutionRefused, match="not root"):
        plan_execution(
            ExecutionSettings(run_as="root", allow_root=True), owner="a", owners=1, home=tmp_path, euid=4242
        )


def test_environment_is_an_allow_list() -> None:
    env = scrubbed_env(
        home=Path("/w"),
        extra={"INPUT1_STAGING_DIR": "/w/input1"},
        environ={
            "PATH": "/evil",
            "AWS_SECRET_ACCESS_KEY": "s",
            "TAILRACE_DATABASE_URL": "pg://p",
            "LC_ALL": "C",
            "TZ": "UTC",
        },
    )
    assert env == {
        "PATH": env["PATH"],
        "HOME": "/w",
        "TMPDIR": "/w",
        "PWD": "/w",
        "LC_ALL": "C",
        "TZ": "UTC",
        "INPUT1_STAGING_DIR": "/w/input1",
    }
    assert "/evil" not in env["PATH"]


@needs_root
def test_command_runs_as_the_user_in_a_private_directory(tmp_path: Path) -> None:
    settings = ExecutionSettings(run_as="nobody", work_root=tmp_path / "attempts")
    plan = plan_execution(settings, owner="a", owners=1, home=tmp_path / "home", euid=0)
    work = make_attempt_dir(plan)
    st = work.stat()
    assert oct(st.st_mode)[-3:] == "700" and st.st_uid == pwd.getpwnam("nobody").pw_uid
    assert oct((tmp_path / "attempts").stat().st_mode)[-3:] == "711"
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t")
    secret.chmod(0o600)
    log = ListLog()
    result = run_command(
        ["/bin/sh", "-c", f"id -u; cat {secret}; ls {tmp_path / 'attempts'}; echo ok > mine"],
        cwd=work,
        env=scrubbed_env(home=work, extra={}),
        log=log,
        cancelled=threading.Event(),
        heartbeat=lambda: None,
        identity=plan.identity,
    )
    text = log.text()
    assert text.splitlines()[0] == str(pwd.getpwnam("nobody").pw_uid)
    assert "s3cr3t" not in text and "Permission denied" in text
    assert result.returncode == 0 and (work / "mine").stat().st_uid == pwd.getpwnam("nobody").pw_uid


@needs_root
def test_output_collection_refuses_links_and_foreign_files(tmp_path: Path) -> None:
    settings = ExecutionSettings(run_as="nobody", work_root=tmp_path / "attempts")
    plan = plan_execution(settings, owner="a", owners=1, home=tmp_path, euid=0)
    assert plan.identity is not None
    out = make_attempt_dir(plan) / "output1"
    out.mkdir()
    (out / "sub").mkdir()
    for p in (out, out / "sub"):
        os.chown(p, plan.identity.uid, plan.identity.gid)
    good = out / "sub" / "part-0"
    good.write_text("row\n")
    os.chown(good, plan.identity.uid, plan.identity.gid)
    assert collect_output(out, tmp_path / "c1", plan) == 1
    assert (tmp_path / "c1" / "sub" / "part-0").read_text() == "row\n"

    (out / "creds").symlink_to(tmp_path / "secret")
    with pytest.raises(ExecutionRefused, match="link"):
        collect_output(out, tmp_path / "c2", plan)
    (out / "creds").unlink()
    (out / "dir").symlink_to(tmp_path)
    with pytest.raises(ExecutionRefused, match="link"):
        collect_output(out, tmp_path / "c3", plan)
    (out / "dir").unlink()
    (out / "root-owned").write_text("planted by someone else")
    with pytest.raises(ExecutionRefused, match="not written by the activity's user"):
        collect_output(out, tmp_path / "c4", plan)


def test_network_setting_is_checked() -> None:
    with pytest.raises(ConfigError, match="network must be auto, none or host"):
        ExecutionSettings(network="off")


def _reach(plan_identity: Identity | None, work: Path) -> str:
    log = ListLog()
    run_command(
        [
            "/bin/sh",
            "-c",
            "id -u; redis-cli -h 127.0.0.1 ping; echo RUN=$(ls -A /run | tr '\\n' ' '); touch /tmp/tr-mark-$$; "
            "ls /tmp | grep -c tr-mark- ; true",
        ],
        cwd=work,
        env=scrubbed_env(home=work, extra={}),
        log=log,
        cancelled=threading.Event(),
        heartbeat=lambda: None,
        identity=plan_identity,
    )
    return log.text()


@needs_root
@pytest.mark.skipif(not namespaces_work(), reason="this host cannot create network namespaces")
def test_commands_of_another_user_get_no_host_network_and_private_run(tmp_path: Path) -> None:
    """Under root, `auto` isolates: the host's Redis (no password here) is out of reach, /run is
    empty; `host` leaves both (so the check above can fail)."""
    root = Path("/var/tmp") / f"tr-test-{os.getpid()}"
    try:
        for network, isolated in (("auto", True), ("host", False)):
            settings = ExecutionSettings(run_as="nobody", work_root=root, network=network)
            plan = plan_execution(settings, owner="a", owners=1, home=tmp_path / "home", euid=0)
            assert plan.identity is not None and plan.identity.isolated is isolated
            text = _reach(plan.identity, make_attempt_dir(plan))
            assert text.splitlines()[0] == str(pwd.getpwnam("nobody").pw_uid), text
            if isolated:
                run_line = next(line for line in text.splitlines() if line.startswith("RUN="))
                assert "PONG" not in text and "postgresql" not in run_line, text
                assert text.strip().endswith("1"), text  # a /tmp of its own: only its own mark
            else:
                assert "PONG" in text and ("postgresql" in text) == Path("/run/postgresql").exists(), text
    finally:
        remove_tree(root)
