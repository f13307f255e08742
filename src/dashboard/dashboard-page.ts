/**
 * The dashboard page, its script and its style: served from memory by DashboardController, with uPlot
 * (from node_modules) as the only library. No resource from another host, no inline script (the
 * service's CSP allows scripts from 'self' only). Its URLs are relative to the page (/dashboard), so
 * that it also works behind a proxy that serves the service under a path prefix.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>places-cache dashboard</title>
<link rel="stylesheet" href="dashboard/uplot.min.css">
<link rel="stylesheet" href="dashboard/dashboard.css">
<script src="dashboard/uplot.min.js" defer></script>
<script src="dashboard/dashboard.js" defer></script>
</head>
<body>
<header><h1>places-cache</h1><span id="status">loading…</span></header>
<section class="tiles">
  <div class="tile"><span class="label">requests/s</span><span class="value" id="tile-requests">–</span></div>
  <div class="tile"><span class="label">hit ratio</span><span class="value" id="tile-hit-ratio">–</span></div>
  <div class="tile"><span class="label">upstream/s (budget)</span><span class="value" id="tile-upstream">–</span></div>
  <div class="tile"><span class="label">pacing queue</span><span class="value" id="tile-queue">–</span></div>
  <div class="tile"><span class="label">hit p50 / p99</span><span class="value" id="tile-hit-latency">–</span></div>
  <div class="tile"><span class="label">miss p50 / p99</span><span class="value" id="tile-miss-latency">–</span></div>
  <div class="tile"><span class="label">Redis</span><span class="value" id="tile-redis">–</span></div>
  <div class="tile"><span class="label">L1 entries</span><span class="value" id="tile-l1-entries">–</span></div>
  <div class="tile"><span class="label">L1 bytes</span><span class="value" id="tile-l1-bytes">–</span></div>
</section>
<section class="charts">
  <div class="chart" id="chart-requests"></div>
  <div class="chart" id="chart-ratio"></div>
  <div class="chart" id="chart-upstream"></div>
  <div class="chart" id="chart-queue"></div>
  <div class="chart" id="chart-latency"></div>
  <div class="chart" id="chart-l1"></div>
</section>
<footer>This instance only; refreshed every few seconds. Fleet-wide views: deploy/grafana/places-cache.json.</footer>
</body>
</html>
`;

export const DASHBOARD_CSS = `
body { font-family: system-ui, sans-serif; margin: 1rem 1.5rem; color: #222; background: #fafafa; }
header { display: flex; align-items: baseline; gap: 1rem; }
h1 { font-size: 1.4rem; margin: 0 0 .5rem; }
#status { color: #666; font-size: .9rem; }
#status.error { color: #b00020; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(10rem, 1fr)); gap: .6rem; margin-bottom: 1rem; }
.tile { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .5rem .7rem; display: flex; flex-direction: column; }
.tile .label { font-size: .75rem; color: #666; text-transform: uppercase; letter-spacing: .03em; }
.tile .value { font-size: 1.3rem; font-variant-numeric: tabular-nums; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 1rem; }
.chart { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .4rem; min-height: 260px; }
footer { margin-top: 1rem; color: #888; font-size: .8rem; }
`;

export const DASHBOARD_JS = `'use strict';
(function () {
  var COLORS = { hit: '#2e7d32', miss: '#1565c0', stale: '#ef6c00', error: '#c62828', budget: '#888', other: '#6a1b9a' };
  var charts = {};
  var sampleSeconds = 2;

  function el(id) { return document.getElementById(id); }
  function num(v, digits) { return v === null || v === undefined ? '–' : Number(v).toFixed(digits); }
  function bytes(n) {
    var units = ['B', 'KiB', 'MiB', 'GiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return n.toFixed(i === 0 ? 0 : 1) + ' ' + units[i];
  }
  function series(label, color, extra) {
    var s = { label: label, stroke: color, width: 2, spanGaps: false };
    for (var k in extra || {}) s[k] = extra[k];
    return s;
  }
  function chart(id, title, list, yLabel) {
    var box = el(id);
    var opts = {
      title: title,
      width: Math.max(320, box.clientWidth - 10),
      height: 220,
      series: [{}].concat(list),
      axes: [{}, { label: yLabel, size: 60 }],
      scales: { x: { time: true } }
    };
    var data = [[]];
    for (var i = 0; i < list.length; i++) data.push([]);
    charts[id] = { plot: new uPlot(opts, data, box), keys: list.map(function (s) { return s.key; }) };
  }
  function build() {
    chart('chart-requests', 'Requests/s by outcome', [
      series('hit', COLORS.hit, { key: 'hit' }), series('miss', COLORS.miss, { key: 'miss' }),
      series('stale', COLORS.stale, { key: 'stale' }), series('error (5xx)', COLORS.error, { key: 'error' })
    ], 'req/s');
    chart('chart-ratio', 'Hit ratio %', [series('hit ratio', COLORS.hit, { key: 'hitRatio' })], '%');
    chart('chart-upstream', 'Upstream requests/s against the budget', [
      series('upstream', COLORS.miss, { key: 'upstream' }), series('upstream errors', COLORS.error, { key: 'upstreamErrors' }),
      series('budget (NOMINATIM_MAX_RPS)', COLORS.budget, { key: 'budget', dash: [6, 4] })
    ], 'req/s');
    chart('chart-queue', 'Pacing queue (misses waiting for an upstream slot)', [series('waiting', COLORS.other, { key: 'queue' })], 'misses');
    chart('chart-latency', 'Latency p50 / p99, ms', [
      series('hit p50', COLORS.hit, { key: 'hitP50' }), series('hit p99', COLORS.hit, { key: 'hitP99', dash: [6, 4] }),
      series('miss p50', COLORS.miss, { key: 'missP50' }), series('miss p99', COLORS.miss, { key: 'missP99', dash: [6, 4] })
    ], 'ms');
    chart('chart-l1', 'L1 entries', [series('entries', COLORS.other, { key: 'l1Entries' })], 'entries');
  }
  function draw(points) {
    for (var id in charts) {
      var c = charts[id];
      var data = [points.map(function (p) { return p.t; })];
      c.keys.forEach(function (k) { data.push(points.map(function (p) { return p[k]; })); });
      c.plot.setData(data);
    }
  }
  function tiles(d) {
    var p = d.points[d.points.length - 1];
    el('tile-redis').textContent = d.redis;
    if (!p) return;
    el('tile-requests').textContent = num(p.hit + p.miss + p.stale + p.error, 2);
    el('tile-hit-ratio').textContent = p.hitRatio === null ? '–' : num(p.hitRatio, 1) + ' %';
    el('tile-upstream').textContent = num(p.upstream, 2) + ' (' + num(p.budget, 2) + ')';
    el('tile-queue').textContent = String(p.queue);
    el('tile-hit-latency').textContent = num(p.hitP50, 2) + ' / ' + num(p.hitP99, 2) + ' ms';
    el('tile-miss-latency').textContent = num(p.missP50, 1) + ' / ' + num(p.missP99, 1) + ' ms';
    el('tile-l1-entries').textContent = String(p.l1Entries);
    el('tile-l1-bytes').textContent = bytes(p.l1Bytes);
  }
  function refresh() {
    fetch('dashboard/data', { cache: 'no-store', credentials: 'same-origin' })
      .then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(function (d) {
        sampleSeconds = d.sampleSeconds || sampleSeconds;
        draw(d.points);
        tiles(d);
        var s = el('status');
        s.className = '';
        s.textContent = 'updated ' + new Date().toLocaleTimeString() + ' · ' + d.points.length + ' points';
      })
      .catch(function (e) {
        var s = el('status');
        s.className = 'error';
        s.textContent = 'no data: ' + e.message;
      })
      .then(function () { setTimeout(refresh, sampleSeconds * 1000); });
  }
  build();
  refresh();
})();
`;
