"""A running attempt's log streamed to the page line by line (SSE by byte offset): in Chromium
against a real `tailrace up` whose attempt prints lines over time, and over HTTP for the resume
from Last-Event-ID, the end of the stream and another owner's ids."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import requests
from console_helpers import Server, Tab, until
from test_pages_browser import XSS_LOG, activate, pipeline_id, shell_definition, wait_cell

from tailrace.console.logstream import CHUNK, complete

# Two lines, then a long quiet wait: the lines can only have come while the attempt runs.
SLOW = f"echo first-line; echo '{XSS_LOG}'; sleep 1; echo second-line; sleep 600; echo never"


def _messages(resp: requests.Response) -> Iterator[tuple[str, str, str]]:
    """(event, id, data) of each SSE message of a streaming response."""
    event, ident, data = "message", "", []
    for raw in resp.iter_lines(decode_unicode=True):
        if raw == "":
            if data:
                yield event, ident, "\n".join(data)
            event, ident, data = "message", "", []
        elif raw.startswith("event: "):
            event = raw[7:]
        elif raw.startswith("id: "):
            ident = raw[4:]
        elif raw.startswith("data: "):
            data.append(raw[6:])


def _stream(s: requests.Session, url: str, **headers: str) -> requests.Response:
    resp = s.get(url, stream=True, timeout=60, headers=headers)
    assert resp.status_code == 200, resp.text[:300]
    assert resp.headers["content-type"].startswith("text/event-stream")
    return resp


def test_a_running_attempts_log_streams_line_by_line_then_ends(tab: Tab, server: Server) -> None:
    tab.login("alice")
    tab.upload("stream", shell_definition(SLOW, with_dependent=False))
    pid = pipeline_id(tab)
    activate(tab)
    wait_cell(tab, pid, "st-run")
    tab.page.locator("a.cell.st-run").first.click()
    log = tab.page.locator("#log")
    assert log.get_attribute("data-follow") == "1"
    tab.page.wait_for_function(
        "() => document.getElementById('log').textContent.includes('\\nsecond-line\\n')", timeout=60000
    )
    text = log.inner_text()
    # The log lines as text (the log starts with the command, which names "never" too).
    assert "\nfirst-line\n" + XSS_LOG + "\nsecond-line\n" in text and "\nnever" not in text
    iid = tab.page.locator("#instance .badge").get_attribute("data-iid")
    assert iid
    s, csrf = server.session("alice")
    page = s.get(f"{server.url}/console/pipelines/{quote(pid)}", params={"instance": iid})
    assert 'class="badge st-run"' in page.text  # the attempt still runs (it sleeps 600 s)

    # Over HTTP: from offset 0 the same lines; resumed at an offset, only what follows it.
    url = server.url + log.get_attribute("data-url") + "/stream"
    with _stream(s, url + "?offset=0") as resp:
        event, ident, data = next(_messages(resp))
    assert event == "message"
    first = json.loads(data)
    assert first.endswith("\n") and "first-line" in first
    assert int(ident) == len(first.encode())
    cut = first.encode().index(b"\nfirst-line\n") + 1
    with _stream(s, url, **{"Last-Event-ID": str(cut)}) as resp:
        _, ident2, data2 = next(_messages(resp))
    assert json.loads(data2).startswith("first-line\n")  # EventSource's reconnect: no line twice
    assert int(ident2) == cut + len(json.loads(data2).encode())

    # Another owner's reader, and no session, get nothing.
    bob, _ = server.session("bob")
    assert bob.get(url, timeout=30).status_code == 404
    assert requests.get(url, allow_redirects=False, timeout=30).status_code == 303
    assert s.get(url + "?offset=-1", timeout=30).status_code == 400

    # Canceled: the page's stream gets the rest and `end`, and stops following.
    r = s.post(
        f"{server.url}/console/pipelines/{quote(pid)}/actions/cancel",
        data={"csrf": csrf, "instance": iid, "confirm": "yes"},
    )
    assert r.status_code == 200
    tab.page.wait_for_function(
        "() => document.getElementById('log').dataset.follow === 'ended'", timeout=90000
    )
    with _stream(s, url + "?offset=0") as resp:  # an ended attempt: the whole log, then end
        events = list(_messages(resp))
    assert events[-1][0] == "end" and json.loads(events[-1][2])["status"] == "CANCELED"
    whole = "".join(json.loads(d) for e, _, d in events if e == "message")
    assert whole.startswith(first) and "\nsecond-line\n" in whole and "\nnever" not in whole
    until(
        "the page to hold the whole log", lambda: tab.page.inner_text("#log").startswith(first.rstrip("\n"))
    )
    tab.assert_nothing_ran()


def test_complete_sends_whole_lines_and_whole_characters() -> None:
    assert complete(b"a\nb\npartial", final=False) == b"a\nb\n"
    assert complete(b"partial", final=False) == b""
    assert complete(b"partial", final=True) == b"partial"
    euro = "€".encode()  # three bytes
    full = b"x" * (CHUNK - 2) + euro[:2]
    assert complete(full, final=False) == b"x" * (CHUNK - 2)
    whole = b"x" * (CHUNK - 3) + euro
    assert complete(whole, final=False) == whole
    assert complete(b"y" * CHUNK, final=False) == b"y" * CHUNK
