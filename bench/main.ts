/**
 * `npm run bench -- [scenario…] [--seconds N] [--warmup N] [--size BYTES] [--gop N] [--viewers 10,100,…]
 *                     [--baselines 100,500,…] [--systems zmcast,nchan,…] [--repeat N] [--edges 1,2] [--ref DIR]
 *                     [--grid 20x50|none] [--idle N] [--profile] [--full]`
 * `npm run bench -- pictures` (cost per picture, monitors per worker core, snapshot latency beside ffmpeg per request)
 * `npm run bench -- coalesce [--repeat N] [--seconds N]` (200 viewers × a 16-monitor montage socket, write coalescing off and on)
 * `npm run bench -- soak [--minutes 30] [--viewers 500] [--churn-per-second 5] [--monitors 4] [--fps 25] [--size BYTES]`
 * `npm run bench -- montage [--seconds N]` (16 tiles of the page in Chromium: main, sub, keyframes only)
 *
 * Scenarios: fanout, first-frame, capture-density, idle, slow (all of them,
 * at quick sizes, when none is named; --full for the bigger sweeps). Systems:
 * zmcast, nginx + nchan in Redis mode (installed with apt-get when missing),
 * the naive and Socket.IO baselines, and `floor` (bare socket writes, the
 * machine's limit for any Node edge; `sockwrite`, zmcast with one
 * socket.write per viewer instead of its native writer). `--edges N` (or a list) runs each
 * fan-out point with N edge processes sharing the viewers; such a run goes to
 * fanout-edges.json so the single-edge table stays. `soak`, `pictures`, `montage` and `coalesce` run only when named (soak: 30 min
 * by default, and exits non-zero when its verdict fails). Results go to bench/results/*.json;
 * `plot` redraws docs/performance-fanout.svg from bench/results/fanout.json.
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { fanout } from './scenarios/fanout.js';
import { firstFrame } from './scenarios/first-frame.js';
import { idle } from './scenarios/idle.js';
import { slow } from './scenarios/slow.js';
import { captureDensity } from './scenarios/capture-density.js';
import { soak } from './scenarios/soak.js';
import { pictures } from './scenarios/pictures.js';
import { montage } from './scenarios/montage.js';
import { coalesce } from './scenarios/coalesce.js';
import { plot, soakTable } from './report.js';
import { RESULTS_DIR, writeResult } from './lib/results.js';
import { describeMachine } from './lib/proc.js';
import { ensureNchan, nchanVersions } from './baselines/nchan.js';
import type { BenchOptions } from './scenarios/options.js';

/** The floor (bare writes), nchan (channel in the URL, no commands), a reference build and sockwrite only take part in fan-out. */
const inProtocolScenarios = (s: BenchOptions['systems'][number]) => s !== 'floor' && s !== 'nchan' && s !== 'ref' && s !== 'sockwrite';

const SCENARIOS = ['fanout', 'first-frame', 'capture-density', 'idle', 'slow'] as const;
/** Known, but run only when named. */
const ON_REQUEST = ['soak', 'pictures', 'montage', 'coalesce'] as const;
type Scenario = (typeof SCENARIOS)[number] | (typeof ON_REQUEST)[number];
const KNOWN: readonly string[] = [...SCENARIOS, ...ON_REQUEST];

const list = (s: string) => s.split(',').map((x) => Number(x.trim())).filter((n) => Number.isFinite(n) && n > 0);

/** `20x50` → 20 monitors of 50 viewers each; `none` → no many-monitor point. */
function parseGrid(s: string): BenchOptions['grid'] {
  if (s === 'none') return null;
  const m = /^(\d+)x(\d+)$/.exec(s);
  if (!m) throw new Error(`--grid takes MONITORSxVIEWERS (e.g. 20x50) or none, not ${s}`);
  return { monitors: Number(m[1]), viewersPerMonitor: Number(m[2]) };
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      size: { type: 'string' },
      gop: { type: 'string' },
      fps: { type: 'string' },
      viewers: { type: 'string' },
      baselines: { type: 'string' },
      systems: { type: 'string' },
      edges: { type: 'string' },
      idle: { type: 'string' },
      minutes: { type: 'string' },
      'churn-per-second': { type: 'string' },
      monitors: { type: 'string' },
      grid: { type: 'string' },
      repeat: { type: 'string' },
      ref: { type: 'string' },
      profile: { type: 'boolean' },
      full: { type: 'boolean' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`usage: npm run bench -- [${KNOWN.join('|')}|plot …] [options]\n`);
    return 0;
  }
  const unknown = positionals.filter((p) => !KNOWN.includes(p) && p !== 'plot');
  if (unknown.length > 0) {
    process.stderr.write(`unknown scenario ${unknown.join(', ')}; known: ${KNOWN.join(', ')}, plot\n`);
    return 2;
  }
  const full = values.full ?? false;
  const o: BenchOptions = {
    seconds: Number(values.seconds ?? (full ? 20 : 8)),
    warmup: Number(values.warmup ?? 1),
    size: Number(values.size ?? 20_000),
    fps: Number(values.fps ?? 25),
    gop: Number(values.gop ?? 50),
    viewers: list(values.viewers ?? (full ? '10,100,500,1000,2000,4000' : '10,100,500,1000,2000')),
    grid: parseGrid(values.grid ?? '20x50'),
    baselineViewers: list(values.baselines ?? (full ? '10,100,500,1000,2000' : '100,500,1000')),
    systems: (values.systems ?? 'zmcast,nchan,naive,socketio,floor').split(',') as BenchOptions['systems'],
    edges: list(values.edges ?? '1'),
    repeat: Math.max(1, Number(values.repeat ?? 1)),
    idleConnections: Number(values.idle ?? 10_000),
    // One number each (a soak has one viewer count, not a list); the soak checks them before it starts.
    soak: {
      minutes: Number(values.minutes ?? 30),
      viewers: Number(values.viewers ?? 500),
      churnPerSecond: Number(values['churn-per-second'] ?? 5),
      monitors: Number(values.monitors ?? 4),
    },
    profile: values.profile ?? false,
    resultsDir: values.out ?? RESULTS_DIR,
    log: (line) => process.stderr.write(`${line}\n`),
  };
  const scenarios = positionals.length > 0 ? positionals : [...SCENARIOS];
  const command = `npm run bench --${argv.length ? ' ' + argv.join(' ') : ''}`;
  if (o.systems.includes('nchan') && scenarios.includes('fanout')) ensureNchan(o.log);
  if (o.systems.includes('ref')) {
    // The reference build's edge runs as system `ref`; edge processes inherit the directory.
    if (!values.ref) throw new Error('system ref needs --ref DIR (a zmcast checkout built with tsc)');
    process.env.ZMCAST_BENCH_REF = resolve(values.ref);
  }
  const m = describeMachine();
  o.log(`zmcast bench on ${m.cpus} × ${m.cpuModel}, ${m.node}, ${m.redis}${o.systems.includes('nchan') ? `, ${nchanVersions()}` : ''}`);
  let failed = false;
  for (const s of scenarios as (Scenario | 'plot')[]) {
    const started = new Date();
    o.log(`\n== ${s}`);
    let results: unknown;
    switch (s) {
      case 'fanout': results = await fanout(o); break;
      case 'first-frame': results = await firstFrame({ ...o, systems: o.systems.filter(inProtocolScenarios) }); break;
      case 'idle': results = await idle({ ...o, systems: o.systems.filter(inProtocolScenarios) }); break;
      case 'slow': results = await slow({ ...o, systems: values.systems || full ? o.systems.filter(inProtocolScenarios) : ['zmcast'] }, full ? 1000 : 500); break;
      case 'capture-density': results = await captureDensity(o, full ? [10, 25, 50, 100, 200, 400] : [10, 50, 100, 200]); break;
      case 'montage': results = await montage(o); break;
      case 'soak': {
        const r = await soak(o);
        o.log(`\n${soakTable(r)}\n\n${r.verdict.lines.join('\n')}\nsoak ${r.verdict.pass ? 'passed' : 'FAILED'}`);
        failed ||= !r.verdict.pass;
        results = r;
        break;
      }
      case 'pictures': results = await pictures(o); break;
      case 'coalesce': results = await coalesce(o); break;
      case 'plot': o.log(`  wrote ${plot(o.resultsDir).join(', ')}`); continue;
    }
    // A run with several edge processes gets its own file: the single-edge fan-out table and plot stay as they are.
    const file = s === 'fanout' && o.edges.some((n) => n !== 1) ? 'fanout-edges' : s;
    o.log(`  wrote ${writeResult(o.resultsDir, file, command, started, s === 'soak' ? soakOptionsOf(o) : optionsOf(o), results)} (${((Date.now() - started.getTime()) / 1000).toFixed(0)} s)`);
    if ((s === 'fanout' || s === 'soak') && o.resultsDir === RESULTS_DIR) o.log(`  wrote ${plot(o.resultsDir).join(', ')}`);
  }
  return failed ? 1 : 0;
}

function optionsOf(o: BenchOptions): Record<string, unknown> {
  const { log: _log, resultsDir: _dir, edges, soak: _soak, ...rest } = o;
  return edges.some((n) => n !== 1) ? { ...rest, edges } : rest;
}

function soakOptionsOf(o: BenchOptions): Record<string, unknown> {
  return { ...o.soak, size: o.size, fps: o.fps, gop: o.gop };
}

main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
