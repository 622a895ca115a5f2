// The console's page script: live updates of the grid, the pipeline list and the log view.
// Events arrive from live.js as `tr:event` CustomEvents on document (detail: the event record).
// Every value from an event is written with textContent or classList, never as HTML.

const STATUS_CLASS = {
  FINISHED: "ok", RUNNING: "run", WAITING_FOR_RUNNER: "wait", WAITING_ON_DEPENDENCIES: "wait",
  SCHEDULED: "wait", CREATING: "wait", PENDING: "wait", FAILED: "fail", CASCADE_FAILED: "fail",
  TIMEDOUT: "fail", CANCELED: "cancel", SKIPPED: "skip", PAUSED: "pause",
};

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

// Follow a running attempt's log as it is written: an EventSource on the log's stream, whose
// messages are JSON strings of whole lines, appended as text nodes (never HTML). Each message's
// id is the byte offset after it, which EventSource sends back when it reconnects, so a
// dropped connection resumes where it stopped; `end` says the attempt ended and all was sent.
function follow(log) {
  const source = new EventSource(`${log.dataset.url}/stream?offset=${Number(log.dataset.next || 0)}`);
  source.onmessage = (e) => {
    let text;
    try { text = JSON.parse(e.data); } catch { return; }
    if (typeof text !== "string" || !text) return;
    log.append(document.createTextNode(text));
    log.dataset.next = e.lastEventId;
    document.getElementById("log-note")?.remove();
  };
  source.addEventListener("end", () => {
    source.close();
    log.dataset.follow = "ended";
  });
}

const followed = document.getElementById("log");
if (followed && followed.dataset.follow === "1") follow(followed);
window.trConsoleReady = true;
