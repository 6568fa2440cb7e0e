// The Sluice web page: the application's state, its topology drawn as SVG,
// the tasks' throughput and lag, and a store lookup form. It reads only the
// App's own endpoints (API: docs/operations.md):
//
//   GET /api/state             application id, state, instance (every 2 s)
//   GET /topology?format=json  sub-topologies, nodes, stores (once)
//   GET /api/tasks             per-task throughput and lag (every second)
//   GET /api/stores            the queryable stores (once)
//   GET /stores/{s}/keys/{k}   one key's value (on submit)
//
// Each panel fails on its own: an endpoint that is missing or failing shows
// a message in its panel and is retried, the rest of the page goes on.
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';

// ---- helpers ---------------------------------------------------------------

function $(id) { return document.getElementById(id); }

function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

function s(tag, attrs, parent) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

function showError(id, msg) {
  const e = $(id);
  e.textContent = msg;
  e.hidden = false;
}

function clearError(id) {
  const e = $(id);
  e.hidden = true;
  e.textContent = '';
}

// readBody returns a response's JSON body, or {error: text} when it is not
// JSON (a plain-text error from the server).
async function readBody(r) {
  const text = await r.text();
  try {
    return JSON.parse(text);
  } catch {
    return { error: text.trim() };
  }
}

// getJSON fetches path and returns its JSON body; it throws an Error naming
// the path and the status (or the network failure) otherwise.
async function getJSON(path) {
  let r;
  try {
    r = await fetch(path, { cache: 'no-store' });
  } catch (e) {
    throw new Error(`${path}: the App does not answer (${e.message})`);
  }
  const body = await readBody(r);
  if (!r.ok) {
    const why = r.status === 404 ? 'not served by this App' : (body.error || r.statusText);
    throw new Error(`${path}: ${r.status} ${why}`);
  }
  return body;
}

function fmtInt(n) { return Number(n || 0).toLocaleString('en-US'); }

function fmtRate(x) {
  x = Number(x || 0);
  if (x >= 100) return Math.round(x).toLocaleString('en-US');
  return x.toFixed(1);
}

// ---- application state -----------------------------------------------------

async function pollState() {
  try {
    const st = await getJSON('/api/state');
    $('app-id').textContent = st.application_id || '(no application id)';
    const state = $('app-state');
    state.textContent = st.state || 'UNKNOWN';
    state.dataset.state = st.state || '';
    $('instance').textContent = st.instance ? `instance ${st.instance}` : '';
    document.title = `Sluice · ${st.application_id || ''}`;
    clearError('state-error');
  } catch (e) {
    $('app-state').textContent = 'UNKNOWN';
    $('app-state').dataset.state = '';
    showError('state-error', `Application state unavailable: ${e.message}`);
  }
  setTimeout(pollState, 2000);
}

// ---- topology --------------------------------------------------------------

const LAYER_GAP = 34;   // vertical space between layers
const ITEM_GAP = 18;    // horizontal space between items of a layer
const PAD = 16;         // padding inside a sub-topology box
const TITLE_H = 42;     // sub-topology title and its live stats line
const BOX_GAP = 22;     // space between sub-topology boxes
const MIN_SCALE = 0.7;  // smallest scale a wide topology is drawn at

let measureCtx = null;

// textWidth measures text in the font the SVG labels use (style.css:
// .topology text).
function textWidth(text, font) {
  if (!measureCtx) measureCtx = document.createElement('canvas').getContext('2d');
  measureCtx.font = font;
  return measureCtx.measureText(text).width;
}

const NAME_FONT = '12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';
const TITLE_FONT = '600 13px system-ui, sans-serif';

// layoutGraph lays one sub-topology out in layers, top to bottom: the
// topics a source reads, then the nodes by depth (the longest path from a
// source), the topic a sink writes below its sink, and each store next to
// the first processor that uses it. Within a layer items are ordered by
// the mean position of their predecessors, which keeps chains straight.
function layoutGraph(nodes) {
  const byName = new Map(nodes.map(n => [n.name, n]));
  const depth = new Map();
  const depthOf = (name, visiting) => {
    if (depth.has(name)) return depth.get(name);
    if (visiting.has(name)) return 0; // a cycle: not in a valid topology
    visiting.add(name);
    const preds = (byName.get(name).predecessors || []).filter(p => byName.has(p));
    const d = preds.length ? 1 + Math.max(...preds.map(p => depthOf(p, visiting))) : 0;
    visiting.delete(name);
    depth.set(name, d);
    return d;
  };
  const items = new Map();
  const edges = [];
  const add = (id, item) => {
    if (!items.has(id)) items.set(id, Object.assign({ id, preds: [] }, item));
    return items.get(id);
  };
  for (const n of nodes) {
    const layer = depthOf(n.name, new Set()) + 1;
    const kind = n.kind || 'processor';
    const node = add('node:' + n.name, { kind, label: n.name, layer, name: n.name });
    node.layer = layer;
    if (kind === 'source') {
      const topics = (n.topics && n.topics.length) ? n.topics
        : (n.topic_pattern ? [`/${n.topic_pattern}/`] : []);
      for (const t of topics) {
        add('in:' + t, { kind: 'topic', label: t, layer: 0, topic: t });
        edges.push({ from: 'in:' + t, to: node.id, type: 'flow' });
      }
    }
    if (kind === 'sink' && typeof n.topic === 'string') {
      // "" is a sink that chooses the topic per record (a TopicNameExtractor).
      const label = n.topic || '(topic chosen per record)';
      const t = add('out:' + (n.topic || '?' + n.name), { kind: 'topic', label, layer: layer + 1, topic: n.topic });
      t.layer = Math.max(t.layer, layer + 1);
      edges.push({ from: node.id, to: t.id, type: 'flow' });
    }
  }
  for (const n of nodes) {
    for (const succ of n.successors || []) {
      if (byName.has(succ)) edges.push({ from: 'node:' + n.name, to: 'node:' + succ, type: 'flow' });
    }
  }
  const storeOwner = new Map();
  for (const n of nodes) {
    for (const st of n.stores || []) {
      if (!storeOwner.has(st)) storeOwner.set(st, 'node:' + n.name);
      add('store:' + st, { kind: 'store', label: st, layer: items.get('node:' + n.name).layer, store: st });
      edges.push({ from: 'node:' + n.name, to: 'store:' + st, type: 'store' });
    }
  }
  for (const e of edges) {
    if (e.type === 'flow') items.get(e.to).preds.push(e.from);
  }

  // Sizes.
  for (const it of items.values()) {
    const w = textWidth(it.label, NAME_FONT);
    if (it.kind === 'topic') { it.w = w + 30; it.h = 26; }
    else if (it.kind === 'store') { it.w = Math.max(w + 26, 70); it.h = 34; }
    else { it.w = Math.max(w + 24, 110); it.h = 42; }
  }

  // Layers, ordered by the mean x of the predecessors laid out already.
  const layers = [];
  for (const it of items.values()) (layers[it.layer] ||= []).push(it);
  let y = 0;
  for (const layer of layers) {
    if (!layer) continue;
    const main = layer.filter(it => it.kind !== 'store');
    const key = it => {
      const xs = it.preds.map(p => items.get(p)).filter(p => p.x !== undefined).map(p => p.x + p.w / 2);
      return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Infinity;
    };
    main.forEach((it, i) => { it.order = i; it.key = key(it); });
    main.sort((a, b) => (a.key - b.key) || (a.order - b.order));
    const ordered = [];
    for (const it of main) {
      ordered.push(it);
      for (const st of layer) {
        if (st.kind === 'store' && storeOwner.get(st.store) === it.id) ordered.push(st);
      }
    }
    // Each row is centred on its main items: a store hangs off to the side
    // of its processor without pulling the chain out of line.
    const rowH = Math.max(...ordered.map(it => it.h));
    let x = 0;
    for (const it of ordered) {
      it.x = x;
      it.y = y + (rowH - it.h) / 2;
      x += it.w + ITEM_GAP;
    }
    const centre = (main[0].x + main[main.length - 1].x + main[main.length - 1].w) / 2;
    for (const it of ordered) it.x -= centre;
    y += rowH + LAYER_GAP;
  }
  let minX = Infinity, maxX = -Infinity;
  for (const it of items.values()) {
    minX = Math.min(minX, it.x);
    maxX = Math.max(maxX, it.x + it.w);
  }
  for (const it of items.values()) it.x -= minX;
  const width = items.size ? maxX - minX : 0;
  return { items, edges, width, height: Math.max(0, y - LAYER_GAP) };
}

// clip returns where the segment from a's center towards b's center leaves
// a's box.
function clip(a, b) {
  const ax = a.x + a.w / 2, ay = a.y + a.h / 2;
  const dx = b.x + b.w / 2 - ax, dy = b.y + b.h / 2 - ay;
  if (dx === 0 && dy === 0) return [ax, ay];
  const t = Math.min(dx ? (a.w / 2) / Math.abs(dx) : Infinity, dy ? (a.h / 2) / Math.abs(dy) : Infinity);
  return [ax + dx * t, ay + dy * t];
}

function drawGraph(g, layout, ox, oy) {
  const { items, edges } = layout;
  for (const e of edges) {
    const a = items.get(e.from), b = items.get(e.to);
    if (e.type === 'store') {
      const [x1, y1] = clip({ ...a, x: a.x + ox, y: a.y + oy }, { ...b, x: b.x + ox, y: b.y + oy });
      const [x2, y2] = clip({ ...b, x: b.x + ox, y: b.y + oy }, { ...a, x: a.x + ox, y: a.y + oy });
      s('line', { class: 'edge store-edge', x1, y1, x2, y2 }, g);
      continue;
    }
    const x1 = ox + a.x + a.w / 2, y1 = oy + a.y + a.h;
    const x2 = ox + b.x + b.w / 2, y2 = oy + b.y - 2;
    const dy = Math.max(14, (y2 - y1) / 2);
    s('path', {
      class: 'edge',
      d: `M${x1},${y1} C${x1},${y1 + dy} ${x2},${y2 - dy} ${x2},${y2}`,
      'marker-end': 'url(#arrow)',
    }, g);
  }
  for (const it of items.values()) {
    const attrs = { class: `item ${it.kind}`, transform: `translate(${ox + it.x},${oy + it.y})` };
    if (it.kind === 'topic') { attrs.class = 'item topic'; attrs['data-topic'] = it.topic; }
    else if (it.kind === 'store') attrs['data-store'] = it.store;
    else { attrs.class = `item node ${it.kind}`; attrs['data-node'] = it.name; }
    const ig = s('g', attrs, g);
    s('title', {}, ig).textContent = it.kind === 'topic' ? `topic ${it.label}`
      : it.kind === 'store' ? `state store ${it.label}` : `${it.kind} ${it.label}`;
    if (it.kind === 'topic') {
      s('rect', { width: it.w, height: it.h, rx: it.h / 2 }, ig);
      s('text', { class: 'name', x: it.w / 2, y: it.h / 2 + 4, 'text-anchor': 'middle' }, ig).textContent = it.label;
    } else if (it.kind === 'store') {
      // A cylinder: the usual sign of a database.
      const e = 5;
      s('path', {
        d: `M0,${e} A${it.w / 2},${e} 0 0 1 ${it.w},${e} V${it.h - e} A${it.w / 2},${e} 0 0 1 0,${it.h - e} Z`,
      }, ig);
      s('path', { class: 'rim', d: `M0,${e} A${it.w / 2},${e} 0 0 0 ${it.w},${e}` }, ig);
      s('text', { class: 'name', x: it.w / 2, y: it.h / 2 + 7, 'text-anchor': 'middle' }, ig).textContent = it.label;
    } else {
      s('rect', { width: it.w, height: it.h, rx: 5 }, ig);
      s('text', { class: 'kind', x: 10, y: 15 }, ig).textContent = it.kind;
      s('text', { class: 'name', x: 10, y: 32 }, ig).textContent = it.label;
    }
  }
}

let topology = null;

// drawTopology draws every sub-topology as a titled box, wrapped into rows
// as wide as the panel (a global store being one of them, see below).
function drawTopology() {
  const view = $('topology-view');
  view.replaceChildren();
  if (!topology) return;
  const boxes = [];
  for (const st of topology.subtopologies || []) {
    boxes.push({ title: `Sub-topology ${st.id}`, id: st.id, layout: layoutGraph(st.nodes || []) });
  }
  // A global store is a sub-topology of its own (with an ID among the
  // others, as Kafka Streams numbers it) that runs in no task.
  for (const gs of topology.global_stores || []) {
    const nodes = [
      { name: gs.source, kind: 'source', topics: [gs.topic], successors: [gs.processor], predecessors: [] },
      { name: gs.processor, kind: 'processor', stores: [gs.store], successors: [], predecessors: [gs.source] },
    ];
    boxes.push({ title: `Sub-topology ${gs.id} · global store`, id: gs.id, global: true, layout: layoutGraph(nodes) });
  }
  boxes.sort((a, b) => a.id - b.id);
  if (!boxes.length) {
    view.append(h('p', { class: 'muted' }, 'The topology has no sub-topologies.'));
    return;
  }
  const maxW = Math.max(view.clientWidth - 4, 300);
  let x = 0, y = 0, rowH = 0, totalW = 0;
  for (const b of boxes) {
    b.w = Math.max(b.layout.width + 2 * PAD, textWidth(b.title, TITLE_FONT) + 2 * PAD, 220);
    b.h = b.layout.height + 2 * PAD + TITLE_H;
    if (x > 0 && x + b.w > maxW) { x = 0; y += rowH + BOX_GAP; rowH = 0; }
    b.x = x; b.y = y;
    x += b.w + BOX_GAP;
    rowH = Math.max(rowH, b.h);
    totalW = Math.max(totalW, b.x + b.w);
  }
  const totalH = y + rowH;
  // A sub-topology wider than the panel is drawn smaller, down to
  // MIN_SCALE (still legible); beyond that the panel scrolls.
  const scale = Math.max(Math.min(1, maxW / (totalW + 2)), MIN_SCALE);
  const svg = s('svg', {
    id: 'topology-svg', class: 'topology', width: Math.round((totalW + 2) * scale), height: Math.round((totalH + 2) * scale),
    viewBox: `-1 -1 ${totalW + 2} ${totalH + 2}`, role: 'img',
    'aria-label': 'topology: sub-topologies with their topics, nodes and state stores',
  });
  const defs = s('defs', {}, svg);
  const marker = s('marker', {
    id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse',
  }, defs);
  s('path', { class: 'arrowhead', d: 'M0,0 L10,5 L0,10 z' }, marker);
  for (const b of boxes) {
    const g = s('g', { class: 'subtopology', 'data-subtopology': b.id }, svg);
    s('rect', { class: 'box', x: b.x, y: b.y, width: b.w, height: b.h, rx: 8 }, g);
    s('text', { class: 'title', x: b.x + PAD, y: b.y + 20 }, g).textContent = b.title;
    if (!b.global) s('text', { class: 'stats', x: b.x + PAD, y: b.y + 37, 'data-subtopology': b.id }, g);
    const ox = b.x + PAD + (b.w - 2 * PAD - b.layout.width) / 2;
    drawGraph(g, b.layout, ox, b.y + PAD + TITLE_H);
  }
  view.append(svg);
  updateSubtopologyStats();
}

async function loadTopology() {
  try {
    topology = await getJSON('/topology?format=json');
    clearError('topology-error');
    drawTopology();
  } catch (e) {
    showError('topology-error', `Topology unavailable: ${e.message}`);
    setTimeout(loadTopology, 5000);
  }
}

let resizeTimer = 0;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(drawTopology, 150);
});

// ---- tasks -----------------------------------------------------------------

const HISTORY = 30;                 // samples kept per task: one a second
const LAG_WARN = 1000;              // lag shown as a warning from here
const history = new Map();          // task key -> records/s samples
let samples = 0;                    // polls that returned tasks
let lastTasks = [];

function taskKey(t) { return `${t.id}/${t.kind}`; }

// taskOrder sorts tasks by sub-topology, then partition ("1_10" after
// "1_9"), then kind.
function taskOrder(a, b) {
  const pa = String(a.id).split('_').map(Number), pb = String(b.id).split('_').map(Number);
  return (pa[0] - pb[0]) || (pa[1] - pb[1]) || String(a.kind).localeCompare(String(b.kind));
}

function sparkline(values) {
  const w = 120, hgt = 22;
  const svg = s('svg', { class: 'spark', width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}` });
  const max = Math.max(1, ...values);
  const step = w / (HISTORY - 1);
  const x0 = w - step * (values.length - 1);
  const pts = values.map((v, i) => `${(x0 + i * step).toFixed(1)},${(hgt - 2 - (v / max) * (hgt - 4)).toFixed(1)}`);
  if (values.length > 1) {
    s('polygon', { class: 'area', points: `${x0.toFixed(1)},${hgt} ${pts.join(' ')} ${w},${hgt}` }, svg);
    s('polyline', { class: 'line', points: pts.join(' ') }, svg);
  }
  return svg;
}

function renderTasks(data) {
  const tasks = (data.tasks || []).slice().sort(taskOrder);
  lastTasks = tasks;
  const seen = new Set();
  for (const t of tasks) {
    const k = taskKey(t);
    seen.add(k);
    const hist = history.get(k) || [];
    hist.push(Number(t.records_per_second || 0));
    if (hist.length > HISTORY) hist.shift();
    history.set(k, hist);
  }
  for (const k of history.keys()) if (!seen.has(k)) history.delete(k);

  const rows = tasks.map(t => {
    const kind = h('td', {}, t.kind || '');
    if (t.restoring) kind.append(' ', h('span', { class: 'badge restoring' }, 'restoring'));
    const parts = h('td', { class: 'partitions' });
    for (const p of t.partitions || []) {
      parts.append(h('span', { class: p.lag >= LAG_WARN ? 'part lagging' : 'part' }, `${p.topic}-${p.partition}: ${fmtInt(p.lag)}`));
    }
    return h('tr', { 'data-task': t.id, 'data-kind': t.kind || '' },
      h('td', { class: 'id' }, t.id),
      kind,
      h('td', { class: 'num' }, fmtInt(t.processed_total)),
      h('td', { class: 'num rate' }, fmtRate(t.records_per_second)),
      h('td', {}, sparkline(history.get(taskKey(t)))),
      h('td', { class: t.lag >= LAG_WARN ? 'num lag lagging' : 'num lag' }, fmtInt(t.lag)),
      parts);
  });
  if (!rows.length) {
    rows.push(h('tr', {}, h('td', { colSpan: 7, className: 'muted' },
      `No tasks on this instance (state ${data.state || 'unknown'}).`)));
  }
  $('tasks').tBodies[0].replaceChildren(...rows);

  const active = tasks.filter(t => t.kind === 'active').length;
  const rate = tasks.reduce((a, t) => a + (t.kind === 'active' ? Number(t.records_per_second || 0) : 0), 0);
  const lag = tasks.reduce((a, t) => a + (t.kind === 'active' ? Number(t.lag || 0) : 0), 0);
  $('tasks-summary').textContent =
    `${active} active, ${tasks.length - active} standby · ${fmtRate(rate)} records/s · lag ${fmtInt(lag)}`;
  samples++;
  $('tasks').dataset.samples = String(samples);
  updateSubtopologyStats();
}

// updateSubtopologyStats writes each sub-topology's task count, records/s
// and lag on this instance into its box's title line.
function updateSubtopologyStats() {
  for (const e of document.querySelectorAll('svg.topology text.stats')) {
    const id = e.getAttribute('data-subtopology');
    const ts = lastTasks.filter(t => t.kind === 'active' && String(t.id).split('_')[0] === id);
    if (!ts.length) { e.textContent = ''; continue; }
    const rate = ts.reduce((a, t) => a + Number(t.records_per_second || 0), 0);
    const lag = ts.reduce((a, t) => a + Number(t.lag || 0), 0);
    e.textContent = `${ts.length} task${ts.length === 1 ? '' : 's'} here · ${fmtRate(rate)} records/s · lag ${fmtInt(lag)}`;
  }
}

async function pollTasks() {
  try {
    renderTasks(await getJSON('/api/tasks'));
    clearError('tasks-error');
  } catch (e) {
    showError('tasks-error', `Task metrics unavailable: ${e.message}`);
  }
  setTimeout(pollTasks, 1000);
}

// ---- store lookup ----------------------------------------------------------

const WINDOWED = new Set(['window', 'session']);
const MAX_ATTEMPTS = 5;   // lookups answered 503 (key moving) are retried
let lookupSeq = 0;

async function loadStores() {
  try {
    const data = await getJSON('/api/stores');
    const sel = $('store');
    const stores = data.stores || [];
    sel.replaceChildren(...stores.map(st =>
      h('option', { value: st.name, 'data-kind': st.kind || '' },
        `${st.name} (${st.global ? 'global ' : ''}${(st.kind || '?').replace('_', '-')}${st.key_format ? ', ' + st.key_format + ' keys' : ''})`)));
    if (!stores.length) showError('stores-error', 'This topology has no queryable stores.');
    else clearError('stores-error');
    storeChanged();
  } catch (e) {
    showError('stores-error', `Store list unavailable: ${e.message}`);
    setTimeout(loadStores, 5000);
  }
}

function storeChanged() {
  const opt = $('store').selectedOptions[0];
  $('window-range').hidden = !(opt && WINDOWED.has(opt.dataset.kind));
}

function lookupShow(status, message, value, meta) {
  const box = $('lookup-result');
  box.hidden = false;
  box.dataset.status = String(status);
  $('lookup-message').textContent = message;
  const v = $('lookup-value');
  v.replaceChildren();
  if (value instanceof Node) v.append(value);
  else v.textContent = value || '';
  v.hidden = !value;
  $('lookup-meta').textContent = meta || '';
}

// timeCell shows an epoch-ms window bound as UTC time, the number itself
// in its tooltip.
function timeCell(ms) {
  const d = new Date(Number(ms));
  const text = isNaN(d) ? String(ms) : d.toISOString().replace('T', ' ').replace('Z', '');
  return h('td', { class: 'time', title: `${ms} ms since the epoch` }, text);
}

function resultsTable(results) {
  return h('table', { class: 'results' },
    h('thead', {}, h('tr', {}, h('th', {}, 'start (UTC)'), h('th', {}, 'end (UTC)'), h('th', {}, 'value'))),
    h('tbody', {}, ...results.map(r => h('tr', {},
      timeCell(r.start), timeCell(r.end), h('td', {}, JSON.stringify(r.value))))));
}

async function lookup(attempt, seq) {
  const store = $('store').value;
  const key = $('key').value;
  if (!store) { lookupShow('error', 'No store to look up in.'); return; }
  let url = `/stores/${encodeURIComponent(store)}/keys/${encodeURIComponent(key)}`;
  const opt = $('store').selectedOptions[0];
  if (opt && WINDOWED.has(opt.dataset.kind)) {
    const q = new URLSearchParams();
    if ($('from').value.trim()) q.set('from', $('from').value.trim());
    if ($('to').value.trim()) q.set('to', $('to').value.trim());
    if ([...q].length) url += '?' + q;
  }
  if (attempt === 1) lookupShow('pending', `Looking up ${JSON.stringify(key)} in ${store}…`);
  let r, body;
  try {
    r = await fetch(url, { cache: 'no-store' });
    body = await readBody(r);
  } catch (e) {
    if (seq === lookupSeq) lookupShow('error', `The App does not answer: ${e.message}`);
    return;
  }
  if (seq !== lookupSeq) return; // a newer lookup was started
  const meta = [];
  const by = r.headers.get('Sluice-Served-By');
  if (by) meta.push(`served by ${by}`);
  const standbyLag = r.headers.get('Sluice-Standby-Lag');
  if (standbyLag !== null) meta.push(`from a standby, ${standbyLag} records behind`);
  if (r.status === 200) {
    if (Array.isArray(body.results)) {
      lookupShow(200, `${body.results.length} result${body.results.length === 1 ? '' : 's'} for ${JSON.stringify(body.key)}`,
        body.results.length ? resultsTable(body.results) : '', meta.join(' · '));
    } else {
      lookupShow(200, `${JSON.stringify(body.key)} in ${store}:`, JSON.stringify(body.value, null, 2), meta.join(' · '));
    }
  } else if (r.status === 404) {
    lookupShow(404, 'not found', '', body.error || '');
  } else if (r.status === 503) {
    const wait = Math.min(Math.max(Number(r.headers.get('Retry-After')) || 1, 1), 10);
    if (attempt < MAX_ATTEMPTS) {
      lookupShow(503, `moving, retry: attempt ${attempt + 1} of ${MAX_ATTEMPTS} in ${wait} s`, '', body.error || '');
      setTimeout(() => { if (seq === lookupSeq) lookup(attempt + 1, seq); }, wait * 1000);
    } else {
      lookupShow(503, `moving, retry: the key's task was still moving after ${MAX_ATTEMPTS} attempts`, '', body.error || '');
    }
  } else {
    lookupShow(r.status, `error ${r.status}`, '', body.error || r.statusText);
  }
}

// ---- start -----------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  $('store').addEventListener('change', storeChanged);
  $('lookup').addEventListener('submit', ev => {
    ev.preventDefault();
    lookup(1, ++lookupSeq);
  });
  pollState();
  loadTopology();
  pollTasks();
  loadStores();
});
