// The console's page script: live updates of the grid, the pipeline list and the log view.
// Events arrive from live.js as `tr:event` CustomEvents on document (detail: the event record).
// Every value from an event is written with textContent or classList, never as HTML.

const STATUS_CLASS = {
  FINISHED: "ok", RUNNING: "run", WAITING_FOR_RUNNER: "wait", WAITING_ON_DEPENDENCIES: "wait",
  SCHEDULED: "wait", CREATING: "wait", PENDING: "wait", FAILED: "fail", CASCADE_FAILED: "fail",
  TIMEDOUT: "fail", CANCELED: "cancel", SKIPPED: "skip", PAUSED: "pause",
};
const TERMINAL = new Set(["FINISHED", "FAILED", "CASCADE_FAILED", "TIMEDOUT", "CANCELED", "SKIPPED"]);

function field(d, ...names) {
  for (const n of names) if (d && d[n] !== undefined && d[n] !== null) return String(d[n]);
  return null;
}

function setStatus(el, status) {
  for (const c of [...el.classList]) if (c.startsWith("st-")) el.classList.remove(c);
  el.classList.add("st-" + (STATUS_CLASS[status] || "other"));
}

function byData(name, value) {
  return document.querySelectorAll(`[${name}="${CSS.escape(value)}"]`);
}

function onEvent(d) {
  const type = field(d, "type");
  const status = field(d, "new", "status");
  if (type === "instance.status" && status) {
    const iid = field(d, "object_id", "objectId", "instance_id", "instanceId");
    if (!iid) return;
    for (const el of byData("data-iid", iid)) {
      setStatus(el, status);
      el.title = `${iid}: ${status}`;
      if (el.classList.contains("badge")) el.textContent = status;
    }
  } else if (type === "attempt.status" && status) {
    const iid = field(d, "instance", "instance_id", "instanceId");
    if (iid && status === "RUNNING") {
      for (const el of byData("data-iid", iid)) if (el.classList.contains("cell")) setStatus(el, status);
    }
    const log = document.getElementById("log");
    if (log && TERMINAL.has(status)) log.dataset.ending = "1";
  } else if (type === "pipeline.state" && status) {
    const pid = field(d, "pipeline_id", "pipelineId");
    if (!pid) return;
    for (const row of byData("data-pipeline", pid)) {
      const cell = row.querySelector(".state");
      if (cell) cell.textContent = status;
    }
    const grid = document.getElementById("instance-grid");
    const state = document.getElementById("pipeline-state");
    if (state && grid && grid.dataset.pipeline === pid) state.textContent = status;
  }
}

document.addEventListener("tr:event", (e) => {
  let d = e.detail;
  if (typeof d === "string") {
    try { d = JSON.parse(d); } catch { return; }
  }
  onEvent(d);
});

// Follow a running attempt's log by offset (the REST API's window reader). A log not written
// yet is waited for as long as the page is open; once text came, a quiet minute ends the
// follow (or the live stream saying the attempt ended).
async function follow(log) {
  let next = Number(log.dataset.next || 0);
  let quiet = 0;
  while (quiet < 30) {
    await new Promise((r) => setTimeout(r, 2000));
    let resp;
    try {
      resp = await fetch(`${log.dataset.url}?offset=${next}`, { credentials: "same-origin" });
    } catch { continue; }
    if (resp.status === 404) {
      if (log.dataset.ending === "1") return;
      continue;
    }
    if (!resp.ok) return;
    const text = await resp.text();
    next = Number(resp.headers.get("x-tailrace-next-offset") || next);
    if (text) {
      quiet = 0;
      log.append(document.createTextNode(text));
      document.getElementById("log-note")?.remove();
    } else {
      if (log.dataset.ending === "1") return;
      quiet += 1;
    }
  }
}

const followed = document.getElementById("log");
if (followed && followed.dataset.follow === "1") follow(followed);
window.trConsoleReady = true;
