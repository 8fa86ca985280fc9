/**
 * Fan-out: one monitor watched by more and more viewers, then 20 monitors ×
 * 50 viewers; the baselines run the same loads in the same run so the
 * zmcast/baseline ratios hold on a noisy machine.
 */
import { join } from 'node:path';
import { runLoadPoint, type PointResult } from '../lib/load-point.js';
import type { BenchOptions } from './options.js';

export interface FanoutResults {
  points: PointResult[];
  ratios: Ratio[];
}

export interface Ratio {
  load: string;
  baseline: string;
  /** zmcast ÷ baseline: below 1 means zmcast spends less. */
  cpuPerGB: number;
  p99: number;
  redisCommandsPerSecond: number;
  redisCpuPerPacket: number;
  rssPerViewer: number;
}

/**
 * Packets one monitor publishes before the edge's per-packet path runs as
 * optimized code: `--trace-opt` at 25 fps (2026-12-01) put the last of it
 * (the read callback, `gapBefore`, `remember`) 84–105 s after the viewers joined.
 */
const WARM_PACKETS = 2_600;

export async function fanout(o: BenchOptions): Promise<FanoutResults> {
  const loads: { monitors: number; viewersPerMonitor: number; baselines: boolean }[] = [
    ...o.viewers.map((v) => ({ monitors: 1, viewersPerMonitor: v, baselines: o.baselineViewers.includes(v) })),
    ...(o.grid ? [{ ...o.grid, baselines: o.baselineViewers.length > 0 }] : []),
  ];
  const points: PointResult[] = [];
  if (o.systems.includes('zmcast') && o.viewers.length > 0 && o.warmup * o.fps < WARM_PACKETS) {
    o.log(`  note: V8 optimizes the edge's per-packet code after about ${WARM_PACKETS} packets of a monitor (${Math.round(WARM_PACKETS / o.fps)} s at ${o.fps} fps); ` +
      `with --warmup ${o.warmup} the one-monitor points measure an edge still warming up (docs/performance.md, "steady state")`);
  }
  // Only a run that asks for edge counts (other than the default single edge) reports per-edge shares.
  const perEdge = o.edges.some((n) => n !== 1);
  const edgeCounts = perEdge ? o.edges : [1];
  for (const load of loads) {
    // Repeats interleave the systems (a b a b), so a slow drift of the machine's load hits both alike.
    for (let run = 0; run < o.repeat; run++) {
      for (const system of o.systems) {
        if (system !== 'zmcast' && !load.baselines) continue;
        if (system === 'floor' && load.monitors > 1) continue; // the floor is about socket writes, one stream is enough
        for (const edges of edgeCounts) {
          const p = await runLoadPoint({
            system, ...load, slowFraction: 0, size: o.size, gop: o.gop, fps: o.fps, seconds: o.seconds, warmupSeconds: o.warmup,
            profileDir: o.profile && (system === 'zmcast' || system === 'sockwrite' || system === 'ref') ? join(o.resultsDir, 'profiles') : undefined,
            ...(perEdge ? { edges } : {}),
          }, o.log);
          if (o.repeat > 1) p.run = run + 1;
          o.log(`  ${p.label}${p.run ? ` run ${p.run}` : ''}: ${describe(p)}`);
          points.push(p);
        }
      }
    }
  }
  return { points, ratios: ratios(points) };
}

export function describe(p: PointResult): string {
  return `loss ${p.normal.lost} (${p.normal.lossPercent.toFixed(3)}%), p50 ${p.normal.latencyMs.p50.toFixed(1)} ms, ` +
    `p99 ${p.normal.latencyMs.p99.toFixed(1)} ms, max ${p.normal.latencyMs.max.toFixed(0)} ms, ${p.deliveredMBps.toFixed(0)} MB/s, ` +
    `edge ${p.edge.cpuSecondsPerGB.toFixed(2)} CPU-s/GB (${p.edge.cpuPercent.toFixed(0)}% core, ${p.edge.kernelPercent.toFixed(0)}% kernel), ${p.edge.rssPerViewerKB.toFixed(1)} KB/viewer, ` +
    `redis ${p.redis.commandsPerSecond.toFixed(0)} cmd/s ${p.redis.cpuMsPerPacket.toFixed(3)} ms/pkt (${p.redis.netCpuMsPerPacket.toFixed(3)} net of idle), ` +
    `loadgen ${p.loadgen.cpuPercent.toFixed(0)}%, machine ${p.machineBusyPercent.toFixed(0)}% busy` +
    (p.edgeProcesses ? `; ${p.edgeProcesses.count} edge${p.edgeProcesses.count === 1 ? "" : "s"}: ${p.edgeProcesses.perEdge.map((e) => `${e.cpuPercent.toFixed(0)}%`).join(' + ')} core ` +
      `(max ${p.edgeProcesses.maxCpuPercent.toFixed(0)}%), redis ${p.edgeProcesses.redisReadsPerSecond.toFixed(0)} XREAD/s` : '');
}

/** Edge processes a point ran (1 unless `--edges`). */
export const edgeCount = (p: PointResult): number => p.edgeProcesses?.count ?? 1;

function ratios(points: PointResult[]): Ratio[] {
  const out: Ratio[] = [];
  for (const z of points.filter((p) => p.system === 'zmcast')) {
    for (const b of points.filter((p) => p.system !== 'zmcast' && p.monitors === z.monitors && p.viewers === z.viewers && edgeCount(p) === edgeCount(z) && p.run === z.run)) {
      out.push({
        load: `${z.monitors}x${z.viewers / z.monitors}${edgeCount(z) > 1 ? ` ${edgeCount(z)} edges` : ''}${z.run ? ` run ${z.run}` : ''}`,
        baseline: b.system,
        cpuPerGB: z.edge.cpuSecondsPerGB / b.edge.cpuSecondsPerGB,
        p99: z.normal.latencyMs.p99 / b.normal.latencyMs.p99,
        redisCommandsPerSecond: z.redis.commandsPerSecond / b.redis.commandsPerSecond,
        redisCpuPerPacket: z.redis.cpuMsPerPacket / b.redis.cpuMsPerPacket,
        rssPerViewer: z.edge.rssPerViewerKB / b.edge.rssPerViewerKB,
      });
    }
  }
  return out;
}
