/**
 * Montage sockets: viewers that each watch 16 monitors on one `/ws` socket,
 * with the edge's write coalescing (edge.coalesceMs) off and on, interleaved
 * in one run so the two share the machine's state. Coalescing trades up to
 * its window in latency for one write per window instead of one per monitor
 * per frame.
 */
import { runLoadPoint, type PointResult } from '../lib/load-point.js';
import { describe } from './fanout.js';
import type { BenchOptions } from './options.js';

export interface CoalesceResults {
  points: PointResult[];
  /** With coalescing ÷ without, per run: below 1 means coalescing spends less. */
  ratios: { run: number; cpuPerGB: number; p50: number; p99: number }[];
}

export const MONTAGE_MONITORS = 16;
/** A montage tile's sub-stream (≈800 kbit/s at 25 fps), not a main stream: 200 × 16 main streams would be 1.6 GB/s. */
const TILE_BYTES = 4000;
const WINDOWS_MS = [0, 5];

export async function coalesce(o: BenchOptions, viewers = 200): Promise<CoalesceResults> {
  const points: PointResult[] = [];
  const ratios: CoalesceResults['ratios'] = [];
  for (let run = 1; run <= o.repeat; run++) {
    const pair: PointResult[] = [];
    for (const coalesceMs of WINDOWS_MS) {
      const p = await runLoadPoint({
        system: 'zmcast', monitors: MONTAGE_MONITORS, viewersPerMonitor: 0, montageViewers: viewers, coalesceMs,
        slowFraction: 0, size: TILE_BYTES, gop: o.gop, fps: o.fps, seconds: o.seconds,
      }, o.log);
      if (o.repeat > 1) p.run = run;
      o.log(`  ${p.label}${p.run ? ` run ${p.run}` : ''}: ${describe(p)}`);
      points.push(p);
      pair.push(p);
    }
    const [off, on] = pair;
    ratios.push({
      run,
      cpuPerGB: on.edge.cpuSecondsPerGB / off.edge.cpuSecondsPerGB,
      p50: on.normal.latencyMs.p50 / off.normal.latencyMs.p50,
      p99: on.normal.latencyMs.p99 / off.normal.latencyMs.p99,
    });
  }
  return { points, ratios };
}
