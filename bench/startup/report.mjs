// Turns a startup-benchmark run directory (runs.jsonl + meta.json) into summary.json, results.md
// and chart.svg (vega-lite rendered to SVG in node). Usage: node report.mjs DIR
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile } from 'vega-lite';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node report.mjs RESULTS_DIR');
  process.exit(2);
}
const runs = readFileSync(join(dir, 'runs.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l));
let meta = {};
try {
  meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
} catch {
  // a run still in progress has no meta.json yet; report what is there
}

const MODE_ORDER = ['full', 'lazy', 'lazy-nobg', 'lazy-prefetch', 'noindex', 'noindex-ctr'];
/** An image without an index, pulled by the daemon: not slower than a full pull shaped, 1.25x faster unshaped. */
const NOINDEX_READY_TARGET = { shaped: 1, unshaped: 0.8 };
const WORKLOAD_ORDER = ['python', 'node', 'large', 'small'];
// Targets from the issue: ready time as a fraction of the full pull's, bytes before ready as a
// fraction of the image (for the workloads the target names).
const READY_TARGET = { python: 0.3, node: 0.3, large: 0.3, small: 1.1 };
const BYTES_TARGET = { python: 0.2, large: 0.2 };

const quantile = (sorted, q) => {
  if (sorted.length === 0) return null;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
};
/** Median and spread of one field over the successful runs. */
const stats = (rows, field) => {
  const v = rows
    .map((r) => r[field])
    .filter((x) => typeof x === 'number')
    .sort((a, b) => a - b);
  if (v.length === 0) return null;
  return {
    median: quantile(v, 0.5),
    min: v[0],
    max: v.at(-1),
    p25: quantile(v, 0.25),
    p75: quantile(v, 0.75),
  };
};

const FIELDS = [
  'pull_s',
  'ready_s',
  'exit_s',
  'registry_bytes_ready',
  'registry_bytes_exit',
  'daemon_bytes_ready',
  'daemon_bytes_exit',
  'daemon_peak_rss_bytes',
];
const groups = new Map();
for (const r of runs) {
  const key = `${r.profile}|${r.workload}|${r.mode}`;
  if (!groups.has(key)) groups.set(key, []);
  groups.get(key).push(r);
}
const order = (a, b) =>
  a.profile.localeCompare(b.profile) || // shaped before unshaped
  WORKLOAD_ORDER.indexOf(a.workload) - WORKLOAD_ORDER.indexOf(b.workload) ||
  MODE_ORDER.indexOf(a.mode) - MODE_ORDER.indexOf(b.mode);
const summary = [...groups.values()]
  .map((rows) => {
    const ok = rows.filter((r) => r.ok);
    const { profile, rate, rtt_ms, workload, mode, image_bytes } = rows[0];
    const s = { profile, rate, rtt_ms, workload, mode, image_bytes, runs: rows.length, ok: ok.length };
    for (const f of FIELDS) s[f] = stats(ok, f);
    s.errors = rows.filter((r) => !r.ok).map((r) => r.error);
    return s;
  })
  .sort(order);

// Each lazy mode against the full pull of the same profile and workload.
const comparisons = [];
for (const s of summary) {
  if (s.mode === 'full') continue;
  const full = summary.find((f) => f.mode === 'full' && f.profile === s.profile && f.workload === s.workload);
  if (!full?.ready_s || !s.ready_s) continue;
  const readyRatio = s.ready_s.median / full.ready_s.median;
  const bytesFraction = s.registry_bytes_ready ? s.registry_bytes_ready.median / s.image_bytes : null;
  const noindex = s.mode.startsWith('noindex');
  const readyTarget = noindex
    ? NOINDEX_READY_TARGET[s.profile]
    : s.profile === 'shaped'
      ? READY_TARGET[s.workload]
      : undefined;
  const bytesTarget = s.profile === 'shaped' && !noindex ? BYTES_TARGET[s.workload] : undefined;
  comparisons.push({
    profile: s.profile,
    workload: s.workload,
    mode: s.mode,
    ready_ratio: readyRatio,
    ready_target: readyTarget ?? null,
    ready_met: readyTarget === undefined ? null : readyRatio <= readyTarget,
    bytes_before_ready_fraction: bytesFraction,
    bytes_target: bytesTarget ?? null,
    bytes_met: bytesTarget === undefined || bytesFraction === null ? null : bytesFraction <= bytesTarget,
  });
}

writeFileSync(join(dir, 'summary.json'), `${JSON.stringify({ meta, summary, comparisons }, null, 2)}\n`);

// ---- markdown ----
const sec = (st) => (st ? `${st.median.toFixed(2)} (${st.min.toFixed(2)}–${st.max.toFixed(2)})` : '–');
const mb = (st) => (st ? (st.median / 1e6).toFixed(1) : '–');
const mib = (st) => (st ? (st.median / 1048576).toFixed(0) : '–');
const pct = (x) => (x === null || x === undefined ? '–' : `${(100 * x).toFixed(0)}%`);
const md = [];
md.push('# Startup benchmark results', '');
if (meta.when) {
  md.push(
    `${meta.when}, commit ${meta.commit}, ${meta.host}; ${meta.runs} runs per mode, modes alternating; ` +
      `shaped profile: ${meta.rate}, ${meta.rtt_ms} ms RTT; zTOC span size: ${meta.span_size ?? 'default (4 MiB)'}.`,
    '',
  );
}
md.push(
  'Times are seconds from the start of the pull (median, min–max). MB before ready / at exit: bytes the ' +
    'registry sent through the latency proxy (manifests, indexes, zTOCs and layer ranges included); ' +
    "daemon MB: `soci_bytes_fetched_total` (span range requests only). RSS: the daemon's VmHWM at workload exit.",
  '',
);
for (const profile of [...new Set(summary.map((s) => s.profile))]) {
  const first = summary.find((s) => s.profile === profile);
  md.push(
    `## ${profile} (${first.rate === 'none' ? 'no bandwidth limit' : first.rate}, ${first.rtt_ms} ms RTT)`,
    '',
  );
  md.push(
    '| workload | image MB | mode | ok/runs | pull/prepare s | ready s | exit s | MB before ready | daemon MB before ready | MB at exit | daemon peak RSS MiB |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const s of summary.filter((x) => x.profile === profile)) {
    md.push(
      `| ${s.workload} | ${(s.image_bytes / 1e6).toFixed(0)} | ${s.mode} | ${s.ok}/${s.runs} | ${sec(s.pull_s)} | ` +
        `${sec(s.ready_s)} | ${sec(s.exit_s)} | ${mb(s.registry_bytes_ready)} | ` +
        `${s.mode === 'full' ? '–' : mb(s.daemon_bytes_ready)} | ${mb(s.registry_bytes_exit)} | ${mib(s.daemon_peak_rss_bytes)} |`,
    );
  }
  md.push('');
}
if (comparisons.length > 0) {
  md.push('## Against the full pull', '');
  md.push(
    '| profile | workload | mode | ready / full | target | met | bytes before ready / image | target | met |',
    '|---|---|---|---:|---:|---|---:|---:|---|',
  );
  const yn = (x) => (x === null ? '–' : x ? 'yes' : '**no**');
  for (const c of comparisons) {
    md.push(
      `| ${c.profile} | ${c.workload} | ${c.mode} | ${c.ready_ratio.toFixed(2)}x | ` +
        `${c.ready_target === null ? '–' : `≤ ${c.ready_target}x`} | ${yn(c.ready_met)} | ` +
        `${pct(c.bytes_before_ready_fraction)} | ${c.bytes_target === null ? '–' : `≤ ${pct(c.bytes_target)}`} | ${yn(c.bytes_met)} |`,
    );
  }
  md.push('');
}
const failures = summary.filter((s) => s.errors.length > 0);
if (failures.length > 0) {
  md.push('## Failed runs', '');
  for (const s of failures) for (const e of s.errors) md.push(`- ${s.profile} ${s.workload} ${s.mode}: ${e}`);
  md.push('');
}
if (meta.notes?.length) {
  md.push('## Notes', '', ...meta.notes.map((n) => `- ${n}`), '');
}
writeFileSync(join(dir, 'results.md'), `${md.join('\n')}\n`);

// ---- chart: median time to ready per mode (bars), min–max (rules), one panel per workload ----
const points = summary
  .filter((s) => s.ready_s)
  .map((s) => ({
    profile: s.profile,
    workload: s.workload,
    mode: s.mode,
    ready: s.ready_s.median,
    min: s.ready_s.min,
    max: s.ready_s.max,
    pull: s.pull_s?.median ?? 0,
  }));
const spec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  title: {
    text: 'Time to ready, seconds (bar: median; whisker: min–max)',
    subtitle:
      `shaped: ${meta.rate ?? '?'}, ${meta.rtt_ms ?? '?'} ms RTT` +
      `${meta.unshaped ? '; unshaped: no limit, no added RTT' : ''}` +
      `${meta.span_size ? `; zTOC span size ${meta.span_size}` : ''}`,
  },
  background: 'white',
  data: { values: points },
  facet: {
    column: { field: 'workload', type: 'nominal', sort: WORKLOAD_ORDER, title: null },
    row: { field: 'profile', type: 'nominal', sort: 'ascending', title: null },
  },
  resolve: { scale: { y: 'independent' } },
  spec: {
    width: 130,
    height: 180,
    layer: [
      {
        mark: { type: 'bar' },
        encoding: {
          x: { field: 'mode', type: 'nominal', sort: MODE_ORDER, title: null, axis: { labelAngle: -30 } },
          y: { field: 'ready', type: 'quantitative', title: 'seconds' },
          color: { field: 'mode', type: 'nominal', sort: MODE_ORDER, legend: null },
        },
      },
      {
        mark: { type: 'rule' },
        encoding: {
          x: { field: 'mode', type: 'nominal', sort: MODE_ORDER },
          y: { field: 'min', type: 'quantitative' },
          y2: { field: 'max' },
        },
      },
      {
        mark: { type: 'text', dy: -6, fontSize: 9 },
        encoding: {
          x: { field: 'mode', type: 'nominal', sort: MODE_ORDER },
          y: { field: 'max', type: 'quantitative' },
          text: { field: 'ready', type: 'quantitative', format: '.1f' },
        },
      },
    ],
  },
};
const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
writeFileSync(join(dir, 'chart.svg'), await view.toSVG());
console.log(readFileSync(join(dir, 'results.md'), 'utf8'));
