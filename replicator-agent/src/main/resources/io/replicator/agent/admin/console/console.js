// The operator's console: polls this agent's /status, /events and /samples and draws them; the
// buttons POST /ops/{name} with the admin token, which stays in this tab only (sessionStorage).
// Everything comes from the agent itself: no external script, style or font.
'use strict';

(function () {
  const STATUS_EVERY_MS = 250;
  const HISTORY_EVERY_MS = 2000;
  const REQUEST_TIMEOUT_MS = 2500;
  const TOKEN_KEY = 'replicator.adminToken';
  // The CLI's exit codes (replicator --help), so a refusal reads the same in both places.
  const EXIT = {
    FAILURE: [1, 'failure'], AGENT_UNREACHABLE: [3, 'agent unreachable'], PEER_UNREACHABLE: [4, 'peer unreachable'],
    SPLIT_BRAIN: [5, 'split brain'], REFUSED: [6, 'refused'], UNAUTHORIZED: [7, 'unauthorized'],
  };
  const CONFIRM = {
    swap: 'Move the primary role to the other node? The application stops here and starts there; no acknowledged write is lost.',
    verify: 'Compare the whole tree with the peer by checksum while the application runs?',
    resync: 'Send the peer whatever is marked dirty?',
    promote: 'Make this node primary? Refused when the peer is primary or the witness does not grant it.',
    demote: 'Make this node secondary? The application stops here.',
  };
  const $ = (id) => document.getElementById(id);
  let lastStatus = null;
  let agentDownSince = null;
  let opRunning = false;

  // ------------------------------------------------------------------ token (this tab only)

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }

  function setToken(value) {
    try {
      if (value) { sessionStorage.setItem(TOKEN_KEY, value); } else { sessionStorage.removeItem(TOKEN_KEY); }
    } catch (e) { /* storage refused: the token is simply not kept */ }
    showAccess();
  }

  function showAccess() {
    const has = token() !== '';
    const state = $('access-state');
    state.textContent = has ? 'Admin token set for this tab.' : 'Read-only: the buttons need the admin token.';
    state.className = has ? 'granted' : 'readonly';
    $('token').hidden = has;
    $('token-use').hidden = has;
    $('token-forget').hidden = !has;
  }

  function headers() {
    const h = { 'Accept': 'application/json, text/plain' };
    const t = token();
    if (t) { h['Authorization'] = 'Bearer ' + t; }
    return h;
  }

  async function request(method, path) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), method === 'GET' ? REQUEST_TIMEOUT_MS : 120000);
    try {
      return await fetch(path, { method, headers: headers(), cache: 'no-store', credentials: 'omit',
        redirect: 'error', signal: abort.signal });
    } finally {
      clearTimeout(timer);
    }
  }

  // ------------------------------------------------------------------ formatting

  function bytes(n) {
    if (n === null || n === undefined || isNaN(n)) { return '—'; }
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = Number(n);
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? v.toFixed(0) : v.toFixed(v < 10 ? 2 : 1)) + ' ' + units[i];
  }

  function seconds(s) {
    if (s === null || s === undefined || s < 0) { return 'unknown'; }
    if (s < 60) { return Math.round(s) + ' s'; }
    if (s < 3600) { return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s'; }
    return Math.floor(s / 3600) + ' h ' + Math.round((s % 3600) / 60) + ' min';
  }

  function clock(iso) {
    const d = new Date(iso);
    if (isNaN(d)) { return iso || '—'; }
    const today = new Date().toDateString() === d.toDateString();
    return (today ? '' : d.toLocaleDateString() + ' ') + d.toLocaleTimeString();
  }

  function roleOfState(state) {
    switch (state) {
      case 'PRIMARY': case 'ALONE': case 'SYNC_SOURCE': return 'primary';
      case 'SECONDARY': case 'SYNC_TARGET': return 'secondary';
      default: return 'none';
    }
  }

  function setField(card, name, text, cls) {
    const dd = card.querySelector('[data-field="' + name + '"]');
    if (dd) {
      dd.textContent = text;
      dd.className = cls || '';
    }
  }

  function setRole(el, role, unreachable) {
    el.textContent = unreachable ? 'unreachable' : role;
    el.className = 'role ' + (unreachable ? 'unreachable' : role);
  }

  // ------------------------------------------------------------------ status

  async function pollStatus() {
    try {
      const r = await request('GET', '/status');
      if (r.status === 401) {
        agentUp();
        $('link').textContent = 'this endpoint needs the admin token to be read';
        $('link').className = 'link down';
        return;
      }
      if (!r.ok) { throw new Error('answered ' + r.status); }
      const s = await r.json();
      agentUp();
      const bad = unreadable(s);
      if (bad) {
        $('link').textContent = 'the agent sent a status this console cannot read: ' + bad;
        $('link').className = 'link down';
        return;
      }
      lastStatus = s;
      render(s);
    } catch (e) {
      agentDown(e);
    } finally {
      setTimeout(pollStatus, STATUS_EVERY_MS);
    }
  }

  // The counts of the status document (status.proto). The 64-bit ones arrive as strings, as the
  // proto3 JSON mapping writes them; they are made numbers here, once. A count that is neither is a
  // bad document: it is refused, never drawn as 0.
  const COUNTS = ['dirtyBytes', 'lastSequence', 'appliedSequence', 'inFlight.changes', 'inFlight.bytes',
    'resync.bytesDone', 'resync.bytesTotal', 'resync.bytesPerSecond', 'resync.etaSeconds', 'resync.filesDone',
    'resync.filesTotal', 'resync.percent', 'extra.epoch', 'extra.peerNode.lastHeardMillisAgo',
    'extra.application.restarts', 'extra.verify.filesDone', 'extra.verify.filesTotal', 'extra.verify.bytesDone',
    'extra.verify.bytesTotal', 'extra.verify.bytesPerSecond', 'extra.verify.etaSeconds',
    'extra.failover.detectionMillis', 'extra.failover.promotionMillis'];

  // Turns the counts of `s` into numbers in place; returns what is wrong with it, or null.
  function unreadable(s) {
    if (s === null || typeof s !== 'object') { return 'not a JSON object'; }
    for (const path of COUNTS) {
      const keys = path.split('.');
      let o = s;
      for (let i = 0; i < keys.length - 1 && o; i++) { o = o[keys[i]]; }
      const last = keys[keys.length - 1];
      if (!o || typeof o !== 'object' || o[last] === undefined || o[last] === null) { continue; }
      const v = o[last];
      if (typeof v === 'number' && Number.isFinite(v)) { continue; }
      if (typeof v !== 'string' || !/^-?[0-9]+$/.test(v)) { return path + ' is ' + JSON.stringify(v) + ', not a number'; }
      o[last] = Number(v);
    }
    return null;
  }

  function agentUp() {
    agentDownSince = null;
    $('link').textContent = 'live';
    $('link').className = 'link';
  }

  // A lost agent shows as unreachable, never as the last numbers it gave.
  function agentDown() {
    if (agentDownSince === null) { agentDownSince = new Date(); }
    $('link').textContent = 'agent unreachable since ' + agentDownSince.toLocaleTimeString();
    $('link').className = 'link down';
    for (const id of ['node-local', 'node-peer']) {
      const card = $(id);
      card.classList.add('unreachable');
      card.querySelectorAll('dd').forEach((dd) => { dd.textContent = '—'; dd.className = ''; });
    }
    setField($('node-local'), 'reachable', 'no: this agent does not answer', 'bad');
    setField($('node-peer'), 'reachable', 'unknown: this agent does not answer', 'bad');
    setRole($('local-role'), 'none', true);
    setRole($('peer-role'), 'none', true);
    $('progress').hidden = true;
  }

  function render(s) {
    const x = s.extra || {};
    $('cluster').textContent = x.cluster ? 'cluster ' + x.cluster : '';
    document.title = 'Replicator · ' + s.node + ' · ' + s.role;
    renderLocal(s, x);
    renderPeer(s, x);
    renderProgress(s, x);
  }

  function witnessText(w) {
    if (!w) { return 'none configured'; }
    let t = w.address + (w.reachable ? ', reachable' : ', NOT reachable');
    if (w.primary) { t += ', recognises ' + w.primary + ' as primary'; }
    if (w.fenced) { t += ', this node is fenced (writes suspended)'; }
    else if (w.aloneGranted) { t += ', leave to write alone granted'; }
    if (w.outdated && w.outdated.length) { t += ', outdated: ' + w.outdated.join(', '); }
    return t;
  }

  function renderLocal(s, x) {
    const card = $('node-local');
    card.classList.remove('unreachable');
    $('local-name').textContent = s.node + ' (this node)';
    setRole($('local-role'), s.role, false);
    setField(card, 'state', s.state + (x.agentRole && x.agentRole !== s.state ? ' (agent: ' + x.agentRole + ')' : ''));
    setField(card, 'reachable', 'yes: this console is served by its agent', 'good');
    setField(card, 'epoch', x.epoch === undefined ? '—' : String(x.epoch));
    setField(card, 'generation', s.generation || '—');
    const p = s.peer || {};
    setField(card, 'connection', (p.connected ? 'connected to ' : 'not connected to ') + (p.address || 'the peer')
      + (p.outOfDate ? ', peer out of date' : ''), p.connected ? 'good' : 'bad');
    setField(card, 'inSync', s.inSync ? 'yes' : 'no', s.inSync ? 'good' : 'bad');
    setField(card, 'dirty', bytes(s.dirtyBytes) + (s.inFlight ? ', in flight ' + s.inFlight.changes + ' changes / '
      + bytes(s.inFlight.bytes) : ''));
    setField(card, 'mode', s.mode || '—');
    setField(card, 'witness', witnessText(x.witness));
    const a = x.application || {};
    setField(card, 'application', (a.registered ? 'running, file system open' : (s.role === 'primary'
      ? 'not registered' : 'not running here')) + ', restarts ' + (a.restarts || 0)
      + (a.startScript ? ' · ' + a.startScript : ''));
    const f = s.lastFailover;
    const figures = x.failover && x.failover.detectionMillis !== undefined
      ? ' (detected in ' + x.failover.detectionMillis + ' ms, promoted in ' + x.failover.promotionMillis + ' ms)' : '';
    setField(card, 'lastFailover', f ? clock(f.at) + ': ' + (f.from || '?') + ' → ' + (f.to || '?') + ', '
      + f.reason + figures : 'none');
    setField(card, 'problem', s.problem || 'none', s.problem ? 'bad' : 'good');
  }

  function renderPeer(s, x) {
    const card = $('node-peer');
    const p = x.peerNode || {};
    $('peer-name').textContent = p.name || 'peer';
    const reachable = !!p.reachable;
    card.classList.toggle('unreachable', !reachable);
    setRole($('peer-role'), roleOfState(p.state), !reachable);
    const heard = p.lastHeardMillisAgo === null || p.lastHeardMillisAgo === undefined ? 'never heard'
      : 'heard ' + seconds(p.lastHeardMillisAgo / 1000) + ' ago';
    setField(card, 'reachable', (reachable ? 'yes, ' : 'NO, ') + heard, reachable ? 'good' : 'bad');
    // What an unreachable peer said last is not its state now.
    setField(card, 'state', reachable ? (p.state || '—') : '—');
    setField(card, 'generation', reachable ? (p.generation || '—') : '—');
    setField(card, 'consistent', reachable ? (p.consistent ? 'consistent' : 'INCONSISTENT (unfinished resync)') : '—',
      reachable && !p.consistent ? 'bad' : '');
    const link = s.peer || {};
    setField(card, 'connection', link.connected ? 'replication link up' : 'replication link down',
      link.connected ? 'good' : 'bad');
    setField(card, 'mode', s.mode || '—');
  }

  // "1,234 of 10,000 files · " when the agent counts files
  function files(p) {
    if (!p.filesTotal) {
      return '';
    }
    return Number(p.filesDone || 0).toLocaleString('en') + ' of ' + Number(p.filesTotal).toLocaleString('en')
      + ' files · ';
  }

  function renderProgress(s, x) {
    const box = $('progress');
    const bar = $('progress-bar');
    const fill = $('progress-fill');
    const v = x.verify;
    if (s.resync) {
      const r = s.resync;
      const pct = r.percent === null || r.percent === undefined ? 0 : r.percent;
      box.hidden = false;
      $('progress-title').textContent = 'Resync ' + (s.state === 'SYNC_TARGET' ? 'into this node' : 'to the peer');
      bar.classList.remove('indeterminate');
      fill.style.width = pct + '%';
      bar.setAttribute('aria-valuenow', String(pct));
      $('progress-text').textContent = files(r) + bytes(r.bytesDone) + ' of ' + bytes(r.bytesTotal)
        + ' (' + pct + ' %) · ' + bytes(r.bytesPerSecond) + '/s · ETA ' + seconds(r.etaSeconds);
    } else if (v && v.running) {
      box.hidden = false;
      $('progress-title').textContent = 'Verify running';
      if (v.bytesTotal > 0) {
        // the totals grow while the tree is still being walked, so the bar may step back a little
        const pct = Math.min(100, Math.round(1000 * v.bytesDone / v.bytesTotal) / 10);
        bar.classList.remove('indeterminate');
        fill.style.width = pct + '%';
        bar.setAttribute('aria-valuenow', String(pct));
        $('progress-text').textContent = files(v) + bytes(v.bytesDone) + ' of ' + bytes(v.bytesTotal)
          + ' (' + pct + ' %) · ' + bytes(v.bytesPerSecond) + '/s · ETA ' + seconds(v.etaSeconds);
      } else {
        bar.classList.add('indeterminate');
        fill.style.width = '';
        bar.removeAttribute('aria-valuenow');
        $('progress-text').textContent = 'comparing the whole tree by checksum with the peer';
      }
    } else {
      box.hidden = true;
    }
  }

  // ------------------------------------------------------------------ events and plots

  async function pollHistory() {
    try {
      const [events, samples] = await Promise.all([request('GET', '/events'), request('GET', '/samples')]);
      if (events.ok) { renderEvents(await events.json()); }
      if (samples.ok) { renderPlots(await samples.json()); }
    } catch (e) {
      // the status poll shows the agent as unreachable
    } finally {
      setTimeout(pollHistory, HISTORY_EVERY_MS);
    }
  }

  function renderEvents(list) {
    const body = $('events');
    const events = (list.events || []).slice().reverse();
    const rows = document.createDocumentFragment();
    for (const e of events) {
      const tr = document.createElement('tr');
      const cells = [[clock(e.at), 'when'], [e.kind.replace('_', ' ').toLowerCase(), 'kind ' + e.kind],
        [e.role || '', ''], [e.reason, '']];
      for (const [text, cls] of cells) {
        const td = document.createElement('td');
        td.textContent = text;
        if (cls) { td.className = cls; }
        tr.appendChild(td);
      }
      rows.appendChild(tr);
    }
    body.replaceChildren(rows);
  }

  const SVG = 'http://www.w3.org/2000/svg';
  const W = 320, H = 130, LEFT = 4, RIGHT = 4, TOP = 16, BOTTOM = 16;

  function renderPlots(list) {
    const samples = list.samples || [];
    const end = Date.now();
    const points = samples.map((s) => ({ t: Date.parse(s.at), s })).filter((p) => p.t >= end - 15 * 60 * 1000);
    // The last 15 minutes, or as much of them as the ring holds: a young agent's few samples fill the width.
    const start = points.length ? Math.min(points[0].t, end - 60 * 1000) : end - 15 * 60 * 1000;
    const span = 'since ' + new Date(start).toLocaleTimeString();
    $('plots-note').textContent = points.length ? '(' + points.length + ' samples, one each '
      + (list.intervalMillis / 1000) + ' s)' : '(no samples yet)';
    plot($('plot-latency'), points, start, end, span, [
      { cls: 'p50', value: (s) => s.writeP50Millis },
      { cls: 'p99', value: (s) => s.writeP99Millis }], (v) => v.toFixed(v < 10 ? 2 : 0) + ' ms');
    plot($('plot-throughput'), points, start, end, span, [{ cls: 'series', value: (s) => s.writeBytesPerSecond }],
      (v) => bytes(v) + '/s');
    plot($('plot-resync'), points, start, end, span, [{ cls: 'series', value: (s) => Number(s.resyncBytesPerSecond) }],
      (v) => bytes(v) + '/s');
    plot($('plot-dirty'), points, start, end, span, [{ cls: 'series', value: (s) => Number(s.dirtyBytes) }], bytes);
  }

  function el(name, attrs, text) {
    const e = document.createElementNS(SVG, name);
    for (const k in attrs) { e.setAttribute(k, attrs[k]); }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function plot(svg, points, start, end, span, series, format) {
    let max = 0;
    for (const p of points) {
      for (const s of series) {
        const v = s.value(p.s);
        if (v !== undefined && v !== null && !isNaN(v)) { max = Math.max(max, v); }
      }
    }
    if (max <= 0) { max = 1; }
    const x = (t) => LEFT + (W - LEFT - RIGHT) * (t - start) / (end - start);
    const y = (v) => H - BOTTOM - (H - TOP - BOTTOM) * v / max;
    const nodes = [
      el('line', { class: 'axis', x1: LEFT, y1: H - BOTTOM, x2: W - RIGHT, y2: H - BOTTOM }),
      el('line', { class: 'axis grid', x1: LEFT, y1: TOP, x2: W - RIGHT, y2: TOP }),
      el('text', { class: 'label', x: LEFT, y: TOP - 4 }, 'max ' + format(max)),
      el('text', { class: 'label', x: LEFT, y: H - 3 }, span),
      el('text', { class: 'label', x: W - RIGHT, y: H - 3, 'text-anchor': 'end' }, 'now'),
    ];
    for (const s of series) {
      // A sample without the value (no write in that second) breaks the line.
      let run = [];
      const flush = () => {
        if (run.length === 1) { run.push(run[0]); }
        if (run.length) { nodes.push(el('polyline', { class: s.cls, points: run.join(' ') })); }
        run = [];
      };
      for (const p of points) {
        const v = s.value(p.s);
        if (v === undefined || v === null || isNaN(v)) { flush(); continue; }
        run.push(x(p.t).toFixed(1) + ',' + y(v).toFixed(1));
      }
      flush();
    }
    svg.replaceChildren(...nodes);
  }

  // ------------------------------------------------------------------ operations

  function confirmOp(op) {
    return new Promise((resolve) => {
      const dialog = $('confirm');
      $('confirm-title').textContent = op.charAt(0).toUpperCase() + op.slice(1) + (lastStatus ? ' on ' + lastStatus.node : '');
      $('confirm-text').textContent = CONFIRM[op] + (token() ? '' : ' No admin token is set: the agent will refuse it.');
      $('confirm-ok').textContent = op.charAt(0).toUpperCase() + op.slice(1);
      dialog.returnValue = 'cancel';
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
      dialog.showModal();
      $('confirm-cancel').focus();
    });
  }

  function showResult(text, ok) {
    const r = $('result');
    r.textContent = text;
    r.className = 'result ' + (ok ? 'ok' : 'refused');
  }

  function exitText(category) {
    return ' (exit ' + category[0] + ': ' + category[1] + ')';
  }

  // The same words as the CLI's, for the same answers.
  async function describeFailure(op, r) {
    const text = (await r.text()).trim().replace(/\s+/g, ' ').slice(0, 300);
    if (r.status === 401) {
      return (token() ? op + ' refused: the agent refused the admin token (401): check the token'
        : op + ' refused: the agent wants an admin token (401): enter it above') + exitText(EXIT.UNAUTHORIZED);
    }
    if (r.status === 409) {
      let code = '';
      let message = text;
      try { const j = JSON.parse(text); code = j.error || ''; message = j.message || ''; } catch (e) { /* as text */ }
      switch (code) {
        case 'PEER_UNREACHABLE': return op + ' refused, peer unreachable: ' + message + exitText(EXIT.PEER_UNREACHABLE);
        case 'SPLIT_BRAIN': return op + ' refused, split brain: ' + message + exitText(EXIT.SPLIT_BRAIN);
        case 'REFUSED': return op + ' refused: ' + message + exitText(EXIT.REFUSED);
        default: return op + ' failed: ' + message + (code && code !== 'FAILED' ? ' (' + code + ')' : '') + exitText(EXIT.FAILURE);
      }
    }
    if (r.status === 504) {
      return 'the ' + op + ' did not finish in the agent\'s time (' + text + '); check the status' + exitText(EXIT.FAILURE);
    }
    return op + ' failed: the agent answered ' + r.status + (text ? ': ' + text : '') + exitText(EXIT.FAILURE);
  }

  async function runOp(op) {
    if (opRunning) { return; }
    if (!(await confirmOp(op))) {
      showResult(op + ': cancelled, nothing sent', true);
      return;
    }
    opRunning = true;
    document.querySelectorAll('[data-op]').forEach((b) => { b.disabled = true; });
    showResult(op + ': sent, waiting for the agent…', true);
    try {
      const r = await request('POST', '/ops/' + op);
      if (r.ok) {
        const text = (await r.text()).trim();
        showResult(text || op + ': done', true);
      } else {
        showResult(await describeFailure(op, r), false);
      }
    } catch (e) {
      showResult(op + ' failed: cannot reach the agent\'s admin endpoint' + exitText(EXIT.AGENT_UNREACHABLE), false);
    } finally {
      opRunning = false;
      document.querySelectorAll('[data-op]').forEach((b) => { b.disabled = false; });
    }
  }

  // ------------------------------------------------------------------ start

  document.addEventListener('DOMContentLoaded', () => {
    showAccess();
    $('token-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const value = $('token').value.trim();
      $('token').value = '';
      setToken(value);
      if (value) { $('token-forget').focus(); }
    });
    $('token-forget').addEventListener('click', () => { setToken(''); $('token').focus(); });
    document.querySelectorAll('[data-op]').forEach((b) => b.addEventListener('click', () => runOp(b.dataset.op)));
    pollStatus();
    pollHistory();
  });
})();
