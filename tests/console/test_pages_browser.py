"""The console in Chromium against a real `tailrace up`: sign-in, every page, every action,
XSS payloads in every rendered field, CSRF, the read-only role and another owner's ids."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import requests
from console_helpers import PASSWORD, Server, Tab, csrf_of, start, stop, until

XSS_ID = "<img src=x onerror=window.__pwned=1>"
XSS_NAME = "<script>window.__pwned=3</script>"
FAILED_CELL = f'a.cell.st-fail[data-iid^="@{XSS_ID}"]'
XSS_LOG = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


def shell_definition(command: str, *, with_dependent: bool = True) -> dict:
    objects = [
        {"id": "Default", "scheduleType": "ondemand", "failureAndRerunMode": "cascade"},
        {
            "id": XSS_ID,
            "name": XSS_NAME,
            "type": "ShellCommandActivity",
            "workerGroup": "wg",
            "maximumRetries": "0",
            "command": command,
        },
    ]
    if with_dependent:
        objects.append(
            {
                "id": "after",
                "type": "ShellCommandActivity",
                "workerGroup": "wg",
                "maximumRetries": "0",
                "command": "echo after",
                "dependsOn": {"ref": XSS_ID},
            }
        )
    return {"objects": objects}


def pipeline_id(tab: Tab) -> str:
    m = re.search(r"/console/pipelines/([^/?#]+)", tab.page.url)
    assert m, tab.page.url
    return m.group(1)


def confirm(tab: Tab, button: str) -> str:
    """Press an action button, check the confirmation page, confirm; the preview's text."""
    tab.page.click(button)
    tab.page.wait_for_selector("#confirm-form")
    preview = tab.page.inner_text("#preview")
    tab.page.click("#confirm-form button")
    tab.page.wait_for_selector("#instance-grid, #grid")
    return preview


def wait_cell(tab: Tab, pid: str, cls: str, instance: str | None = None) -> None:
    selector = f"a.cell.{cls}" + (f'[data-iid="{instance}"]' if instance else "")

    def seen() -> bool:
        tab.go(f"/console/pipelines/{pid}")
        return tab.page.locator(selector).count() > 0

    until(f"a {cls} cell", seen, timeout=90)


def activate(tab: Tab) -> None:
    preview = confirm(tab, "#activate-form button")
    assert "Activating creates" in preview


# --- sign-in -----------------------------------------------------------------------------------


def test_sign_in_with_a_user_and_a_wrong_password(tab: Tab) -> None:
    tab.go("/console")
    assert "/console/login" in tab.page.url  # not signed in: the sign-in form
    tab.login("alice", "wrong password!")
    assert tab.page.inner_text("#login-error") == "Wrong name, password or key."
    tab.login("alice")
    assert tab.page.url.endswith("/console")
    assert tab.page.inner_text("header .who") == "alice"
    cookie = next(c for c in tab.context.cookies() if c["name"] == "tr_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    tab.page.click("header form button")  # sign out (a POST with the CSRF token)
    assert "/console/login" in tab.page.url
    tab.go("/console")
    assert "/console/login" in tab.page.url


def test_sign_in_with_an_access_key(tab: Tab, server: Server) -> None:
    creds = json.loads((server.home / "credentials.json").read_text())
    tab.go("/console/login")
    tab.page.fill("#login-key [name=access_key_id]", creds["AccessKeyId"])
    tab.page.fill("#login-key [name=secret]", "not the secret")
    tab.page.click("#login-key button")
    assert tab.page.locator("#login-error").count() == 1
    tab.page.fill("#login-key [name=access_key_id]", creds["AccessKeyId"])
    tab.page.fill("#login-key [name=secret]", creds["SecretAccessKey"])
    tab.page.click("#login-key button")
    assert tab.page.inner_text("header .who") == "key:" + creds["AccessKeyId"]
    assert tab.page.locator("h1").inner_text() == "Pipelines"


def test_a_disabled_keys_session_ends(tab: Tab, server: Server) -> None:
    from console_helpers import tailrace

    key = json.loads(tailrace(server.env, "keys", "create", "--owner", "other", "--output", "json"))
    s = requests.Session()
    r = s.post(
        server.url + "/console/login",
        data={"kind": "key", "access_key_id": key["AccessKeyId"], "secret": key["SecretAccessKey"]},
    )
    assert r.status_code == 200 and "<h1>Pipelines</h1>" in r.text
    tailrace(server.env, "keys", "disable", key["AccessKeyId"])
    until(
        "the session to end", lambda: s.get(server.url + "/console", allow_redirects=False).status_code == 303
    )


def test_security_headers(server: Server) -> None:
    r = requests.get(server.url + "/console/login")
    assert r.headers["content-security-policy"] == (
        "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'"
    )
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in r.text and "style=" not in r.text
    s, _ = server.session("alice")
    page = s.get(server.url + "/console").text
    assert '<div id="tr-live" data-stream="/console/live/stream"></div>' in page
    assert '<script src="/console/static/live.js" type="module"></script>' in page
    assert (
        requests.get(server.url + "/console/static/live.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    assert requests.get(server.url + "/console/static/..%2Fapp.py").status_code == 404


# --- pages -------------------------------------------------------------------------------------


def test_template_graph_and_object_pane_render_text_only(tab: Tab) -> None:
    tab.login("alice")
    tab.go("/console/new")
    tab.page.fill("#from-template [name=name]", XSS_NAME)
    tab.page.click("#from-template button")
    assert tab.page.inner_text("h1") == XSS_NAME  # the name as text
    nodes = tab.page.locator("svg.graph a.node")
    assert sorted(nodes.evaluate_all("els => els.map(e => e.dataset.id)")) == [
        "archive",
        "emr-log",
        "log",
        "log-archive",
        "log-stats",
        "schedule",
        "stats",
    ]
    assert tab.page.locator("svg.graph path.edge.e-runsOn").count() == 2
    assert tab.page.locator("svg.graph path.edge.e-input").count() == 2
    tab.page.click('svg.graph a.node[data-id="archive"]')
    pane = tab.page.locator("#object-fields")
    own = pane.locator("tr.own th").all_inner_texts()
    inherited = pane.locator("tr.inherited th").all_inner_texts()
    assert "hiveScript" in own and "runsOn" in own
    assert any(t.startswith("pipelineLogUri") for t in inherited)
    tab.assert_nothing_ran()
    tab.go("/console")
    row = tab.page.locator("#pipelines tbody tr", has_text=XSS_NAME)
    assert row.locator(".state").inner_text() == "PENDING"
    assert "every 1 Days" in row.inner_text()
    tab.assert_nothing_ran()


def test_invalid_definition_shows_errors_by_object(tab: Tab) -> None:
    tab.login("alice")
    bad = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {
                "id": XSS_ID,
                "type": "ShellCommandActivity",
                "workerGroup": "wg",
                "dependsOn": {"ref": "nowhere"},
            },
        ]
    }
    tab.upload("bad", bad)
    tab.page.wait_for_selector("#problems")
    section = tab.page.locator(f'#problems section[data-object="{XSS_ID}"]')
    assert section.locator("h3").inner_text() == f"object {XSS_ID}"
    assert "nowhere" in section.locator("li.error").first.inner_text()
    assert section.locator("tr.bad th").first.inner_text() == "dependsOn"
    tab.upload("broken", b'{"objects": [ {"id": "x",, } ]}')
    assert "line 1" in tab.page.inner_text("#problems")
    tab.assert_nothing_ran()


def test_failed_attempt_log_rerun_and_mark_finished(tab: Tab) -> None:
    tab.login("alice")
    tab.upload("shell", shell_definition(f"echo '{XSS_LOG}'; echo second line; exit 3"))
    pid = pipeline_id(tab)
    assert tab.page.locator(f'svg.graph a.node[data-id="{XSS_ID}"]').count() == 1
    activate(tab)
    wait_cell(tab, pid, "st-fail")
    tab.page.locator(FAILED_CELL).click()
    tab.page.wait_for_selector("#log")
    assert XSS_LOG in tab.page.inner_text("#log")  # the log line as text
    assert tab.page.locator(".attempts tbody tr").first.locator("td").nth(1).inner_text() == "FAILED"
    tab.page.click(f'svg.graph a.node[data-id="{XSS_ID}"]')  # field values as text
    assert XSS_LOG in tab.page.inner_text("#object-fields")
    tab.assert_nothing_ran()
    tab.go("/console")
    failures = tab.page.locator("#pipelines tbody tr", has_text="shell").locator(".failures")
    assert failures.inner_text() == "2"  # the failed instance and its CASCADE_FAILED dependent
    # The rerun's preview changes nothing until confirmed.
    tab.go(f"/console/pipelines/{pid}")
    titles = tab.page.locator("a.cell").evaluate_all("els => els.map(e => e.title)")
    tab.page.locator(FAILED_CELL).click()
    tab.page.click("#instance form:has(button:text('Rerun')) button")
    tab.page.wait_for_selector("#cascade")
    tab.go(f"/console/pipelines/{pid}")
    assert tab.page.locator("a.cell").evaluate_all("els => els.map(e => e.title)") == titles
    # Rerun: the preview shows the cascade (the failed instance and its CASCADE_FAILED dependent).
    tab.page.locator(FAILED_CELL).click()
    preview = confirm(tab, "#instance form:has(button:text('Rerun')) button")
    assert "2 instance(s) change status" in preview
    assert "CASCADE_FAILED" in preview and "FAILED" in preview
    until("the rerun to run", lambda: tab.page.reload() and "2" in _attempt_numbers(tab), timeout=60)
    wait_cell(tab, pid, "st-fail")
    assert tab.page.locator(FAILED_CELL).inner_text() == "2"  # the attempt count
    tab.page.locator(FAILED_CELL).click()
    preview = confirm(tab, "#instance form:has(button:text('Mark finished')) button")
    assert "FINISHED" in preview
    assert tab.page.inner_text("#instance .badge") == "FINISHED"
    wait_cell(tab, pid, "st-ok")  # and the dependent ran after it
    tab.assert_nothing_ran()


def _attempt_numbers(tab: Tab) -> list[str]:
    return tab.page.locator(".attempts tbody tr td:first-child").all_inner_texts()


def test_cancel_and_deactivate(tab: Tab) -> None:
    tab.login("alice")
    tab.upload("sleeper", shell_definition("sleep 120", with_dependent=False))
    pid = pipeline_id(tab)
    activate(tab)
    wait_cell(tab, pid, "st-run")
    tab.page.locator("a.cell.st-run").first.click()
    confirm(tab, "#instance form:has(button:text('Cancel')) button")
    wait_cell(tab, pid, "st-cancel")
    tab.go(f"/console/pipelines/{pid}")
    preview = confirm(tab, "form[action$='/deactivate'] button")
    assert "No instance changes status" in preview or "change status" in preview
    until(
        "INACTIVE",
        lambda: tab.go(f"/console/pipelines/{pid}") and tab.page.inner_text("#pipeline-state") == "INACTIVE",
    )
    tab.assert_nothing_ran()


def test_a_running_attempts_log_appears_without_reload(tab: Tab) -> None:
    tab.login("alice")
    tab.upload("follow", shell_definition("echo started; sleep 6; echo later-line", with_dependent=False))
    pid = pipeline_id(tab)
    activate(tab)
    wait_cell(tab, pid, "st-run")
    tab.page.locator("a.cell.st-run").first.click()
    assert tab.page.locator("#log").get_attribute("data-follow") == "1"
    # Read by offset as it is written (here at the attempt's end), with no reload.
    tab.page.wait_for_function(
        "() => document.getElementById('log').textContent.includes('later-line')", timeout=60000
    )
    tab.assert_nothing_ran()


def test_live_events_update_the_grid_without_reload(tab: Tab) -> None:
    tab.login("alice")
    tab.upload("live", shell_definition("exit 1", with_dependent=False))
    pid = pipeline_id(tab)
    activate(tab)
    wait_cell(tab, pid, "st-fail")
    cell = tab.page.locator("a.cell").first
    iid = cell.get_attribute("data-iid")
    # What live.js dispatches for an event of the stream.
    tab.page.evaluate(
        """([pid, iid]) => document.dispatchEvent(new CustomEvent('tr:event', {detail:
            {type: 'instance.status', pipeline_id: pid, object_id: iid, old: 'FAILED', new: 'RUNNING'}}))""",
        [pid, iid],
    )
    assert "st-run" in (cell.get_attribute("class") or "")
    tab.page.evaluate(
        """(pid) => document.dispatchEvent(new CustomEvent('tr:event', {detail:
            {type: 'pipeline.state', pipeline_id: pid, old: 'SCHEDULED', new: '<b>DONE</b>'}}))""",
        pid,
    )
    assert tab.page.inner_text("#pipeline-state") == "<b>DONE</b>"
    tab.assert_nothing_ran()


# --- refusals ----------------------------------------------------------------------------------


def _alice_pipeline(server: Server) -> tuple[requests.Session, str, str]:
    s, csrf = server.session("alice")
    r = s.post(
        server.url + "/console/new",
        data={
            "csrf": csrf,
            "source": "template",
            "name": "mine",
            "start": "2012-12-24T00:00:00",
            "period": "1 Days",
        },
    )
    assert r.status_code == 200
    return s, csrf, r.url.rsplit("/", 1)[1]


def test_csrf_missing_forged_or_cross_site_is_refused(server: Server) -> None:
    s, csrf, pid = _alice_pipeline(server)
    url = f"{server.url}/console/pipelines/{pid}/actions/activate"
    assert s.post(url, data={"confirm": "yes"}).status_code == 403
    assert s.post(url, data={"confirm": "yes", "csrf": "forged"}).status_code == 403
    assert s.post(url, data={"confirm": "yes"}, headers={"X-CSRF-Token": "forged"}).status_code == 403
    evil = s.post(url, data={"confirm": "yes", "csrf": csrf}, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    assert s.post(server.url + "/console/logout").status_code == 403
    assert s.get(f"{server.url}/console/pipelines/{pid}").text.count('id="pipeline-state">PENDING') == 1
    ok = s.post(url, data={"csrf": csrf})  # with the token: the preview
    assert ok.status_code == 200 and "Activating creates" in ok.text


def test_oversized_upload_is_413(server: Server) -> None:
    s, csrf = server.session("alice")
    big = b'{"objects": [' + b" " * (2 * 1024 * 1024) + b"]}"
    r = s.post(
        server.url + "/console/new",
        data={"csrf": csrf, "source": "file", "name": "big"},
        files={"definition": ("big.json", big, "application/json")},
    )
    assert r.status_code == 413
    assert "bytes" in r.text


def test_readonly_role_sees_but_cannot_act(tab: Tab, server: Server) -> None:
    _, _, pid = _alice_pipeline(server)
    tab.login("reader")
    tab.go(f"/console/pipelines/{pid}")
    assert tab.page.inner_text("h1") == "mine"
    assert tab.page.locator("#activate-form").count() == 0
    s, csrf = server.session("reader")
    r = s.post(
        f"{server.url}/console/pipelines/{pid}/actions/activate", data={"csrf": csrf, "confirm": "yes"}
    )
    assert r.status_code == 403
    assert s.get(server.url + "/console/new").status_code == 403


def test_another_owners_ids_are_404(tab: Tab, server: Server) -> None:
    _, _, pid = _alice_pipeline(server)
    s, csrf = server.session("bob")
    base = f"{server.url}/console/pipelines/{quote(pid)}"
    assert s.get(base).status_code == 404
    assert s.get(base + "?instance=x&object=archive").status_code == 404
    assert s.get(base + "/attempts/x/log").status_code == 404
    assert s.post(base + "/actions/activate", data={"csrf": csrf}).status_code == 404
    assert s.post(base + "/actions/activate", data={"csrf": csrf, "confirm": "yes"}).status_code == 404
    assert pid not in s.get(server.url + "/console").text
    root, _ = server.session("root")  # an admin sees every owner's
    assert root.get(base).status_code == 200
    tab.login("bob")
    tab.go(f"/console/pipelines/{pid}")
    assert tab.page.inner_text("h1") == "Not found"


def test_a_second_console_process_shares_the_sessions(server: Server, tmp_path) -> None:
    s, csrf, pid = _alice_pipeline(server)
    proc, url = start(
        ["console", "--port", "0"], server.env, tmp_path / "console.log", r"listening on (http://\S+)/console"
    )
    try:
        # The cookie from the first process works on the second: sessions are in the database.
        r = s.get(f"{url}/console/pipelines/{pid}")
        assert r.status_code == 200 and csrf_of(r.text) == csrf
        assert requests.get(f"{url}/console", allow_redirects=False).status_code == 303
    finally:
        stop(proc)


def test_users_cli(server: Server) -> None:
    from console_helpers import tailrace

    listed = json.loads(tailrace(server.env, "users", "list", "--output", "json"))["Users"]
    assert {u["Name"]: (u["Role"], u["Owner"]) for u in listed}["root"] == ("admin", None)
    assert "password" not in json.dumps(listed).lower()
    tailrace(server.env, "users", "create", "temp", "--password-stdin", stdin=PASSWORD + "\n")
    s, _ = server.session("temp")
    assert s.get(server.url + "/console", allow_redirects=False).status_code == 200
    tailrace(server.env, "users", "delete", "temp")
    assert s.get(server.url + "/console", allow_redirects=False).status_code == 303  # session ended


def test_console_without_sign_in_when_auth_is_off(server: Server, tmp_path) -> None:
    proc, url = start(
        ["console", "--port", "0", "--insecure-no-auth"],
        server.env,
        tmp_path / "console.log",
        r"listening on (http://\S+)/console",
    )
    try:
        s = requests.Session()
        page = s.get(f"{url}/console")  # a session of its own, then the list of every owner's pipelines
        assert page.status_code == 200 and page.url.endswith("/console")
        assert "anonymous" in page.text and "<h1>Pipelines</h1>" in page.text
        forged = s.post(f"{url}/console/new", data={"csrf": "forged", "source": "template", "name": "x"})
        assert forged.status_code == 403  # CSRF still applies
    finally:
        stop(proc)
