/**
 * Slow viewers: the same load twice, once with every viewer reading at full
 * speed and once with 10% of them stuck (half never read, half read at
 * 64 KB/s). What matters is that the other 90% see the same latency and no
 * loss; the slow ones are skipped to keyframes, then closed, by their budget.
 */
import { runLoadPoint, type PointResult } from '../lib/load-point.js';
import { describe } from './fanout.js';
import type { BenchOptions } from './options.js';

export interface SlowResult {
  system: string;
  viewers: number;
  control: PointResult;
  withSlow: PointResult;
  /** Fast viewers' p99 with slow viewers ÷ without. */
  p99Ratio: number;
  fastLossWithSlow: number;
}

export async function slow(o: BenchOptions, viewers: number): Promise<SlowResult[]> {
  const out: SlowResult[] = [];
  const seconds = Math.max(o.seconds, 15); // long enough for stuck viewers to hit their budget
  for (const system of o.systems) {
    const base = { system, monitors: 1, viewersPerMonitor: viewers, size: o.size, gop: o.gop, fps: o.fps, seconds };
    const control = await runLoadPoint({ ...base, slowFraction: 0 }, o.log);
    o.log(`  ${control.label}: ${describe(control)}`);
    const withSlow = await runLoadPoint({ ...base, slowFraction: 0.1 }, o.log);
    o.log(`  ${withSlow.label}: ${describe(withSlow)}`);
    const s = withSlow.slow;
    if (s) o.log(`    slow viewers: ${s.delivered}/${s.expected} packets; the edge closed ${withSlow.edge.closedSlow} as slow and skipped ${withSlow.edge.skippedFrames} packets for them`);
    out.push({
      system, viewers, control, withSlow,
      p99Ratio: withSlow.normal.latencyMs.p99 / control.normal.latencyMs.p99,
      fastLossWithSlow: withSlow.normal.lost,
    });
  }
  return out;
}
