/**
 * Turns bench/results/*.json into what docs/performance.md shows: an SVG of
 * latency and CPU per delivered GB against viewers (drawn here, no plotting
 * dependency) and markdown tables (bench/results/summary.md).
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readResult } from './lib/results.js';
import type { FanoutResults } from './scenarios/fanout.js';
import type { FirstFrameResult } from './scenarios/first-frame.js';
import type { IdleResult } from './scenarios/idle.js';
import type { SlowResult } from './scenarios/slow.js';
import type { DensityResult } from './scenarios/capture-density.js';
import type { CoalesceResults } from './scenarios/coalesce.js';
import type { SoakResult } from './scenarios/soak.js';
import type { PointResult } from './lib/load-point.js';

const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url));
const COLORS: Record<string, string> = { zmcast: '#1f77b4', naive: '#d62728', socketio: '#2ca02c', nchan: '#9467bd', floor: '#7f7f7f', ref: '#8c564b' };

export function plot(resultsDir: string): string[] {
  const written: string[] = [];
  const fan = readResult<FanoutResults>(resultsDir, 'fanout');
  if (fan) {
    mkdirSync(DOCS, { recursive: true });
    const svg = join(DOCS, 'performance-fanout.svg');
    writeFileSync(svg, fanoutSvg(fan.results.points.filter((p) => p.monitors === 1)));
    written.push(svg);
  }
  const md = join(resultsDir, 'summary.md');
  writeFileSync(md, summary(resultsDir));
  written.push(md);
  return written;
}

interface Series { name: string; color: string; dash?: string; points: [number, number][] }

function fanoutSvg(points: PointResult[]): string {
  const systems = [...new Set(points.map((p) => p.system))];
  // Repeated points (--repeat) are drawn as their mean.
  const by = (s: string, f: (p: PointResult) => number): [number, number][] => {
    const mine = points.filter((p) => p.system === s);
    return [...new Set(mine.map((p) => p.viewers))].sort((a, b) => a - b).map((v) => {
      const at = mine.filter((p) => p.viewers === v);
      return [v, at.reduce((a, p) => a + f(p), 0) / at.length];
    });
  };
  const latency: Series[] = systems.flatMap((s) => [
    { name: `${s} p99`, color: COLORS[s] ?? '#555', points: by(s, (p) => p.normal.latencyMs.p99) },
    { name: `${s} p50`, color: COLORS[s] ?? '#555', dash: '4 3', points: by(s, (p) => p.normal.latencyMs.p50) },
  ]);
  const cpu: Series[] = systems.map((s) => ({ name: s, color: COLORS[s] ?? '#555', points: by(s, (p) => p.edge.cpuSecondsPerGB) }));
  const w = 460, h = 340;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * w + 20}" height="${h + 40}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${w + 10}" y="18" text-anchor="middle" font-size="14" font-weight="bold">One monitor, 25 fps × ${((points[0]?.size ?? 0) / 1000).toFixed(0)} KB, one edge process, 2 cores</text>`,
    `<g transform="translate(0,30)">${panel(latency, w, h, 'capture → viewer latency (ms, log)', 40, 'target p99 40 ms')}</g>`,
    `<g transform="translate(${w + 20},30)">${panel(cpu, w, h, 'edge CPU-seconds per delivered GB (log)', 0.6, 'target 0.6')}</g>`,
    `</svg>`,
    '',
  ].join('\n');
}

function panel(series: Series[], w: number, h: number, title: string, target: number, targetLabel: string): string {
  const all = series.flatMap((s) => s.points).filter(([x, y]) => x > 0 && y > 0 && Number.isFinite(y));
  const ml = 55, mr = 15, mt = 25, mb = 45;
  const xs = all.map(([x]) => x), ys = [...all.map(([, y]) => y), target];
  const lx0 = Math.floor(Math.log10(Math.min(...xs))), lx1 = Math.ceil(Math.log10(Math.max(...xs)));
  const ly0 = Math.floor(Math.log10(Math.min(...ys))), ly1 = Math.ceil(Math.log10(Math.max(...ys)));
  const X = (x: number) => ml + ((Math.log10(x) - lx0) / Math.max(1e-9, lx1 - lx0)) * (w - ml - mr);
  const Y = (y: number) => h - mb - ((Math.log10(y) - ly0) / Math.max(1e-9, ly1 - ly0)) * (h - mt - mb);
  const out: string[] = [`<text x="${w / 2}" y="14" text-anchor="middle" font-weight="bold">${title}</text>`];
  for (let e = lx0; e <= lx1; e++) {
    const x = X(10 ** e);
    out.push(`<line x1="${x}" y1="${mt}" x2="${x}" y2="${h - mb}" stroke="#eee"/>`, `<text x="${x}" y="${h - mb + 16}" text-anchor="middle">${fmt(10 ** e)}</text>`);
  }
  for (let e = ly0; e <= ly1; e++) {
    const y = Y(10 ** e);
    out.push(`<line x1="${ml}" y1="${y}" x2="${w - mr}" y2="${y}" stroke="#eee"/>`, `<text x="${ml - 6}" y="${y + 4}" text-anchor="end">${fmt(10 ** e)}</text>`);
  }
  out.push(`<text x="${(ml + w - mr) / 2}" y="${h - 8}" text-anchor="middle">viewers (log)</text>`);
  out.push(`<rect x="${ml}" y="${mt}" width="${w - ml - mr}" height="${h - mt - mb}" fill="none" stroke="#999"/>`);
  const ty = Y(target);
  out.push(`<line x1="${ml}" y1="${ty}" x2="${w - mr}" y2="${ty}" stroke="#ff7f0e" stroke-dasharray="6 4"/>`, `<text x="${w - mr - 4}" y="${ty - 4}" text-anchor="end" fill="#ff7f0e">${targetLabel}</text>`);
  series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => x > 0 && y > 0 && Number.isFinite(y));
    if (pts.length === 0) return;
    out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} points="${pts.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of pts) out.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3" fill="${s.color}"/>`);
    const ly = mt + 14 + i * 15;
    out.push(`<line x1="${ml + 8}" y1="${ly - 4}" x2="${ml + 28}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`, `<text x="${ml + 32}" y="${ly}">${s.name}</text>`);
  });
  return out.join('\n');
}

const fmt = (v: number) => (v >= 1000 ? `${v / 1000}k` : v >= 1 ? String(v) : v.toPrecision(1));
const n = (v: number | undefined, d = 1) => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d));

function table(head: string[], rows: (string | number)[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function summary(dir: string): string {
  const parts: string[] = [];
  const fan = readResult<FanoutResults>(dir, 'fanout');
  if (fan) {
    parts.push(`### Fan-out (\`${fan.command}\`, ${fan.startedAt}, commit ${fan.commit})\n`);
    parts.push(table(
      ['system', 'monitors × viewers', 'published', 'delivered', 'lost', 'p50 ms', 'p99 ms', 'max ms', 'MB/s', 'edge CPU-s/GB', 'edge µs/msg', 'edge % core', 'edge KB/viewer', 'Redis cmd/s', 'Redis ms/pkt (net)', 'loadgen % core', 'machine busy'],
      fan.results.points.map((p) => [
        `${p.system}${p.run ? ` (run ${p.run})` : ''}`, `${p.monitors} × ${p.viewers / p.monitors}`, p.published, p.normal.delivered, p.normal.lost,
        n(p.normal.latencyMs.p50), n(p.normal.latencyMs.p99), n(p.normal.latencyMs.max, 0), n(p.deliveredMBps, 0),
        n(p.edge.cpuSecondsPerGB, 2), n(p.edge.usPerMessage, 1), n(p.edge.cpuPercent, 0), rssCell(p.viewers, p.edge.rssPerViewerKB),
        n(p.redis.commandsPerSecond, 0), `${n(p.redis.cpuMsPerPacket, 3)} (${n(p.redis.netCpuMsPerPacket, 3)})`,
        n(p.loadgen.cpuPercent, 0), `${n(p.machineBusyPercent, 0)}%`,
      ]),
    ));
    if (fan.results.ratios.length > 0) {
      parts.push('\nzmcast ÷ baseline, same load, same run (below 1 = zmcast spends less):\n');
      parts.push(table(['load', 'baseline', 'edge CPU/GB', 'p99', 'Redis cmd/s', 'Redis CPU/pkt', 'edge RSS/viewer'],
        fan.results.ratios.map((r) => [r.load, r.baseline, n(r.cpuPerGB, 2), n(r.p99, 2), n(r.redisCommandsPerSecond, 2), n(r.redisCpuPerPacket, 2), r.rssPerViewer > 0 ? n(r.rssPerViewer, 2) : '–'])));
    }
  }
  const fe = readResult<FanoutResults>(dir, 'fanout-edges');
  if (fe) {
    parts.push(`\n### Several edge processes (\`${fe.command}\`, ${fe.startedAt}, commit ${fe.commit})\n`);
    parts.push(edgesTable(fe.results.points));
  }
  const ff = readResult<FirstFrameResult[]>(dir, 'first-frame');
  if (ff) {
    parts.push(`\n### First decodable frame (\`${ff.command}\`)\n`);
    parts.push(table(['system', 'GOP', 'edge', 'joins', 'p50 ms', 'p90 ms', 'max ms', 'first frame decodable'],
      ff.results.map((r) => [r.system, `${r.gopSeconds} s`, r.edgeState, r.joins - r.failed, n(r.firstKeyframeMs.p50), n(r.firstKeyframeMs.p90), n(r.firstKeyframeMs.max), r.allDecodableAtOnce ? 'always' : 'no'])));
  }
  const cd = readResult<DensityResult>(dir, 'capture-density');
  if (cd?.results.clips) { // results from before the two-bitrate runs have no `clips`: not shown
    const c = cd.results.clips[0];
    parts.push(`\n### Capture density (\`${cd.command}\`, ${cd.startedAt}, commit ${cd.commit}; clips ${c.width}×${c.height} ${c.fps} fps GOP ${c.gop} at ${cd.results.clips.map((x) => x.kbps).join(' and ')} kb/s, MPEG-TS, looped)\n`);
    parts.push(table(['path', 'kb/s', 'monitors', 'packets/s', 'expected', 'dropped', 'process % core', 'monitors per core', 'Redis % core', 'Redis ms/pkt (net of idle)'],
      cd.results.levels.map((l) => [l.path, l.kbps, l.monitors, n(l.packetsPerSecond, 0), l.expectedPerSecond, l.dropped, n(l.cpuPercent, 0), n(l.monitorsPerCore, 0), n(l.redisCpuPercent, 0),
        `${n(l.redisMsPerPacket, 3)} (${n(l.redisNetMsPerPacket, 3)})`])));
  }
  const co = readResult<CoalesceResults>(dir, 'coalesce');
  if (co) {
    parts.push(`\n### Montage sockets (\`${co.command}\`, ${co.startedAt}, commit ${co.commit})\n`);
    parts.push(table(['point', 'viewers × monitors per socket', 'lost', 'out of order', 'p50 ms', 'p99 ms', 'max ms', 'MB/s', 'edge CPU-s/GB', 'edge µs/msg', 'edge % core', 'loadgen % core', 'machine busy'],
      co.results.points.map((p) => [
        `${p.label}${p.run ? ` (run ${p.run})` : ''}`, `${p.viewers} × ${p.monitors}`, p.normal.lost, p.normal.outOfOrder, n(p.normal.latencyMs.p50), n(p.normal.latencyMs.p99),
        n(p.normal.latencyMs.max, 0), n(p.deliveredMBps, 0), n(p.edge.cpuSecondsPerGB, 2), n(p.edge.usPerMessage, 1), n(p.edge.cpuPercent, 0), n(p.loadgen.cpuPercent, 0), `${n(p.machineBusyPercent, 0)}%`,
      ])));
    parts.push('\nwith coalescing ÷ without, same run:\n');
    parts.push(table(['run', 'edge CPU/GB', 'p50', 'p99'], co.results.ratios.map((r) => [r.run, n(r.cpuPerGB, 2), n(r.p50, 2), n(r.p99, 2)])));
  }
  const id = readResult<IdleResult[]>(dir, 'idle');
  if (id) {
    parts.push(`\n### Idle connections (\`${id.command}\`)\n`);
    parts.push(table(['system', 'connections', 'failed', 'connect s', 'edge RSS KB/conn', 'edge heap KB/conn', 'RSS before → after MB'],
      id.results.map((r) => [r.system, r.connections, r.failed, n(r.connectSeconds), n(r.rssPerConnectionKB), n(r.heapPerConnectionKB), `${n(r.rssIdleMB, 0)} → ${n(r.rssLoadedMB, 0)}`])));
  }
  const sl = readResult<SlowResult[]>(dir, 'slow');
  if (sl) {
    parts.push(`\n### Slow viewers (\`${sl.command}\`)\n`);
    parts.push(table(['system', 'viewers', 'run', 'fast viewers lost', 'fast p50 ms', 'fast p99 ms', 'fast max ms', 'slow: delivered/expected', 'slow closed by edge', 'packets skipped for slow', 'edge % core'],
      sl.results.flatMap((r) => [r.control, r.withSlow].map((p) => [
        r.system, p.viewers, p.slow ? '10% slow' : 'control', p.normal.lost, n(p.normal.latencyMs.p50), n(p.normal.latencyMs.p99), n(p.normal.latencyMs.max, 0),
        p.slow ? `${p.slow.delivered}/${p.slow.expected}` : '–', p.slow ? p.edge.closedSlow : '–', p.slow ? p.edge.skippedFrames : '–', n(p.edge.cpuPercent, 0),
      ]))));
  }
  const so = readResult<SoakResult>(dir, 'soak');
  if (so) {
    parts.push(`\n### Soak (\`${so.command}\`, ${so.startedAt}, commit ${so.commit})\n`);
    parts.push(soakTable(so.results));
    parts.push('\n```\n' + so.results.verdict.lines.join('\n') + '\n```');
  }
  return parts.join('\n') + '\n';
}

/** One row per minute of a soak: the viewers, what the steady ones got, and the edge seen from outside. */
export function soakTable(r: SoakResult): string {
  const m = (v: number | null, d = 0) => (v === null ? '–' : n(v, d));
  return table(
    ['minute', 'edge clients', 'steady', 'churning', 'joined / left', 'steady delivered', 'steady lost', 'steady p99 ms', 'edge RSS MB', 'edge heap MB', 'edge fds', 'event-loop lag p99 / max ms', 'edge % core', 'Redis clients', 'machine busy'],
    r.samples.map((x) => [
      x.minute, x.edge.clients, x.steady.connected, x.churn.active, x.churn.joined === null ? '–' : `${x.churn.joined} / ${x.churn.left}`,
      m(x.steady.delivered), x.steady.lostSoFar, m(x.steady.p99Ms, 1), n(x.edge.rssMB), n(x.edge.heapUsedMB), x.edge.fds,
      `${n(x.edge.lagP99Ms)} / ${n(x.edge.lagMaxMs)}`, m(x.edge.cpuPercent), x.redis.clients,
      x.machineBusyPercent === null ? '–' : `${n(x.machineBusyPercent, 0)}%`,
    ]),
  );
}

/** One row per point: the viewers spread over N edge processes, each edge's share of a core, and Redis's reads. */
export function edgesTable(points: PointResult[]): string {
  return table(
    ['system', 'monitors × viewers', 'edges', 'lost', 'p50 ms', 'p99 ms', 'max ms', 'MB/s', 'edge CPU-s/GB (sum)', 'edge % core, each', 'max edge % core', 'Redis cmd/s', 'Redis XREAD/s', 'Redis ms/pkt', 'loadgen % core', 'machine busy'],
    points.map((p) => {
      const ep = p.edgeProcesses;
      const reads = ep ? ep.redisReadsPerSecond : NaN;
      return [
        p.system, `${p.monitors} × ${p.viewers / p.monitors}`, ep?.count ?? 1, p.normal.lost,
        n(p.normal.latencyMs.p50), n(p.normal.latencyMs.p99), n(p.normal.latencyMs.max, 0), n(p.deliveredMBps, 0),
        n(p.edge.cpuSecondsPerGB, 2), ep ? ep.perEdge.map((e) => n(e.cpuPercent, 0)).join(' + ') : n(p.edge.cpuPercent, 0),
        n(ep ? ep.maxCpuPercent : p.edge.cpuPercent, 0), n(p.redis.commandsPerSecond, 0), n(reads, 0), n(p.redis.cpuMsPerPacket, 3),
        n(p.loadgen.cpuPercent, 0), `${n(p.machineBusyPercent, 0)}%`,
      ];
    }),
  );
}

/** RSS growth per viewer is noise below a few hundred viewers (GC can even shrink the heap): shown only where it means something. */
function rssCell(viewers: number, kb: number): string {
  return viewers >= 500 && kb > 0 ? kb.toFixed(1) : '–';
}
