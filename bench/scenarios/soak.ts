/**
 * Soak: the real edge for --minutes (default 30) under --viewers (default 500),
 * half of them steady for the whole run and half churning, --churn-per-second
 * joining and as many leaving each second. The bench publisher feeds
 * --monitors synthetic monitors at --fps with --size payloads (the same
 * Publisher, Lua script and pipelining as capture; plus one monitor event
 * every 2 s so events subscribers get something).
 *
 * Steady viewers check every packet: per monitor, sequence numbers must
 * follow one another within a generation; any gap is a loss and fails the
 * soak. Every minute the edge is sampled from outside: RSS (/proc/<pid>/status
 * VmRSS), open descriptors (/proc/<pid>/fd), event-loop delay and connected
 * clients (its own /metrics), CPU (/proc/<pid>/stat); RSS and descriptors are
 * also read every 10 s for the slope. The verdict: no steady loss, no failed
 * churn session, RSS flat over the last 2/3 of the run, descriptors flat, and
 * back to where they started once every viewer has left.
 */
import { Histogram, type HistogramData } from '../lib/histogram.js';
import { Rig, sleep } from '../lib/rig.js';
import { machineCpu, procCpuSeconds, procOpenFds, procRssBytes } from '../lib/proc.js';
import { scrapeMetrics } from '../lib/scrape.js';
import { CHURN_KINDS, LEAVE_KINDS, type ChurnStats, type SoakSpec, type SoakStats } from '../lib/soak-load.js';
import type { PublishTotals } from '../publisher-process.js';
import type { BenchOptions } from './options.js';

/** RSS may grow at most this much per 10 minutes over the last 2/3 of the run ... */
export const RSS_SLOPE_LIMIT_MB_PER_10_MIN = 5;
/** ... judged in runs of at least this many minutes: a shorter run is still warming up (heap sizing, allocator arenas). */
export const RSS_SLOPE_MIN_MINUTES = 10;
/** Descriptors not held by clients may differ by this many between start and end, and between before and after. */
export const FD_TOLERANCE = 10;
const RSS_EVERY_MS = 10_000;
/** The edge closes a monitor's channels (and their Redis readers) 10 s after its last viewer (services/edge/hub.ts). */
const SETTLE_MS = 30_000;
const LAG_P99 = 'zmcast_process_nodejs_eventloop_lag_p99_seconds';
const LAG_MAX = 'zmcast_process_nodejs_eventloop_lag_max_seconds';
/** prom-client samples the loop with a timer of this period (eventLoopMonitoringPrecision in shared/metrics.ts), part of every reading. */
const LOOP_TIMER_MS = 50;
const lag = (seconds: number | undefined) => (seconds === undefined ? NaN : Math.max(0, seconds * 1000 - LOOP_TIMER_MS));

export interface SoakSample {
  minute: number;
  /** Seconds since the load started. */
  at: number;
  edge: {
    rssMB: number;
    heapUsedMB: number;
    fds: number;
    clients: number;
    /**
     * Event-loop delay over the interval, from prom-client's monitorEventLoopDelay (reset at every
     * scrape): the metric as exported, which includes the 50 ms sampling timer (an idle loop reads ≈50 ms) ...
     */
    loopDelayP99Ms: number;
    loopDelayMaxMs: number;
    /** ... and the lag itself, beyond that timer. */
    lagP99Ms: number;
    lagMaxMs: number;
    /** Share of one core over the interval (null at minute 0). */
    cpuPercent: number | null;
  };
  redis: { clients: number; usedMemoryMB: number };
  steady: { connected: number; lostSoFar: number; delivered: number | null; p99Ms: number | null; maxMs: number | null };
  churn: { active: number; joined: number | null; left: number | null; failedSoFar: number };
  machineBusyPercent: number | null;
}

export interface SoakVerdict {
  pass: boolean;
  lines: string[];
}

export interface SoakResult {
  minutes: number;
  monitors: number;
  viewers: number;
  steadyViewers: number;
  churnPool: number;
  churnPerSecond: number;
  meanStaySeconds: number;
  size: number;
  fps: number;
  gop: number;
  feed: string;
  /** The edge with the publisher running, before any viewer, and after every viewer left. */
  before: { rssMB: number; fds: number };
  after: { rssMB: number; fds: number; settleSeconds: number };
  samples: SoakSample[];
  /** RSS and descriptors every 10 s: [seconds since the load started, MB, descriptors]. */
  rssSeries: [number, number, number][];
  rssSlopeMBPer10Min: number;
  heapSlopeMBPer10Min: number;
  published: number;
  publisherDropped: number;
  publisherLateTicks: number;
  steady: { viewers: number; delivered: number; lost: number; gapLost: number; tailLost: number; outOfOrder: number; droppedNotices: number; closedByServer: number; errors: string[] };
  churn: Omit<ChurnStats, 'active'>;
  verdict: SoakVerdict;
}

export async function soak(o: BenchOptions): Promise<SoakResult> {
  const s = o.soak;
  for (const [flag, v] of [['minutes', s.minutes], ['viewers', s.viewers], ['churn-per-second', s.churnPerSecond], ['monitors', s.monitors]] as const) {
    if (!Number.isFinite(v) || v <= 0) throw new Error(`soak: --${flag} takes one positive number`);
  }
  if (![s.minutes, s.viewers, s.monitors].every(Number.isInteger) || s.viewers < 2) throw new Error('soak: --minutes, --viewers and --monitors take whole numbers, --viewers at least 2');
  const steadyViewers = Math.ceil(s.viewers / 2);
  const churnPool = s.viewers - steadyViewers;
  const meanStaySeconds = churnPool / s.churnPerSecond;
  const rig = await Rig.start('zmcast', s.viewers + 1000);
  try {
    const pid = rig.edge.pid;
    const metricsPort = rig.adminPort;
    if (metricsPort === null) throw new Error('soak: the zmcast edge reported no admin listener for /metrics');
    const monitors = Array.from({ length: s.monitors }, (_, i) => ({ id: i + 1, gop: o.gop }));
    const publisher = await rig.publisher('zmcast', { monitors, size: o.size, fps: o.fps, eventEveryPackets: 2 * o.fps });
    await publisher.call('start');
    await sleep(3000); // a few GOPs in Redis before anyone joins
    const before = { rssMB: procRssBytes(pid) / 1e6, fds: procOpenFds(pid) };
    const metrics0 = await scrapeMetrics(metricsPort);
    if (!(LAG_P99 in metrics0)) o.log(`  the edge's /metrics has no ${LAG_P99}: event-loop delay not reported`);

    // Like the fan-out points: one load-generator process per 250 viewers, at most 4.
    const nWorkers = Math.min(4, Math.max(1, Math.ceil(s.viewers / 250)));
    const workers = rig.viewers(nWorkers, Math.ceil(s.viewers / nWorkers) + 500);
    const share = (n: number, i: number) => Math.floor(n / nWorkers) + (i < n % nWorkers ? 1 : 0);
    let firstSteady = 0;
    const specs = workers.map((_, i): SoakSpec => {
      const spec = {
        port: rig.port, monitors: monitors.map((m) => m.id), firstSteady, steady: share(steadyViewers, i),
        churnPool: share(churnPool, i), churnPerSecond: s.churnPerSecond / nWorkers,
      };
      firstSteady += spec.steady;
      return spec;
    });
    const t = performance.now();
    const started = await Promise.all(workers.map((w, i) => w.call<{ steady: number; failed: number; errors: string[] }>('soakStart', specs[i])));
    const failed = started.reduce((a, r) => a + r.failed, 0);
    const errors = started.flatMap((r) => r.errors);
    o.log(`  ${steadyViewers - failed}/${steadyViewers} steady viewers on ${s.monitors} monitors in ${((performance.now() - t) / 1000).toFixed(1)} s; ` +
      `${churnPool} churning (${s.churnPerSecond}/s join and leave, mean stay ${meanStaySeconds.toFixed(0)} s); ${s.minutes} min at ${o.fps} fps × ${o.size} B`);
    if (failed > 0 || errors.length > 0) throw new Error(`soak: steady viewers did not all start (${errors.slice(0, 3).join('; ')})`);

    const t0 = performance.now();
    const elapsed = () => (performance.now() - t0) / 1000;
    const rssSeries: [number, number, number][] = [];
    const rssTimer = setInterval(() => rssSeries.push([elapsed(), procRssBytes(pid) / 1e6, procOpenFds(pid)]), RSS_EVERY_MS);
    const samples: SoakSample[] = [];
    let prev: { stats: SoakStats[]; cpu: number; machine: ReturnType<typeof machineCpu>; at: number } | null = null;
    try {
      for (let minute = 0; minute <= s.minutes; minute++) {
        await sleep(t0 + minute * 60_000 - performance.now());
        // Descriptors and RSS first: the scrape's own connection must not be counted.
        const [at, rss, fds, cpu, machine] = [elapsed(), procRssBytes(pid), procOpenFds(pid), procCpuSeconds(pid), machineCpu()];
        const metrics = await scrapeMetrics(metricsPort);
        const redis = await rig.redis.sample();
        const stats = await Promise.all(workers.map((w) => w.call<SoakStats>('soakStats')));
        const sum = (f: (x: SoakStats) => number) => stats.reduce((a, x) => a + f(x), 0);
        const lostSoFar = sum((x) => x.steady.lost + x.steady.outOfOrder);
        const latency = merge(stats.map((x) => x.steady.latency));
        const since = (f: (x: SoakStats) => number) => (prev ? sum(f) - prev.stats.reduce((a, x) => a + f(x), 0) : null);
        const sample: SoakSample = {
          minute, at,
          edge: {
            rssMB: rss / 1e6, heapUsedMB: (metrics.zmcast_process_nodejs_heap_size_used_bytes ?? NaN) / 1e6, fds,
            clients: metrics.zmcast_edge_clients ?? NaN,
            loopDelayP99Ms: (metrics[LAG_P99] ?? NaN) * 1000, loopDelayMaxMs: (metrics[LAG_MAX] ?? NaN) * 1000,
            lagP99Ms: lag(metrics[LAG_P99]), lagMaxMs: lag(metrics[LAG_MAX]),
            cpuPercent: prev ? (100 * (cpu - prev.cpu)) / (at - prev.at) : null,
          },
          redis: { clients: redis.connectedClients, usedMemoryMB: redis.usedMemory / 1e6 },
          steady: {
            connected: sum((x) => x.steady.connected), lostSoFar, delivered: since((x) => x.steady.received),
            p99Ms: prev ? latency.quantileUs(0.99) / 1000 : null, maxMs: prev ? latency.quantileUs(1) / 1000 : null,
          },
          churn: { active: sum((x) => x.churn.active), joined: since((x) => x.churn.joined), left: since((x) => x.churn.left), failedSoFar: sum((x) => x.churn.failed) },
          machineBusyPercent: prev ? (100 * (machine.busy - prev.machine.busy)) / (machine.total - prev.machine.total) : null,
        };
        samples.push(sample);
        o.log(`  minute ${minute}: ${describeSample(sample)}`);
        prev = { stats, cpu, machine, at };
      }
    } finally {
      clearInterval(rssTimer);
    }

    const totals = await publisher.call<PublishTotals>('stop');
    const finals = await Promise.all(workers.map((w) => w.call<SoakStats>('soakFinish', totals.nextSeq, 5000)));
    // Every viewer is gone: wait for the edge to close the monitors' channels, then compare with before.
    const settled = performance.now();
    while (procOpenFds(pid) > before.fds && performance.now() - settled < SETTLE_MS) await sleep(500);
    const after = { rssMB: procRssBytes(pid) / 1e6, fds: procOpenFds(pid), settleSeconds: (performance.now() - settled) / 1000 };

    const total = (f: (x: SoakStats) => number) => finals.reduce((a, x) => a + f(x), 0);
    const steady = {
      viewers: total((x) => x.steady.viewers),
      delivered: total((x) => x.steady.received),
      gapLost: total((x) => x.steady.lost),
      tailLost: total((x) => x.steady.tailLost),
      outOfOrder: total((x) => x.steady.outOfOrder),
      droppedNotices: total((x) => x.steady.droppedNotices),
      closedByServer: total((x) => x.steady.closedByServer),
      lost: 0,
      errors: finals.flatMap((x) => x.steady.errors).slice(0, 5),
    };
    steady.lost = steady.gapLost + steady.tailLost + steady.outOfOrder;
    const churn = sumChurn(finals.map((x) => x.churn));
    const lastThirds = rssSeries.filter(([sec]) => sec >= (s.minutes * 60) / 3);
    const result: SoakResult = {
      minutes: s.minutes, monitors: s.monitors, viewers: s.viewers, steadyViewers, churnPool, churnPerSecond: s.churnPerSecond, meanStaySeconds,
      size: o.size, fps: o.fps, gop: o.gop,
      feed: 'bench publisher (services/capture Publisher: same Lua script and pipelining as capture), synthetic payloads',
      before, after, samples, rssSeries,
      rssSlopeMBPer10Min: 600 * slope(lastThirds.map(([sec, mb]) => [sec, mb])),
      heapSlopeMBPer10Min: 10 * slope(samples.filter((x) => x.minute >= s.minutes / 3).map((x) => [x.minute, x.edge.heapUsedMB])),
      published: (totals.nextSeq) * s.monitors, publisherDropped: totals.dropped, publisherLateTicks: totals.lateTicks,
      steady, churn,
      verdict: { pass: false, lines: [] },
    };
    result.verdict = verdict(result);
    return result;
  } finally {
    await rig.stop();
  }
}

function merge(list: HistogramData[]): Histogram {
  const h = new Histogram();
  for (const d of list) h.add(d);
  return h;
}

function sumChurn(list: ChurnStats[]): Omit<ChurnStats, 'active'> {
  const out: Omit<ChurnStats, 'active'> = {
    joined: 0, left: 0, failed: 0, packets: 0, events: 0, lost: 0, errors: [],
    kinds: Object.fromEntries(CHURN_KINDS.map((k) => [k, 0])) as ChurnStats['kinds'],
    leaves: Object.fromEntries(LEAVE_KINDS.map((k) => [k, 0])) as ChurnStats['leaves'],
  };
  for (const c of list) {
    for (const k of ['joined', 'left', 'failed', 'packets', 'events', 'lost'] as const) out[k] += c[k];
    for (const k of CHURN_KINDS) out.kinds[k] += c.kinds[k];
    for (const k of LEAVE_KINDS) out.leaves[k] += c.leaves[k];
    out.errors.push(...c.errors);
  }
  out.errors = out.errors.slice(0, 10);
  return out;
}

/** Least-squares slope of y over x (NaN with fewer than two points). */
export function slope(points: [number, number][]): number {
  const pts = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (pts.length < 2) return NaN;
  const mx = pts.reduce((a, [x]) => a + x, 0) / pts.length;
  const my = pts.reduce((a, [, y]) => a + y, 0) / pts.length;
  const sxy = pts.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const sxx = pts.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return sxx > 0 ? sxy / sxx : NaN;
}

function describeSample(x: SoakSample): string {
  const f = (v: number | null, d = 0) => (v === null || !Number.isFinite(v) ? '–' : v.toFixed(d));
  return `clients ${x.edge.clients} (steady ${x.steady.connected}, churning ${x.churn.active}), ` +
    `joined ${f(x.churn.joined)} left ${f(x.churn.left)}, steady delivered ${f(x.steady.delivered)} lost ${x.steady.lostSoFar} ` +
    `p99 ${f(x.steady.p99Ms, 1)} ms; edge RSS ${x.edge.rssMB.toFixed(1)} MB heap ${x.edge.heapUsedMB.toFixed(1)} MB, ${x.edge.fds} fds, ` +
    `loop lag p99 ${f(x.edge.lagP99Ms, 1)} max ${f(x.edge.lagMaxMs, 1)} ms, ${f(x.edge.cpuPercent)}% core; ` +
    `redis ${x.redis.clients} clients; machine ${f(x.machineBusyPercent)}% busy`;
}

export function verdict(r: SoakResult): SoakVerdict {
  const lines: string[] = [];
  let pass = true;
  const check = (ok: boolean, line: string) => {
    if (!ok) pass = false;
    lines.push(`${ok ? 'ok  ' : 'FAIL'} ${line}`);
  };
  const st = r.steady;
  check(st.lost === 0 && st.closedByServer === 0,
    `steady viewers lost ${st.lost} packets (must be 0): ${st.viewers} viewers, ${st.delivered} packets delivered; ` +
    `gaps ${st.gapLost}, missing at the end ${st.tailLost}, out of order ${st.outOfOrder}, dropped notices ${st.droppedNotices}, closed by the edge ${st.closedByServer}` +
    (r.publisherDropped > 0 ? `; the publisher itself dropped ${r.publisherDropped}` : ''));
  const c = r.churn;
  check(c.failed === 0,
    `churn: ${c.joined} sessions (${CHURN_KINDS.map((k) => `${k} ${c.kinds[k]}`).join(', ')}; left by ${LEAVE_KINDS.map((k) => `${k} ${c.leaves[k]}`).join(', ')}), ` +
    `${c.failed} failed (must be 0)${c.errors.length ? `: ${c.errors.slice(0, 3).join('; ')}` : ''}; ` +
    `they got ${c.packets} packets (gaps ${c.lost}) and ${c.events} events`);
  const from = Math.ceil(r.minutes / 3);
  const judged = r.minutes >= RSS_SLOPE_MIN_MINUTES;
  check(!judged || (Number.isFinite(r.rssSlopeMBPer10Min) && r.rssSlopeMBPer10Min <= RSS_SLOPE_LIMIT_MB_PER_10_MIN),
    `edge RSS slope over minutes ${from}–${r.minutes}: ${signed(r.rssSlopeMBPer10Min)} MB per 10 min ` +
    (judged ? `(limit +${RSS_SLOPE_LIMIT_MB_PER_10_MIN})` : `(not judged: runs under ${RSS_SLOPE_MIN_MINUTES} min are still warming up)`) +
    `; heap ${signed(r.heapSlopeMBPer10Min)} MB per 10 min`);
  const a = r.samples[Math.min(1, r.samples.length - 1)];
  const b = r.samples[r.samples.length - 1];
  const other = (x: SoakSample) => x.edge.fds - x.edge.clients;
  check(Math.abs(other(b) - other(a)) <= FD_TOLERANCE,
    `edge descriptors ${a.edge.fds} at minute ${a.minute} → ${b.edge.fds} at minute ${b.minute} ` +
    `(clients ${a.edge.clients} → ${b.edge.clients}; not held by a client ${other(a)} → ${other(b)}, tolerance ±${FD_TOLERANCE})`);
  check(r.after.fds - r.before.fds <= FD_TOLERANCE,
    `with no viewers, before → after: ${r.before.fds} → ${r.after.fds} descriptors (tolerance +${FD_TOLERANCE}), ` +
    `RSS ${r.before.rssMB.toFixed(0)} → ${r.after.rssMB.toFixed(0)} MB`);
  return { pass, lines };
}

const signed = (v: number) => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(2)}` : '–');
