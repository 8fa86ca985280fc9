/**
 * One measured load point: a fresh Redis, the server under test in its own
 * process, the synthetic publisher, and viewers spread over load-generator
 * processes. Counters are sampled when the packet opening the window is
 * published and again when the last one has been delivered, so every rate
 * below covers the same packets.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Child, cpuSeconds, sumUsage, type Usage } from './child.js';
import { Histogram } from './histogram.js';
import { machineCpu } from './proc.js';
import { RedisServer, redisDelta } from './redis-server.js';
import { summarizeProfile, type HotSpot } from './profile.js';
import type { EdgeKind } from '../edge-process.js';
import type { PublishSpec, PublishTotals } from '../publisher-process.js';
import type { ClassStats, ConnectSpec, ViewerGroup, WindowStats } from '../viewer-process.js';

export interface LoadSpec {
  system: EdgeKind;
  monitors: number;
  viewersPerMonitor: number;
  /** Share of each monitor's viewers that read slowly: half never read, half read at `throttleBytesPerSecond`. */
  slowFraction: number;
  size: number;
  gop: number;
  fps: number;
  seconds: number;
  /** Seconds of publishing before the window (default 1). */
  warmupSeconds?: number;
  /** Load-generator processes; default by viewer count. */
  workers?: number;
  throttleBytesPerSecond?: number;
  /** Directory to write a .cpuprofile of the edge during the window (the first edge when there are several). */
  profileDir?: string;
  /**
   * Edge processes (default 1): each its own process on its own port, all on
   * the same Redis; viewer k goes to edge k mod N. When given (even 1) the
   * result carries `edgeProcesses`; left out, the output is the single-edge one.
   */
  edges?: number;
  /**
   * A montage: this many viewers, each watching every one of `monitors` on its
   * one socket (viewersPerMonitor is then ignored). Fast viewers only.
   */
  montageViewers?: number;
  /** zmcast only: the edge's `edge.coalesceMs` (default: the config's). */
  coalesceMs?: number;
}

/** One edge process of a multi-edge point. */
export interface EdgeShare {
  port: number;
  viewers: number;
  cpuSeconds: number;
  cpuPercent: number;
  kernelPercent: number;
  rssLoadedMB: number;
}

/** Present only when the spec named its edge count; `edge` then holds the sums over the processes. */
export interface EdgeProcesses {
  count: number;
  perEdge: EdgeShare[];
  /** The busiest edge process, % of one core. */
  maxCpuPercent: number;
  /** Stream reads (XREAD) per second in the window: one reader per edge and monitor, whatever the viewers. */
  redisReadsPerSecond: number;
  /** Commands per second by name, in the window. */
  redisCommandsPerSecondByName: Record<string, number>;
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface ClassSummary {
  viewers: number;
  expected: number;
  delivered: number;
  lost: number;
  lossPercent: number;
  viewersWithLoss: number;
  closedByServer: number;
  droppedNotices: number;
  outOfOrder: number;
  latencyMs: LatencySummary;
}

export interface PointResult {
  system: EdgeKind;
  label: string;
  /** Which repeat of its load (1, 2, …) when the run repeats points (`--repeat`). */
  run?: number;
  monitors: number;
  viewers: number;
  slowViewers: number;
  size: number;
  gop: number;
  fps: number;
  windowSeconds: number;
  published: number;
  publisherDropped: number;
  normal: ClassSummary;
  slow: ClassSummary | null;
  deliveredMessages: number;
  deliveredMBps: number;
  edge: {
    cpuSeconds: number;
    /** Share of the edge's CPU spent in the kernel (socket writes, loopback TCP). */
    kernelPercent: number;
    cpuPercent: number;
    cpuSecondsPerGB: number;
    usPerMessage: number;
    rssIdleMB: number;
    rssLoadedMB: number;
    rssPerViewerKB: number;
    heapPerViewerKB: number;
    /** The edge's own count of clients it closed as slow, and of packets it skipped for them. */
    closedSlow: number;
    skippedFrames: number;
  };
  redis: {
    commandsPerSecond: number;
    cpuPercent: number;
    cpuMsPerPacket: number;
    /** The same, less Redis's idle CPU rate measured before publishing started. */
    netCpuMsPerPacket: number;
    idleCpuPercent: number;
    procCpuMsPerPacket: number;
    commands: Record<string, number>;
  };
  loadgen: { processes: number; cpuSeconds: number; cpuPercent: number };
  publisher: { cpuSeconds: number; cpuPercent: number; lateTicks: number };
  machineBusyPercent: number;
  drained: boolean;
  /** `threads`: the edge's CPU seconds in the window by thread name (the profile covers the main thread only). */
  profile?: { file: string; idlePercent: number; hot: HotSpot[]; threads: Record<string, number> };
  /** Per-edge shares, when the spec named its edge count (`--edges`); absent otherwise, so the default output is unchanged. */
  edgeProcesses?: EdgeProcesses;
  errors: string[];
}

const here = new URL('..', import.meta.url);
const module = (name: string) => new URL(name, here);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How packets reach the system under test, and the protocol its viewers speak. */
const publishMode = (system: EdgeKind): 'zmcast' | 'socketio' | 'nchan' => (system === 'socketio' || system === 'nchan' ? system : 'zmcast');

export function label(s: Pick<LoadSpec, 'system' | 'monitors' | 'viewersPerMonitor' | 'slowFraction' | 'edges' | 'montageViewers' | 'coalesceMs'>): string {
  const edges = s.edges === undefined ? '' : ` ${s.edges} edge${s.edges === 1 ? '' : 's'}`;
  const coalesce = s.coalesceMs === undefined ? '' : s.coalesceMs > 0 ? ` coalesce ${s.coalesceMs} ms` : ' no coalescing';
  if (s.montageViewers !== undefined) return `${s.system} ${s.montageViewers} viewers x ${s.monitors}-monitor montage${coalesce}`;
  return `${s.system} ${s.monitors}x${s.viewersPerMonitor}${s.slowFraction > 0 ? ` slow${Math.round(s.slowFraction * 100)}%` : ''}${edges}${coalesce}`;
}

export async function runLoadPoint(spec: LoadSpec, log: (line: string) => void = () => {}): Promise<PointResult> {
  const montage = spec.montageViewers !== undefined;
  const viewers = spec.montageViewers ?? spec.monitors * spec.viewersPerMonitor;
  const name = label(spec);
  const nEdges = Math.max(1, Math.floor(spec.edges ?? 1));
  const perEdgeReport = spec.edges !== undefined;
  const redis = await RedisServer.start(viewers + 1000);
  const children: Child[] = [];
  try {
    const edges = Array.from({ length: nEdges }, (_, i) => Child.start(nEdges === 1 ? 'edge' : `edge-${i}`, module('edge-process.js'), [spec.system, redis.url], {
      // ZMCAST_BENCH_EDGE_ARGS: extra node flags for the edge under test (e.g. --trace-gc when looking at its pauses).
      files: Math.ceil(viewers / nEdges) + 1000, execArgv: ['--expose-gc', ...(process.env.ZMCAST_BENCH_EDGE_ARGS?.split(' ').filter(Boolean) ?? [])], env: {
        ZMCAST_BENCH_CONNECTIONS: String(viewers + 100),
        ...(spec.coalesceMs !== undefined ? { ZMCAST_BENCH_COALESCE_MS: String(spec.coalesceMs) } : {}),
      },
    }));
    children.push(...edges);
    const edge = edges[0];
    const ports = await Promise.all(edges.map((e) => e.call<number>('start')));
    const port = ports[0];
    const publisher = Child.start('publisher', module('publisher-process.js'), [publishMode(spec.system), redis.url]);
    children.push(publisher);
    const monitors = Array.from({ length: spec.monitors }, (_, i) => ({ id: i + 1, gop: spec.gop }));
    await publisher.call('setup', { monitors, size: spec.size, fps: spec.fps } satisfies PublishSpec);
    await sleep(300); // let the socket.io adapter's readers get going
    const edgeIdles = await Promise.all(edges.map((e) => e.call<Usage>('gc')));
    const edgeIdle = sumUsage(edgeIdles);

    const nWorkers = spec.workers ?? Math.min(4, Math.max(1, Math.ceil(viewers / 250)));
    const perWorker = Math.ceil(viewers / nWorkers) + 100;
    const workers = Array.from({ length: nWorkers }, (_, i) => Child.start(`viewers-${i}`, module('viewer-process.js'), [], { files: perWorker + 100 }));
    children.push(...workers);
    const slowPerMonitor = Math.round(spec.viewersPerMonitor * spec.slowFraction);
    const groups: ViewerGroup[][] = workers.map(() => []);
    const viewersPerEdge = ports.map(() => 0);
    let k = 0; // viewer index over the whole point: viewer k goes to edge k mod N
    if (montage) {
      if (nEdges > 1 || spec.slowFraction > 0) throw new Error(`${name}: a montage point runs one edge and fast viewers only`);
      for (let w = 0; w < nWorkers; w++) {
        const c = Math.floor(viewers / nWorkers) + (w < viewers % nWorkers ? 1 : 0);
        if (c > 0) groups[w].push({ monitorId: null, monitorIds: monitors.map((m) => m.id), count: c, slow: 'none' });
      }
      viewersPerEdge[0] = viewers;
    }
    for (const m of montage ? [] : monitors) {
      const split = (count: number, slow: ViewerGroup['slow']) => {
        if (nEdges === 1) {
          for (let w = 0; w < nWorkers; w++) {
            const c = Math.floor(count / nWorkers) + (w < count % nWorkers ? 1 : 0);
            if (c > 0) groups[w].push({ monitorId: m.id, count: c, slow });
          }
          viewersPerEdge[0] += count;
          return;
        }
        // Round-robin over the edges by viewer index, and over the workers within each edge's share.
        const cells = new Map<string, number>();
        for (let j = 0; j < count; j++, k++) {
          const e = k % nEdges, w = Math.floor(j / nEdges) % nWorkers;
          cells.set(`${w}:${e}`, (cells.get(`${w}:${e}`) ?? 0) + 1);
          viewersPerEdge[e]++;
        }
        for (const [key, c] of cells) {
          const [w, e] = key.split(':').map(Number);
          groups[w].push({ monitorId: m.id, count: c, slow, port: ports[e] });
        }
      };
      split(spec.viewersPerMonitor - slowPerMonitor, 'none');
      split(Math.ceil(slowPerMonitor / 2), 'paused');
      split(Math.floor(slowPerMonitor / 2), 'throttled');
    }
    const t = performance.now();
    const connected = await Promise.all(workers.map((w, i) => w.call<{ connected: number; failed: number; errors: string[] }>('connect', {
      port, protocol: publishMode(spec.system), groups: groups[i],
      throttleBytesPerSecond: spec.throttleBytesPerSecond ?? 64 * 1024, concurrency: 64,
    } satisfies ConnectSpec)));
    const failed = connected.reduce((a, c) => a + c.failed, 0);
    const errors = connected.flatMap((c) => c.errors);
    log(`  ${name}: ${viewers - failed}/${viewers} viewers connected in ${((performance.now() - t) / 1000).toFixed(1)} s${nEdges > 1 ? ` (${viewersPerEdge.join(' + ')} over ${nEdges} edges)` : ''}`);
    // A point with missing viewers measures another load than it claims: stop rather than report it.
    if (failed > 0) throw new Error(`${name}: ${failed} of ${viewers} viewers could not connect (${errors.slice(0, 3).join('; ')})`);
    // Redis's own background work (cron, blocked-client timeouts), to tell it from the cost of packets.
    const idle0 = await redis.sample();
    await sleep(1500);
    const redisIdle = redisDelta(idle0, await redis.sample());
    await publisher.call('start');
    const noFirst = (await Promise.all(workers.map((w) => w.call<number>('waitFirstPacket', 15_000)))).reduce((a, b) => a + b, 0);
    if (noFirst > 0) errors.push(`${noFirst} viewers got no packet before the window`);
    await sleep((spec.warmupSeconds ?? 1) * 1000);

    // Open the window a few packets ahead, then sample as its first packet goes out.
    const fromSeq = (await publisher.call<number>('seq')) + 3;
    await Promise.all(workers.map((w) => w.call('openWindow', fromSeq)));
    await publisher.call('waitSeq', fromSeq);
    const profiling = spec.profileDir ? edge.call('profileStart') : Promise.resolve();
    const threads0 = spec.profileDir ? await edge.call<Record<string, number>>('threads') : {};
    const es0 = await Promise.all(edges.map((e) => e.usage()));
    const [r0, p0, l0, m0] = [await redis.sample(), await publisher.usage(), await Promise.all(workers.map((w) => w.usage())), machineCpu()];
    const c0 = perEdgeReport ? await redis.commandStats() : {};
    await profiling;
    await sleep(spec.seconds * 1000);
    const totals = await publisher.call<PublishTotals>('stop');
    const [r1, p1] = [await redis.sample(), await publisher.usage()];
    const c1 = perEdgeReport ? await redis.commandStats() : {};
    const windows = await Promise.all(workers.map((w) => w.call<WindowStats>('closeWindow', totals.nextSeq, 5000)));
    const es1 = await Promise.all(edges.map((e) => e.usage()));
    const [l1, m1] = [await Promise.all(workers.map((w) => w.usage())), machineCpu()];
    const [e0, e1] = [sumUsage(es0), sumUsage(es1)];
    let profile: PointResult['profile'];
    if (spec.profileDir) {
      mkdirSync(spec.profileDir, { recursive: true });
      const file = join(spec.profileDir, `${name.replace(/[^a-z0-9]+/gi, '-')}.cpuprofile`);
      const threads1 = await edge.call<Record<string, number>>('threads');
      await edge.call('profileStop', file);
      const threads: Record<string, number> = {};
      for (const [name, s] of Object.entries(threads1)) if (s - (threads0[name] ?? 0) > 0) threads[name] = s - (threads0[name] ?? 0);
      profile = { file, ...summarizeProfile(file), threads };
    }
    const edgeLoaded = sumUsage(await Promise.all(edges.map((e) => e.call<Usage>('gc'))));
    const edgeSlow = (await Promise.all(edges.map((e) => e.call<{ closedSlow: number; skippedFrames: number }>('slowCounters'))))
      .reduce((a, s) => ({ closedSlow: a.closedSlow + s.closedSlow, skippedFrames: a.skippedFrames + s.skippedFrames }), { closedSlow: 0, skippedFrames: 0 });
    const commands = await redis.commandStats();

    const windowSeconds = (totals.nextSeq - fromSeq) / spec.fps;
    const packetsInWindow = (totals.nextSeq - fromSeq) * spec.monitors;
    const normal = summarize(windows.map((w) => w.normal), (totals.nextSeq - fromSeq) * (montage ? spec.monitors : 1));
    const slow = slowPerMonitor > 0 ? summarize(windows.map((w) => w.slow), totals.nextSeq - fromSeq) : null;
    const bytes = windows.reduce((a, w) => a + w.normal.bytes + w.slow.bytes, 0);
    const messages = normal.delivered + (slow?.delivered ?? 0);
    const edgeCpu = cpuSeconds(e0, e1);
    const edgeSeconds = windowSeconds; // the drain adds idle time only
    const rd = redisDelta(r0, r1);
    const loadgenCpu = cpuSeconds(sumUsage(l0), sumUsage(l1));
    const publisherCpu = cpuSeconds(p0, p1);
    for (const w of windows) errors.push(...w.normal.errors, ...w.slow.errors);
    let edgeProcesses: EdgeProcesses | undefined;
    if (perEdgeReport) {
      const perEdge = edges.map((_, i): EdgeShare => {
        const cpu = cpuSeconds(es0[i], es1[i]);
        return {
          port: ports[i], viewers: viewersPerEdge[i], cpuSeconds: cpu, cpuPercent: (100 * cpu) / edgeSeconds,
          kernelPercent: (100 * (es1[i].systemUs - es0[i].systemUs)) / 1e6 / cpu, rssLoadedMB: es1[i].rss / 1e6,
        };
      });
      const byName: Record<string, number> = {};
      for (const [cmd, calls] of Object.entries(c1)) {
        const d = calls - (c0[cmd] ?? 0);
        if (d > 0) byName[cmd] = d / rd.seconds;
      }
      edgeProcesses = {
        count: nEdges,
        perEdge,
        maxCpuPercent: Math.max(...perEdge.map((e) => e.cpuPercent)),
        redisReadsPerSecond: (byName.xread ?? 0) + (byName.xreadgroup ?? 0),
        redisCommandsPerSecondByName: byName,
      };
    }
    return {
      system: spec.system,
      label: name,
      monitors: spec.monitors,
      viewers,
      slowViewers: slowPerMonitor * spec.monitors,
      size: spec.size,
      gop: spec.gop,
      fps: spec.fps,
      windowSeconds,
      published: packetsInWindow,
      publisherDropped: totals.dropped,
      normal,
      slow,
      deliveredMessages: messages,
      deliveredMBps: bytes / 1e6 / windowSeconds,
      edge: {
        cpuSeconds: edgeCpu,
        kernelPercent: (100 * (e1.systemUs - e0.systemUs)) / 1e6 / edgeCpu,
        cpuPercent: (100 * edgeCpu) / edgeSeconds,
        cpuSecondsPerGB: bytes > 0 ? edgeCpu / (bytes / 1e9) : NaN,
        usPerMessage: messages > 0 ? (edgeCpu * 1e6) / messages : NaN,
        rssIdleMB: edgeIdle.rss / 1e6,
        rssLoadedMB: e1.rss / 1e6,
        rssPerViewerKB: (e1.rss - edgeIdle.rss) / 1024 / viewers,
        heapPerViewerKB: (edgeLoaded.heapUsed - edgeIdle.heapUsed) / 1024 / viewers,
        ...edgeSlow,
      },
      redis: {
        commandsPerSecond: rd.commandsPerSecond,
        cpuPercent: (100 * rd.cpuSeconds) / rd.seconds,
        cpuMsPerPacket: (rd.cpuSeconds * 1000) / packetsInWindow,
        netCpuMsPerPacket: ((rd.cpuSeconds - (redisIdle.cpuSeconds / redisIdle.seconds) * rd.seconds) * 1000) / packetsInWindow,
        idleCpuPercent: (100 * redisIdle.cpuSeconds) / redisIdle.seconds,
        procCpuMsPerPacket: (rd.procCpuSeconds * 1000) / packetsInWindow,
        commands,
      },
      loadgen: { processes: nWorkers, cpuSeconds: loadgenCpu, cpuPercent: (100 * loadgenCpu) / windowSeconds },
      publisher: { cpuSeconds: publisherCpu, cpuPercent: (100 * publisherCpu) / rd.seconds, lateTicks: totals.lateTicks },
      machineBusyPercent: (100 * (m1.busy - m0.busy)) / (m1.total - m0.total),
      drained: windows.every((w) => w.drained),
      profile,
      ...(edgeProcesses ? { edgeProcesses } : {}),
      errors: [...new Set(errors)].slice(0, 10),
    };
  } finally {
    await Promise.all(children.map((c) => c.stop().catch(() => {})));
    await redis.stop();
  }
}

function summarize(parts: ClassStats[], expectedPerViewer: number): ClassSummary {
  const hist = new Histogram();
  let viewers = 0, delivered = 0, viewersWithLoss = 0, closedByServer = 0, droppedNotices = 0, outOfOrder = 0;
  for (const p of parts) {
    hist.add(p.latency);
    viewers += p.viewers;
    delivered += p.received;
    viewersWithLoss += p.viewersWithLoss;
    closedByServer += p.closedByServer;
    droppedNotices += p.droppedNotices;
    outOfOrder += p.outOfOrder;
  }
  const expected = viewers * expectedPerViewer;
  const ms = (q: number) => hist.quantileUs(q) / 1000;
  return {
    viewers, expected, delivered,
    lost: expected - delivered,
    lossPercent: expected > 0 ? (100 * (expected - delivered)) / expected : 0,
    viewersWithLoss, closedByServer, droppedNotices, outOfOrder,
    latencyMs: { p50: ms(0.5), p90: ms(0.9), p99: ms(0.99), max: ms(1), mean: hist.count > 0 ? hist.sumUs / hist.count / 1000 : NaN },
  };
}
