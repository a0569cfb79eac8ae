// The dashboard's script, run by the browser (it is inlined into the page as text, so it is plain
// ES2017 that needs nothing else: no framework, nothing fetched). It derives every figure from
// the run's metrics records (the Trainer's metrics.jsonl plus what runJob adds: run, result) and
// draws the charts as SVG. Live, it appends the records the server streams (/events) and redraws
// at most every quarter second; in report.html the records are embedded and it draws once.
export const CLIENT_SCRIPT = String.raw`
(function () {
  'use strict';
  var records = JSON.parse(document.getElementById('tunekit-records').textContent);
  var live = document.body.getAttribute('data-live') === '1';
  var smoothing = 0.6, pending = false, lastDraw = 0, connected = live;
  var charts = {};

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]; });
  }
  function fmt(v) {
    if (v === undefined || v === null || typeof v !== 'number' || !isFinite(v)) return '–';
    var a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(2) : String(+v.toPrecision(4));
  }
  function dur(s) {
    if (typeof s !== 'number' || !isFinite(s)) return '–';
    s = Math.round(s);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return h ? h + 'h' + String(m).padStart(2, '0') + 'm' : m ? m + 'm' + String(r).padStart(2, '0') + 's' : r + 's';
  }
  function rows(pairs) {
    return pairs.filter(function (p) { return p[1] !== undefined && p[1] !== null && p[1] !== ''; })
      .map(function (p) { return '<tr><th>' + esc(p[0]) + '</th><td>' + esc(p[1]) + '</td></tr>'; }).join('');
  }

  // What the records say: the last record of a step or an evaluation wins (a resumed run redoes
  // the steps after its checkpoint; the Trainer drops their first records, older logs kept them).
  function derive() {
    var steps = new Map(), evals = new Map(), events = [], run = null, segments = 0, stop = null, result = null, test = null;
    records.forEach(function (r) {
      if (r.type === 'step') steps.set(r.step, r);
      else if (r.type === 'eval') evals.set(r.split + '@' + r.step, r);
      else if (r.type === 'run') { run = r; segments++; }
      else if (r.type === 'stop') stop = r;
      else if (r.type === 'result') result = r;
      else if (r.type === 'test') test = r;
      if (r.type === 'eval' || r.type === 'checkpoint' || r.type === 'resume' || r.type === 'stop' || r.type === 'test' || r.type === 'run') events.push(r);
    });
    var train = Array.from(steps.values()).sort(function (a, b) { return a.step - b.step; });
    var ev = Array.from(evals.values()).sort(function (a, b) { return a.step - b.step; });
    var last = train[train.length - 1] || null;
    // Finished when the newest stop comes after the newest run record (a resumed run starts again).
    var finished = stop !== null && records.lastIndexOf(stop) > records.lastIndexOf(run);
    return { train: train, evals: ev, events: events, run: run, segments: segments, stop: finished ? stop : null, result: result, test: test, last: last };
  }

  function smooth(points) {
    var out = [], s = null, n = 0;
    points.forEach(function (p) {
      // TensorBoard's debiased exponential moving average.
      s = s === null ? 0 : s;
      s = s * smoothing + (1 - smoothing) * p[1];
      n++;
      out.push([p[0], s / (1 - Math.pow(smoothing, n))]);
    });
    return out;
  }

  function ticks(lo, hi, count) {
    if (hi <= lo) return [lo];
    var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / count)));
    var err = (hi - lo) / count / step;
    step *= err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1;
    var out = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(+t.toPrecision(12));
    return out;
  }

  var W = 680, H = 230, PAD = { l: 64, r: 18, t: 22, b: 36 };
  // One chart: series of [step, value] points, epoch and resume marks; its data is kept for hovers.
  function chart(id, title, unit, series, marks) {
    var all = [];
    series.forEach(function (s) { s.points.forEach(function (p) { if (isFinite(p[1])) all.push(p); }); });
    var legend = series.map(function (s) {
      return '<span class="key"><i style="background:' + s.color + (s.faint ? ';opacity:.35' : '') + '"></i>' + esc(s.name) + '</span>';
    }).join('');
    var head = '<div class="chart-head"><h2>' + esc(title) + '</h2><div class="legend">' + legend + '</div></div>';
    if (all.length === 0) return '<section class="chart" id="chart-' + id + '">' + head + '<p class="empty">No data yet.</p></section>';
    var x0 = Math.min.apply(null, all.map(function (p) { return p[0]; })), x1 = Math.max.apply(null, all.map(function (p) { return p[0]; }));
    var y0 = Math.min.apply(null, all.map(function (p) { return p[1]; })), y1 = Math.max.apply(null, all.map(function (p) { return p[1]; }));
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
    var span = y1 - y0; y0 -= span * 0.05; y1 += span * 0.05;
    var sx = function (x) { return PAD.l + (x - x0) / (x1 - x0) * (W - PAD.l - PAD.r); };
    var sy = function (y) { return H - PAD.b - (y - y0) / (y1 - y0) * (H - PAD.t - PAD.b); };
    var g = '';
    ticks(y0, y1, 4).forEach(function (t) {
      g += '<line class="grid" x1="' + PAD.l + '" x2="' + (W - PAD.r) + '" y1="' + sy(t).toFixed(1) + '" y2="' + sy(t).toFixed(1) + '"/>' +
        '<text class="tick" x="' + (PAD.l - 6) + '" y="' + (sy(t) + 4).toFixed(1) + '" text-anchor="end">' + fmt(t) + '</text>';
    });
    ticks(x0, x1, 6).filter(function (t) { return Math.abs(t - Math.round(t)) < 1e-9; }).forEach(function (t) {
      g += '<text class="tick" x="' + sx(t).toFixed(1) + '" y="' + (H - PAD.b + 14) + '" text-anchor="middle">' + t + '</text>';
    });
    g += '<line class="axis" x1="' + PAD.l + '" x2="' + (W - PAD.r) + '" y1="' + (H - PAD.b) + '" y2="' + (H - PAD.b) + '"/>';
    g += '<text class="label" x="' + ((PAD.l + W - PAD.r) / 2) + '" y="' + (H - 4) + '" text-anchor="middle">step</text>';
    if (unit) g += '<text class="label" x="12" y="' + ((PAD.t + H - PAD.b) / 2) + '" text-anchor="middle" transform="rotate(-90 12 ' + ((PAD.t + H - PAD.b) / 2) + ')">' + esc(unit) + '</text>';
    marks.forEach(function (m) {
      if (m.step < x0 || m.step > x1) return;
      g += '<line class="mark ' + m.kind + '" x1="' + sx(m.step).toFixed(1) + '" x2="' + sx(m.step).toFixed(1) + '" y1="' + PAD.t + '" y2="' + (H - PAD.b) + '"/>' +
        '<text class="mark-label" x="' + (sx(m.step) + 3).toFixed(1) + '" y="' + (PAD.t - 6) + '">' + esc(m.label) + '</text>';
    });
    series.forEach(function (s) {
      var pts = s.points.filter(function (p) { return isFinite(p[1]); });
      if (!pts.length) return;
      var d = pts.map(function (p, i) { return (i ? 'L' : 'M') + sx(p[0]).toFixed(1) + ',' + sy(p[1]).toFixed(1); }).join('');
      g += '<path d="' + d + '" fill="none" stroke="' + s.color + '" stroke-width="' + (s.faint ? 1 : 1.8) + '"' + (s.faint ? ' opacity="0.35"' : '') + '/>';
      if (s.dots) pts.forEach(function (p) { g += '<circle cx="' + sx(p[0]).toFixed(1) + '" cy="' + sy(p[1]).toFixed(1) + '" r="3.2" fill="' + s.color + '"/>'; });
    });
    g += '<line class="hover" x1="0" x2="0" y1="' + PAD.t + '" y2="' + (H - PAD.b) + '" visibility="hidden"/>';
    charts[id] = { series: series, x0: x0, x1: x1, sx: sx };
    return '<section class="chart" id="chart-' + id + '">' + head +
      '<div class="plot"><svg data-chart="' + id + '" viewBox="0 0 ' + W + ' ' + H + '" width="' + W + '" height="' + H + '" xmlns="http://www.w3.org/2000/svg">' + g + '</svg>' +
      '<div class="tip" hidden></div></div></section>';
  }

  // Hover: the values of every series at the step nearest the pointer.
  function hover(e) {
    var svg = e.target.closest && e.target.closest('svg[data-chart]');
    document.querySelectorAll('.tip').forEach(function (t) { if (!svg || t.parentNode !== svg.parentNode) t.hidden = true; });
    if (!svg) return;
    var c = charts[svg.getAttribute('data-chart')];
    if (!c) return;
    var box = svg.getBoundingClientRect(), px = (e.clientX - box.left) * W / box.width;
    var x = c.x0 + (px - PAD.l) / (W - PAD.l - PAD.r) * (c.x1 - c.x0);
    var best = null;
    c.series.forEach(function (s) { s.points.forEach(function (p) { if (best === null || Math.abs(p[0] - x) < Math.abs(best - x)) best = p[0]; }); });
    if (best === null) return;
    var lines = ['<b>step ' + best + '</b>'];
    c.series.forEach(function (s) {
      var p = s.points.filter(function (q) { return q[0] === best; })[0];
      if (p) lines.push('<span style="color:' + s.color + '">' + esc(s.name) + '</span> ' + fmt(p[1]));
    });
    var guide = svg.querySelector('line.hover');
    guide.setAttribute('x1', c.sx(best)); guide.setAttribute('x2', c.sx(best)); guide.setAttribute('visibility', 'visible');
    var tip = svg.parentNode.querySelector('.tip');
    tip.innerHTML = lines.join('<br>');
    tip.hidden = false;
    tip.style.left = Math.min(box.width - 170, (c.sx(best) * box.width / W) + 12) + 'px';
    tip.style.top = '8px';
  }

  function render() {
    lastDraw = Date.now();
    var d = derive(), last = d.last, run = d.run || {}, cfg = run.config || {}, data = run.data || {};
    var total = last ? last.totalSteps : cfg.totalSteps;
    var state = d.stop ? 'stopped (' + d.stop.reason + ')' : live ? (connected ? 'running' : 'running (connection lost, retrying)') : 'not finished';
    document.getElementById('status').innerHTML =
      '<span class="state">' + esc(state) + '</span> · step <b id="step">' + (last ? last.step : 0) + '</b>' + (total ? ' / ' + total : '') +
      (last ? ' · epoch ' + (last.epoch + 1) + ' · ' + dur(last.elapsedSeconds) + ' training' + (d.stop ? '' : ' · ETA ' + dur(last.etaSeconds)) : '') +
      (d.segments > 1 ? ' · ' + d.segments + ' segments (resumed ' + (d.segments - 1) + '×)' : '');
    var before = d.evals.filter(function (e) { return e.step === 0 && e.split === 'validation'; })[0];
    var vals = d.evals.filter(function (e) { return e.split === 'validation' && e.step > 0; });
    var best = d.result && d.result.best ? d.result.best : null;
    var tps = d.train.map(function (r) { return r.tokensPerSecond; }).filter(isFinite);
    var medianTps = tps.length ? tps.slice().sort(function (a, b) { return a - b; })[Math.floor(tps.length / 2)] : undefined;
    var rss = d.train.map(function (r) { return r.rssBytes; }).filter(isFinite);
    document.getElementById('summary').innerHTML = rows([
      ['steps', last ? last.step + (total ? ' of ' + total : '') : 0],
      ['training time', last ? dur(d.result ? d.result.seconds : last.elapsedSeconds) + (d.segments > 1 ? ' over ' + d.segments + ' segments' : '') : undefined],
      ['stop reason', d.stop ? d.stop.reason : undefined],
      ['validation loss before training', before ? fmt(before.loss) + ' (perplexity ' + fmt(before.perplexity) + ')' : undefined],
      ['latest validation loss', vals.length ? fmt(vals[vals.length - 1].loss) + ' at step ' + vals[vals.length - 1].step : undefined],
      ['best validation', best ? fmt(best.value) + ' at step ' + best.step : undefined],
      ['test loss / perplexity', d.test ? fmt(d.test.loss) + ' / ' + fmt(d.test.perplexity) : undefined],
      ['tokens/s (median)', medianTps !== undefined ? fmt(Math.round(medianTps)) : undefined],
      ['peak memory (RSS)', rss.length ? fmt(Math.max.apply(null, rss) / 1048576) + ' MiB' : undefined],
    ].concat(d.result ? Object.keys(d.result.evalSets || {}).map(function (k) { return [k + ' loss (end)', fmt(d.result.evalSets[k].loss)]; }) : [])
     .concat(d.result ? Object.keys(d.result.exports || {}).map(function (k) { return [k, d.result.exports[k]]; }) : []));
    document.getElementById('config').innerHTML = rows([
      ['model', run.model], ['method', run.method], ['trainable parameters', run.trainableParameters !== undefined ? Number(run.trainableParameters).toLocaleString('en-US') : undefined],
      ['learning rate', cfg.lr !== undefined ? fmt(cfg.lr) + ' (' + cfg.schedule + (cfg.warmupSteps ? ', ' + cfg.warmupSteps + ' warmup steps' : '') + ')' : undefined],
      ['batch', cfg.batchSize !== undefined ? cfg.batchSize + ' rows' + (cfg.ranks > 1 ? ' × ' + cfg.ranks + ' ranks' : '') + (cfg.gradAccumulation > 1 ? ' × ' + cfg.gradAccumulation + ' accumulated' : '') : undefined],
      ['epochs', cfg.maxSteps ? cfg.epochs + ' (at most ' + cfg.maxSteps + ' steps)' : cfg.epochs],
      ['max length', cfg.maxLength !== undefined ? cfg.maxLength + ' tokens' + (cfg.packing ? ', packed' : '') : undefined],
      ['precision', cfg.bf16 === undefined ? undefined : cfg.bf16 ? 'bf16 products, fp32 accumulation' : 'fp32'],
      ['weight decay / clipping', cfg.weightDecay !== undefined ? fmt(cfg.weightDecay) + ' / ' + (cfg.maxGradNorm ? fmt(cfg.maxGradNorm) : 'off') : undefined],
      ['LoRA', cfg.lora ? 'r ' + cfg.lora.r + ', alpha ' + cfg.lora.alpha + (cfg.lora.rslora ? ' (rsLoRA)' : '') + ', dropout ' + cfg.lora.dropout + ', ' + (cfg.lora.targets || []).join(' ') : undefined],
      ['early stopping', cfg.earlyStopping ? 'patience ' + cfg.earlyStopping.patience + ' on ' + (cfg.earlyStopping.metric || 'loss') : undefined],
    ]);
    var skipped = data.skipped ? Object.keys(data.skipped).filter(function (k) { return data.skipped[k]; }).map(function (k) { return k + ' ' + data.skipped[k]; }).join(', ') : '';
    document.getElementById('data').innerHTML = rows([
      ['source', data.path], ['format', data.format], ['records', data.records],
      ['examples', data.train !== undefined ? data.train + ' train / ' + data.validation + ' validation / ' + data.test + ' test' : undefined],
      ['skipped', skipped || (data.records !== undefined ? 'none' : undefined)],
    ]);
    var marks = [];
    for (var i = 1; i < d.train.length; i++) if (d.train[i].epoch !== d.train[i - 1].epoch) marks.push({ step: d.train[i - 1].step + 0.5, kind: 'epoch', label: 'epoch ' + (d.train[i].epoch + 1) });
    d.events.forEach(function (e) { if (e.type === 'resume') marks.push({ step: e.step, kind: 'resume', label: 'resumed' }); });
    if (d.stop && d.stop.reason === 'early-stopping') marks.push({ step: d.stop.step, kind: 'stop', label: 'early stop' });
    var trainLoss = d.train.map(function (r) { return [r.step, r.loss]; });
    var splits = [];
    d.evals.forEach(function (e) { if (splits.indexOf(e.split) < 0) splits.push(e.split); });
    var colors = ['#d62728', '#2ca02c', '#9467bd', '#8c564b', '#e377c2'];
    var lossSeries = [
      { name: 'training', color: '#1f77b4', points: trainLoss, faint: true },
      { name: 'training (smoothed ' + smoothing + ')', color: '#1f77b4', points: smooth(trainLoss) },
    ].concat(splits.map(function (s, i) {
      return { name: s, color: colors[i % colors.length], dots: true, points: d.evals.filter(function (e) { return e.split === s; }).map(function (e) { return [e.step, e.loss]; }) };
    }));
    var pick = function (k, scale) { return d.train.map(function (r) { return [r.step, typeof r[k] === 'number' ? r[k] / (scale || 1) : NaN]; }); };
    document.getElementById('charts').innerHTML =
      chart('loss', 'Loss', 'loss', lossSeries, marks) +
      chart('lr', 'Learning rate', 'lr', [{ name: 'lr', color: '#ff7f0e', points: pick('lr') }], marks) +
      chart('gradnorm', 'Gradient norm (before clipping)', 'norm', [{ name: 'grad norm', color: '#17becf', points: pick('gradNorm') }], marks) +
      chart('throughput', 'Throughput', 'tokens/s', [{ name: 'tokens/s', color: '#2ca02c', points: pick('tokensPerSecond') }], marks) +
      chart('memory', 'Memory (resident)', 'MiB', [{ name: 'RSS', color: '#8c564b', points: pick('rssBytes', 1048576) }], marks);
    var describe = function (e) {
      if (e.type === 'eval') return e.split + ': loss ' + fmt(e.loss) + ', perplexity ' + fmt(e.perplexity) + (e.accuracy !== undefined ? ', accuracy ' + fmt(e.accuracy) : '');
      if (e.type === 'checkpoint') return 'checkpoint ' + e.dir;
      if (e.type === 'resume') return 'resumed from ' + e.dir + ' (segment ' + e.segment + ')';
      if (e.type === 'stop') return 'stopped: ' + e.reason;
      if (e.type === 'test') return 'test: loss ' + fmt(e.loss) + ', perplexity ' + fmt(e.perplexity);
      if (e.type === 'run') return (e.resumed ? 'resumed run started' : 'started') + (e.startedAt ? ' ' + e.startedAt : '');
      return e.type;
    };
    document.getElementById('events').innerHTML = d.events.slice(-300).reverse().map(function (e) {
      return '<tr class="' + e.type + '"><td>' + (e.step !== undefined && e.step !== null ? e.step : '') + '</td><td>' + esc(e.type) + '</td><td>' + esc(describe(e)) + '</td></tr>';
    }).join('');
  }

  function schedule() {
    if (pending) return;
    pending = true;
    setTimeout(function () { pending = false; requestAnimationFrame(render); }, Math.max(0, 250 - (Date.now() - lastDraw)));
  }

  var slider = document.getElementById('smoothing');
  slider.addEventListener('input', function () { smoothing = +slider.value; document.getElementById('smoothing-value').textContent = slider.value; schedule(); });
  document.getElementById('charts').addEventListener('mousemove', hover);
  document.getElementById('charts').addEventListener('mouseleave', function () { document.querySelectorAll('.tip').forEach(function (t) { t.hidden = true; }); });
  render();
  if (live && window.EventSource) {
    var source = new EventSource('events?from=' + records.length);
    source.addEventListener('record', function (m) { records.push(JSON.parse(m.data)); connected = true; schedule(); });
    source.addEventListener('reset', function (m) { records = JSON.parse(m.data); connected = true; schedule(); });
    source.onerror = function () { connected = false; schedule(); };
    source.onopen = function () { connected = true; schedule(); };
  }
})();
`;
