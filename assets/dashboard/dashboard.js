// netbpf dashboard page: one Server-Sent Events stream (/api/events) feeds
// every view; the filter is compiled on the server. Plain DOM, no framework;
// uPlot (served from the package) draws the charts.
import { formatBytes, formatCount, formatDuration, formatRate } from "/assets/byte-units.js";

const $ = (id) => document.getElementById(id);
const state = {
  samples: [],
  capacity: 3600,
  latest: undefined,
  paused: false,
  filter: "",
  source: undefined,
  unit: "bytes",
  window: 3600,
  sort: { column: "rate", descending: true },
  focusedKey: undefined,
  charts: {},
};

function element(tag, properties = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(properties)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

const localTime = (ms) => new Date(ms).toLocaleTimeString();

// ---- the stream ------------------------------------------------------------

function connect() {
  state.source?.close();
  const parameters = new URLSearchParams();
  if (state.filter !== "") parameters.set("filter", state.filter);
  const last = state.samples.at(-1);
  if (last) parameters.set("since", String(last.time));
  const source = new EventSource(`/api/events?${parameters}`);
  state.source = source;
  source.addEventListener("history", (event) => {
    const history = JSON.parse(event.data);
    state.capacity = history.capacity;
    addSamples(history.samples);
    if (!state.paused) renderCharts();
  });
  source.addEventListener("update", (event) => {
    const update = JSON.parse(event.data);
    addSamples([update.sample]);
    state.latest = update;
    setStatus(`live — ${localTime(update.time)}`);
    if (!state.paused) render();
  });
  source.addEventListener("failure", (event) => setStatus(`the server cannot read the counters: ${JSON.parse(event.data).message}`, "failing"));
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) setStatus("disconnected — reload the page", "failing");
    else setStatus("reconnecting…", "failing");
  };
}

function addSamples(samples) {
  const last = state.samples.at(-1)?.time ?? -Infinity;
  for (const sample of samples) if (sample.time > last) state.samples.push(sample);
  const excess = state.samples.length - state.capacity;
  if (excess > 0) state.samples.splice(0, excess);
}

function setStatus(text, kind = "") {
  const status = $("status");
  status.textContent = state.paused ? `paused — ${text}` : text;
  status.className = `status ${state.paused ? "paused" : kind}`;
}

// ---- charts ----------------------------------------------------------------

const palette = ["#0a66c2", "#d1495b", "#2a9d8f", "#e9a03b", "#7b61ff", "#5c946e", "#c2185b", "#8d6e63", "#00838f", "#6d4c41"];

function themeColors() {
  const style = getComputedStyle(document.documentElement);
  return { text: style.getPropertyValue("--muted").trim(), grid: style.getPropertyValue("--border").trim() };
}

function chartData(kind) {
  const samples = state.samples.filter((sample) => sample.time > (state.samples.at(-1)?.time ?? 0) - state.window * 1000);
  const times = samples.map((sample) => sample.time / 1000);
  const [first, second] = state.unit === "bytes" ? [0, 1] : [2, 3];
  const series = [];
  if (kind === "interfaces") {
    const names = [...new Set(samples.flatMap((sample) => Object.keys(sample.interfaces)))].sort();
    for (const name of names) {
      series.push({ label: `${name} in`, values: samples.map((sample) => sample.interfaces[name]?.[first] ?? 0) });
      series.push({ label: `${name} out`, values: samples.map((sample) => sample.interfaces[name]?.[second] ?? 0) });
    }
  } else {
    const totals = new Map();
    for (const sample of samples) for (const [port, rates] of Object.entries(sample.ports)) totals.set(port, (totals.get(port) ?? 0) + rates[first] + rates[second]);
    const top = [...totals].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([port]) => port);
    for (const port of top) series.push({ label: port, values: samples.map((sample) => (sample.ports[port]?.[first] ?? 0) + (sample.ports[port]?.[second] ?? 0)) });
  }
  return { times, series };
}

function makeChart(kind, data) {
  const container = $(`chart-${kind}`);
  const colors = themeColors();
  const format = state.unit === "bytes" ? formatRate : (value) => `${formatCount(value)}/s`;
  const options = {
    width: Math.max(200, container.clientWidth),
    height: 220,
    series: [{ label: "time", value: (_u, value) => (value == null ? "" : localTime(value * 1000)) }, ...data.series.map((series, index) => ({ label: series.label, stroke: palette[index % palette.length], width: 1.5, value: (_u, value) => (value == null ? "" : format(value)) }))],
    axes: [
      { stroke: colors.text, grid: { stroke: colors.grid, width: 1 }, ticks: { stroke: colors.grid } },
      { stroke: colors.text, grid: { stroke: colors.grid, width: 1 }, ticks: { stroke: colors.grid }, size: 80, values: (_u, values) => values.map(format) },
    ],
    scales: { y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
  container.replaceChildren();
  return new uPlot(options, [data.times, ...data.series.map((series) => series.values)], container);
}

function renderCharts() {
  if (typeof uPlot === "undefined") return;
  for (const kind of ["interfaces", "ports"]) {
    const data = chartData(kind);
    const signature = `${state.unit} ${data.series.map((series) => series.label).join("|")}`;
    const chart = state.charts[kind];
    if (!chart || chart.signature !== signature) {
      chart?.plot.destroy();
      state.charts[kind] = { plot: makeChart(kind, data), signature };
    } else {
      chart.plot.setData([data.times, ...data.series.map((series) => series.values)]);
    }
    const format = state.unit === "bytes" ? formatRate : (value) => `${formatCount(value)}/s`;
    const now = data.series.map((series) => `${series.label} ${format(series.values.at(-1) ?? 0)}`);
    $(`chart-${kind}-summary`).textContent = data.times.length === 0 ? "No traffic yet." : `Now: ${now.join(", ") || "no traffic"}.`;
  }
}

function resizeCharts() {
  for (const kind of ["interfaces", "ports"]) {
    const chart = state.charts[kind];
    if (chart) chart.plot.setSize({ width: Math.max(200, $(`chart-${kind}`).clientWidth), height: 220 });
  }
}

function rebuildCharts() {
  for (const chart of Object.values(state.charts)) chart.plot.destroy();
  state.charts = {};
  renderCharts();
}

// ---- connections -----------------------------------------------------------

const columns = [
  { id: "process", title: "Process", text: (row) => (row.process ? `${row.process.command} (${row.process.pid})` : "—"), sort: (row) => row.process?.command ?? "" },
  { id: "protocol", title: "Proto", text: (row) => row.protocol, sort: (row) => row.protocol },
  { id: "local", title: "Local", text: (row) => endpoint(row.localAddress, row.localPort), sort: (row) => row.localPort },
  { id: "remote", title: "Remote", text: (row) => endpoint(row.remoteAddress, row.remotePort), sort: (row) => row.remotePort },
  { id: "interface", title: "Interface", text: (row) => row.interface ?? "—", sort: (row) => row.interface ?? "" },
  { id: "in", title: "In", number: true, text: (row) => formatRate(row.bytesInPerSecond), sort: (row) => row.bytesInPerSecond, value: (row) => row.bytesInPerSecond },
  { id: "out", title: "Out", number: true, text: (row) => formatRate(row.bytesOutPerSecond), sort: (row) => row.bytesOutPerSecond, value: (row) => row.bytesOutPerSecond },
  { id: "rate", title: "Total", number: true, text: (row) => formatRate(row.bytesInPerSecond + row.bytesOutPerSecond), sort: (row) => row.bytesInPerSecond + row.bytesOutPerSecond, value: (row) => row.bytesInPerSecond + row.bytesOutPerSecond },
  { id: "rtt", title: "RTT", number: true, text: (row) => (row.rttMilliseconds == null ? "—" : formatDuration(row.rttMilliseconds)), sort: (row) => row.rttMilliseconds ?? -1 },
  { id: "duration", title: "Duration", number: true, text: (row) => formatDuration(row.durationMilliseconds), sort: (row) => row.durationMilliseconds },
];

function endpoint(address, port) {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

function renderHeader() {
  const row = $("connections-table").tHead.rows[0];
  row.replaceChildren(
    ...columns.map((column) => {
      const sorted = state.sort.column === column.id;
      const button = element("button", { type: "button", text: column.title + (sorted ? (state.sort.descending ? " ▼" : " ▲") : "") });
      button.addEventListener("click", () => {
        state.sort = { column: column.id, descending: sorted ? !state.sort.descending : !!column.number };
        renderHeader();
        renderConnections();
      });
      return element("th", { scope: "col", class: `${column.number ? "number " : ""}col-${column.id}`, "aria-sort": sorted ? (state.sort.descending ? "descending" : "ascending") : "none" }, [button]);
    }),
  );
}

function renderConnections() {
  const view = state.latest?.connections;
  const body = $("connections-table").tBodies[0];
  if (!view) return;
  const column = columns.find((candidate) => candidate.id === state.sort.column) ?? columns[0];
  const direction = state.sort.descending ? -1 : 1;
  const rows = [...view.rows].sort((a, b) => {
    const x = column.sort(a);
    const y = column.sort(b);
    return (x < y ? -1 : x > y ? 1 : 0) * direction || (a.key < b.key ? -1 : 1);
  });
  $("connections-count").textContent = state.filter !== "" ? `${view.matched} of ${view.total} connections match "${state.filter}"${view.matched > rows.length ? `; the busiest ${rows.length} shown` : ""}.` : `${view.total} connections${view.total > rows.length ? `; the busiest ${rows.length} shown` : ""}.`;
  if (rows.length === 0) {
    body.replaceChildren(element("tr", {}, [element("td", { colspan: String(columns.length), class: "empty", text: state.filter !== "" ? "No connection matches the filter." : "No connections yet." })]));
    return;
  }
  const focusedInside = body.contains(document.activeElement);
  let focusTarget;
  body.replaceChildren(
    ...rows.map((row, index) => {
      const tr = element("tr", { tabindex: "-1", "data-key": row.key });
      if (row.key === state.focusedKey || (state.focusedKey === undefined && index === 0)) {
        tr.tabIndex = 0;
        focusTarget = tr;
      }
      for (const column of columns) {
        const cell = element("td", { class: `${column.number ? "number " : ""}col-${column.id}`, text: column.text(row) });
        if (column.value) cell.dataset.value = String(column.value(row));
        tr.append(cell);
      }
      return tr;
    }),
  );
  if (!focusTarget) body.rows[0].tabIndex = 0;
  if (focusedInside) (focusTarget ?? body.rows[0]).focus();
}

function onTableKey(event) {
  const body = $("connections-table").tBodies[0];
  const current = event.target.closest("tr");
  if (!current || current.parentElement !== body) return;
  const rows = [...body.rows];
  const index = rows.indexOf(current);
  const next = { ArrowDown: index + 1, ArrowUp: index - 1, Home: 0, End: rows.length - 1, PageDown: index + 10, PageUp: index - 10 }[event.key];
  if (next === undefined) return;
  event.preventDefault();
  const target = rows[Math.max(0, Math.min(rows.length - 1, next))];
  current.tabIndex = -1;
  target.tabIndex = 0;
  target.focus();
  state.focusedKey = target.dataset.key;
}

async function applyFilter(event) {
  event.preventDefault();
  const expression = $("filter").value.trim();
  const error = $("filter-error");
  if (expression !== "") {
    const response = await fetch(`/api/filter?${new URLSearchParams({ expression })}`);
    const answer = await response.json().catch(() => ({ error: { message: `HTTP ${response.status}` } }));
    if (!response.ok) {
      error.textContent = answer.error?.message ?? `HTTP ${response.status}`;
      error.hidden = false;
      $("filter").setAttribute("aria-invalid", "true");
      return;
    }
  }
  error.hidden = true;
  $("filter").removeAttribute("aria-invalid");
  state.filter = expression;
  connect();
}

// ---- graph, control, alerts ------------------------------------------------

const svgNamespace = "http://www.w3.org/2000/svg";
function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(svgNamespace, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderGraph() {
  const graph = state.latest?.graph;
  const root = $("graph");
  if (!graph) return;
  const rowHeight = 22;
  const height = Math.max(graph.processes.length, graph.hosts.length, 1) * rowHeight + 10;
  const width = 640;
  root.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const y = (index, count) => 5 + rowHeight / 2 + index * rowHeight + ((Math.max(graph.processes.length, graph.hosts.length) - count) * rowHeight) / 2;
  const left = 200;
  const right = width - 200;
  const heaviest = Math.max(1, ...graph.edges.map((edge) => edge.bytesPerSecond));
  const children = [];
  for (const edge of graph.edges) {
    const y1 = y(graph.processes.indexOf(edge.process), graph.processes.length);
    const y2 = y(graph.hosts.indexOf(edge.host), graph.hosts.length);
    const path = svg("path", { class: "edge", d: `M${left},${y1} C${(left + right) / 2},${y1} ${(left + right) / 2},${y2} ${right},${y2}`, "stroke-width": 1 + 7 * Math.sqrt(edge.bytesPerSecond / heaviest) });
    path.append(svg("title", {}, `${edge.process} → ${edge.host}: ${formatRate(edge.bytesPerSecond)}, ${edge.connections} connections`));
    children.push(path);
  }
  graph.processes.forEach((name, index) => {
    const cy = y(index, graph.processes.length);
    children.push(svg("circle", { class: "node", cx: left, cy, r: 4 }), svg("text", { x: left - 8, y: cy + 4, "text-anchor": "end" }, name.length > 28 ? `${name.slice(0, 27)}…` : name));
  });
  graph.hosts.forEach((name, index) => {
    const cy = y(index, graph.hosts.length);
    children.push(svg("circle", { class: "node", cx: right, cy, r: 4 }), svg("text", { x: right + 8, y: cy + 4 }, name));
  });
  root.replaceChildren(...children);
  $("graph-summary").textContent = graph.edges.length === 0 ? "No traffic to remote hosts right now." : graph.edges.slice(0, 5).map((edge) => `${edge.process} → ${edge.host} ${formatRate(edge.bytesPerSecond)}`).join("; ") + (graph.edges.length > 5 ? `; and ${graph.edges.length - 5} more.` : ".");
}

function smallTable(caption, headers, rows) {
  const table = element("table", {}, [element("caption", { class: "visually-hidden", text: caption }), element("thead", {}, [element("tr", {}, headers.map((header) => element("th", { scope: "col", class: header.number ? "number" : "", text: header.title })))])]);
  table.append(element("tbody", {}, rows.map((cells) => element("tr", {}, cells.map((cell, index) => element("td", { class: headers[index].number ? "number" : "", text: String(cell) }))))));
  return element("div", { class: "table-wrap" }, [table]);
}

function renderControl() {
  const control = state.latest?.control;
  if (!control) return;
  const parts = [];
  const heading = (text) => element("h3", { text });
  if (control.rules.length > 0) {
    parts.push(heading("Firewall rules"), smallTable("Firewall rules with hit counters", [{ title: "Interface" }, { title: "#" }, { title: "Action" }, { title: "Rule" }, { title: "Packets", number: true }, { title: "Bytes", number: true }], control.rules.map((rule) => [rule.interface, rule.id, `${rule.action} ${rule.direction}`, rule.description, formatCount(rule.packets), formatBytes(rule.bytes)])));
  }
  if (control.limits.length > 0) {
    parts.push(heading("Rate limits"), smallTable("Rate limits", [{ title: "Interface" }, { title: "#" }, { title: "Limit" }, { title: "Passed", number: true }, { title: "Dropped", number: true }], control.limits.map((limit) => [limit.interface, limit.id, limit.description, formatCount(limit.passed), formatCount(limit.dropped)])));
    parts.push(heading("Offenders"), control.offenders.length > 0 ? smallTable("Sources the rate limits dropped most", [{ title: "Interface" }, { title: "Limit" }, { title: "Source" }, { title: "Dropped", number: true }, { title: "Passed", number: true }], control.offenders.map((source) => [source.interface, source.rule, source.address, formatCount(source.dropped), formatCount(source.passed)])) : element("p", { class: "empty", text: "No source is being dropped." }));
  }
  for (const balancer of control.balancers) {
    parts.push(heading(`Load balancer ${balancer.service}/${balancer.protocol}`), smallTable(`Backends of ${balancer.service}`, [{ title: "Backend" }, { title: "State" }, { title: "Health" }, { title: "Flows", number: true }, { title: "Packets", number: true }, { title: "Bytes", number: true }], balancer.backends.map((backend) => [backend.endpoint, backend.state, backend.health, backend.trackedFlows, formatCount(backend.packets), formatBytes(backend.bytes)])));
  }
  for (const [part, message] of Object.entries(control.failures)) parts.push(element("p", { class: "error", text: `${part}: ${message}` }));
  if (parts.length === 0) parts.push(element("p", { class: "empty", text: "No firewall rules, rate limits or load balancers are installed." }));
  $("control").replaceChildren(...parts);
}

function renderAlerts() {
  const alerts = state.latest?.alerts;
  if (!alerts) return;
  if (alerts.source === null) return $("alerts").replaceChildren(element("p", { class: "empty", text: "No alert source (netbpf serve --ui --alerts FILE)." }));
  if (alerts.items.length === 0) return $("alerts").replaceChildren(element("p", { class: "empty", text: `No alerts in ${alerts.source}.` }));
  $("alerts").replaceChildren(
    element("ul", { class: "alerts" }, alerts.items.map((alert) => element("li", {}, [element("time", { datetime: alert.time, text: new Date(alert.time).toLocaleString() }), element("span", { class: `severity-${alert.severity}`, text: `${alert.severity} ` }), element("strong", { text: `${alert.kind}: ` }), document.createTextNode(alert.message)]))),
  );
}

function renderHealth() {
  const health = state.latest?.health;
  if (!health) return;
  $("health").textContent = `kernel map: ${health.entries} keys, ${health.evictions} evicted, ${health.lost} packets not counted; TCP: ${health.trackedConnections} open connections followed, ${health.tcpLost} events lost${health.tcpFailure ? ` (${health.tcpFailure})` : ""}; ${health.clients} pages open.`;
}

function render() {
  renderCharts();
  renderConnections();
  renderGraph();
  renderControl();
  renderAlerts();
  renderHealth();
}

// ---- controls --------------------------------------------------------------

function togglePause() {
  state.paused = !state.paused;
  $("pause").setAttribute("aria-pressed", String(state.paused));
  $("pause").textContent = state.paused ? "Resume" : "Pause";
  if (state.paused) setStatus(`the view keeps its data; updates are kept for resuming`);
  else {
    setStatus("live");
    render();
  }
}

function start() {
  renderHeader();
  $("pause").addEventListener("click", togglePause);
  $("filter-form").addEventListener("submit", (event) => void applyFilter(event));
  $("connections-table").tBodies[0].addEventListener("keydown", onTableKey);
  $("connections-table").tBodies[0].addEventListener("focusin", (event) => {
    const row = event.target.closest("tr");
    if (row?.dataset.key) state.focusedKey = row.dataset.key;
  });
  for (const radio of document.querySelectorAll('input[name="unit"]')) {
    radio.addEventListener("change", () => {
      state.unit = radio.value;
      rebuildCharts();
    });
  }
  $("window").addEventListener("change", () => {
    state.window = Number($("window").value);
    renderCharts();
  });
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", rebuildCharts);
  new ResizeObserver(resizeCharts).observe(document.querySelector(".charts"));
  connect();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
