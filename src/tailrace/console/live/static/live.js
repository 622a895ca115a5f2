// The console's live feed: alarm banner, siren, broadcasts, and a `tr:event` per pushed event.
// Native browser APIs only (EventSource, fetch, WebAudio, DOM). Every string from the server is
// untrusted and goes into the page with textContent, never as HTML.

const MAX_SHOWN = 20;

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'text') node.textContent = value;
    else if (key === 'class') node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

// A message that is a JSON object (CloudWatch's alarm message) shows as its fields.
function messageFields(message) {
  if (typeof message !== 'string' || !message.trim().startsWith('{')) return null;
  try {
    const data = JSON.parse(message);
    if (data && typeof data === 'object' && !Array.isArray(data)) return Object.entries(data);
  } catch (e) { /* not JSON: shown as text */ }
  return null;
}

function show(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

// What the banner shows for each kind of alarm: subject, time, message fields.
function describeAlarm(evt) {
  if (evt.type === 'alarm.state') {
    return {
      subject: `${evt.new}: "${evt.alarm_name}"${evt.region ? ` in ${evt.region}` : ''}`,
      fields: [['AlarmName', evt.alarm_name], ['NewStateValue', evt.new], ['OldStateValue', evt.old],
        ['NewStateReason', evt.reason], ['Region', evt.region]],
    };
  }
  const fields = messageFields(evt.message) || [['Message', evt.message ?? '']];
  if (evt.type === 'action.fired') {
    return {
      subject: evt.subject || `SnsAlarm ${evt.action_id} (${evt.trigger})`,
      fields: [...fields, ['Pipeline', evt.pipelineId ?? ''], ['Instance', evt.node], ['Trigger', evt.trigger]],
    };
  }
  return { subject: evt.subject || `Message on ${evt.topic_arn}`, fields: [...fields, ['Topic', evt.topic_arn]] };
}

class Siren {
  constructor() {
    this.ctx = null;
    this.nodes = null;
  }

  get enabled() { return this.ctx !== null && this.ctx.state === 'running'; }

  // Called from the Enable sound click: the user gesture browsers require before audio.
  async enable() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) throw new Error('this browser has no Web Audio');
    if (this.ctx === null) this.ctx = new Ctx();
    await this.ctx.resume();
  }

  get sounding() { return this.nodes !== null; }

  start() {
    if (!this.enabled || this.nodes) return;
    const ctx = this.ctx;
    const tone = ctx.createOscillator();
    const wobble = ctx.createOscillator(); // sweeps the tone up and down: the siren's wail
    const depth = ctx.createGain();
    const volume = ctx.createGain();
    tone.type = 'sawtooth';
    tone.frequency.value = 800;
    wobble.frequency.value = 0.8;
    depth.gain.value = 300;
    volume.gain.value = 0.15;
    wobble.connect(depth).connect(tone.frequency);
    tone.connect(volume).connect(ctx.destination);
    tone.start();
    wobble.start();
    this.nodes = [tone, wobble, depth, volume];
  }

  stop() {
    if (!this.nodes) return;
    const [tone, wobble] = this.nodes;
    tone.stop();
    wobble.stop();
    for (const node of this.nodes) node.disconnect();
    this.nodes = null;
  }
}

class LiveFeed {
  constructor(root) {
    this.root = root;
    this.lastId = 0;
    this.synced = false; // before the first sync, events are the history a new page is shown
    this.alarmActive = false;
    this.canWrite = false;
    this.siren = new Siren();
    this.build();
    this.connect();
  }

  build() {
    const root = this.root;
    this.status = el('span', { class: 'tr-live-status', text: 'connecting…' });
    this.enableButton = el('button', { type: 'button', class: 'tr-enable-sound', text: 'Enable sound' });
    this.soundNote = el('span', { class: 'tr-sound-note', text: 'Sound is off: alarms show here only until you enable sound.' });
    this.enableButton.addEventListener('click', () => this.enableSound());
    const bar = el('div', { class: 'tr-live-bar' }, [this.status, this.enableButton, this.soundNote]);

    this.alarmSubject = el('strong', { class: 'tr-alarm-subject' });
    this.alarmTime = el('time', { class: 'tr-alarm-time' });
    this.alarmFields = el('dl', { class: 'tr-alarm-fields' });
    this.silentNote = el('p', { class: 'tr-alarm-silent', text: 'Sound is off on this page: click Enable sound to hear the siren.' });
    this.stopButton = el('button', { type: 'button', class: 'tr-stop', text: 'Stop' });
    this.dismissButton = el('button', { type: 'button', class: 'tr-dismiss', text: 'Dismiss' });
    this.stopButton.addEventListener('click', () => this.stop());
    this.dismissButton.addEventListener('click', () => { this.stop(); this.banner.hidden = true; });
    this.banner = el('section', { class: 'tr-alarm', role: 'alert', 'aria-live': 'assertive' }, [
      el('div', { class: 'tr-alarm-head' }, [this.alarmSubject, ' ', this.alarmTime]),
      this.alarmFields, this.silentNote, el('div', {}, [this.stopButton, ' ', this.dismissButton]),
    ]);
    this.banner.hidden = true;

    this.broadcastLatest = el('p', { class: 'tr-broadcast-latest' });
    this.broadcastLatest.hidden = true;
    this.broadcastList = el('ul', { class: 'tr-broadcasts' });
    this.alarmList = el('ul', { class: 'tr-alarms' });

    this.input = el('input', { type: 'text', name: 'text', maxlength: '1000', required: '', placeholder: 'Message to the open consoles', 'aria-label': 'Broadcast text' });
    this.formStatus = el('output', { class: 'tr-broadcast-status' });
    this.form = el('form', { class: 'tr-broadcast-form' }, [this.input, el('button', { type: 'submit', text: 'Broadcast' }), this.formStatus]);
    this.form.hidden = true;
    this.form.addEventListener('submit', (e) => { e.preventDefault(); this.sendBroadcast(); });

    root.replaceChildren(bar, this.banner, this.broadcastLatest, this.form,
      el('details', { class: 'tr-live-history' }, [
        el('summary', { text: 'Recent alarms and broadcasts' }),
        el('h3', { text: 'Alarms' }), this.alarmList, el('h3', { text: 'Broadcasts' }), this.broadcastList,
      ]));
    this.setState();
  }

  setState() {
    const root = this.root;
    root.dataset.sound = this.siren.enabled ? 'enabled' : 'disabled';
    root.dataset.siren = this.siren.sounding ? 'on' : 'off';
    root.dataset.alarm = this.alarmActive ? 'active' : 'none';
    this.enableButton.hidden = this.siren.enabled;
    this.soundNote.hidden = this.siren.enabled;
    this.silentNote.hidden = this.siren.enabled || !this.alarmActive;
    this.banner.classList.toggle('tr-alarm--silent', this.alarmActive && !this.siren.enabled);
    this.banner.classList.toggle('tr-alarm--active', this.alarmActive);
  }

  async enableSound() {
    try {
      await this.siren.enable();
    } catch (e) {
      this.soundNote.textContent = `Sound could not be enabled: ${e.message}`;
      return;
    }
    if (this.alarmActive) this.siren.start(); // an alarm still waiting for Stop now sounds
    this.setState();
  }

  stop() {
    this.siren.stop();
    this.alarmActive = false;
    this.setState();
  }

  connect() {
    let url = this.root.dataset.stream || '/console/live/stream';
    // A new EventSource sends no Last-Event-ID: the query carries it (the server reads either).
    if (this.lastId > 0) url += `${url.includes('?') ? '&' : '?'}lastEventId=${this.lastId}`;
    this.source = new EventSource(url, { withCredentials: true });
    this.source.addEventListener('open', () => { this.retryDelay = 2000; this.connection('open', 'live'); });
    this.source.addEventListener('error', () => {
      if (this.source.readyState !== EventSource.CLOSED) {
        this.connection('connecting', 'reconnecting…');
        return;
      }
      // The server answered with an error (not logged in, or the feed is away): EventSource gives
      // up on those, so retry with a growing pause.
      this.retryDelay = Math.min((this.retryDelay || 2000) * 2, 60000);
      this.connection('closed', `disconnected; retrying in ${Math.round(this.retryDelay / 1000)} s`);
      setTimeout(() => this.connect(), this.retryDelay);
    });
    this.source.addEventListener('hello', (m) => {
      const hello = JSON.parse(m.data);
      this.canWrite = Boolean(hello.canWrite);
      this.form.hidden = !this.canWrite;
    });
    this.source.addEventListener('sync', (m) => {
      const head = JSON.parse(m.data).head;
      if (typeof head === 'number' && head > this.lastId) this.lastId = head;
      this.synced = true;
      this.root.dataset.lastEventId = String(this.lastId);
    });
    this.source.addEventListener('reset', () => {
      // Missed too much to replay: what follows is the recent history, shown afresh (not sounded).
      this.alarmList.replaceChildren();
      this.broadcastList.replaceChildren();
      this.lastId = 0;
      this.synced = false;
    });
    this.source.addEventListener('reconnect', () => this.connection('connecting', 'catching up…'));
    this.source.addEventListener('message', (m) => this.receive(JSON.parse(m.data)));
  }

  connection(state, text) {
    this.root.dataset.connection = state;
    this.status.textContent = text;
  }

  receive(evt) {
    if (typeof evt.id !== 'number' || evt.id <= this.lastId) return; // seen already
    this.lastId = evt.id;
    this.root.dataset.lastEventId = String(evt.id);
    if (evt.type === 'operator.broadcast') this.showBroadcast(evt);
    else if (evt.alarm || evt.type === 'alarm.state') this.showAlarm(evt);
    document.dispatchEvent(new CustomEvent('tr:event', { detail: evt }));
  }

  remember(list, node) {
    list.prepend(node);
    while (list.children.length > MAX_SHOWN) list.lastChild.remove();
  }

  showBroadcast(evt) {
    const line = el('li', { class: 'tr-broadcast' }, [
      el('time', { text: when(evt.at) }), ' ', el('span', { class: 'tr-sender', text: evt.sender }), ': ',
      el('span', { class: 'tr-broadcast-text', text: evt.text }),
    ]);
    this.remember(this.broadcastList, line);
    this.broadcastLatest.replaceChildren(
      el('span', { class: 'tr-sender', text: `Broadcast from ${evt.sender}` }), ' ',
      el('time', { text: when(evt.at) }), ' ', el('span', { class: 'tr-broadcast-text', text: evt.text }));
    this.broadcastLatest.hidden = false;
  }

  showAlarm(evt) {
    const { subject, fields } = describeAlarm(evt);
    this.remember(this.alarmList, el('li', { class: `tr-alarm-item tr-alarm-${evt.alarm ? 'alarm' : 'ok'}` }, [
      el('time', { text: when(evt.at) }), ' ', el('span', { text: subject }),
    ]));
    if (!evt.alarm) return; // a return to OK is history, not a banner
    this.alarmSubject.textContent = subject;
    this.alarmTime.textContent = when(evt.at);
    this.alarmTime.setAttribute('datetime', String(evt.at));
    this.alarmFields.replaceChildren(...fields.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: show(v) })]));
    this.banner.hidden = false;
    if (this.synced) { // history shown to a page that just opened raises no siren
      this.alarmActive = true;
      this.siren.start();
    }
    this.setState();
  }

  async sendBroadcast() {
    const text = this.input.value.trim();
    if (!text) return;
    const meta = document.querySelector('meta[name="csrf-token"]');
    const token = this.root.dataset.csrf || (meta ? meta.getAttribute('content') : '') || '';
    this.formStatus.textContent = 'sending…';
    try {
      const res = await fetch(this.root.dataset.broadcast || '/console/live/broadcast', {
        method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': token },
        body: JSON.stringify({ text }),
      });
      const body = await res.json().catch(() => ({}));
      if (res.ok) { this.input.value = ''; this.formStatus.textContent = 'sent'; }
      else this.formStatus.textContent = `not sent: ${body.error || res.status}`;
    } catch (e) {
      this.formStatus.textContent = `not sent: ${e.message}`;
    }
  }
}

const root = document.getElementById('tr-live');
if (root) new LiveFeed(root);
