/**
 * Capture density: how many passthrough monitors one capture core carries.
 * The real capture service plays N copies of a camera-like clip (looped file,
 * demuxed and never decoded, real-time pace) into Redis; N grows until the
 * capture process nears a full core or stops keeping up. The publish path
 * alone (Publisher, no demuxing) is measured the same way for comparison.
 */
import { Child } from '../lib/child.js';
import { RedisServer, redisDelta } from '../lib/redis-server.js';
import { benchModule, sleep } from '../lib/rig.js';
import { makeClip } from '../lib/media.js';
import type { BenchOptions } from './options.js';

export interface DensityLevel {
  path: 'capture' | 'publish-only';
  monitors: number;
  packetsPerSecond: number;
  expectedPerSecond: number;
  dropped: number;
  cpuPercent: number;
  redisCpuPercent: number;
  /** Monitors one core would carry at this level's cost per monitor. */
  monitorsPerCore: number;
}

export interface DensityResult {
  clip: { width: number; height: number; fps: number; gop: number; kbps: number };
  levels: DensityLevel[];
  /** The largest measured level that kept up, and the per-core figure from it. */
  capture: { carried: number; monitorsPerCore: number } | null;
  publishOnly: { carried: number; monitorsPerCore: number } | null;
}

const MEASURE_S = 5;

export async function captureDensity(o: BenchOptions, levels: number[]): Promise<DensityResult> {
  const clip = makeClip({ width: 1280, height: 720, fps: o.fps, gop: o.gop, kbps: Math.round((o.size * 8 * o.fps) / 1000), seconds: 10 });
  const out: DensityLevel[] = [];
  for (const path of ['capture', 'publish-only'] as const) {
    for (const n of levels) {
      const level = await measure(path, n, clip.path, o);
      out.push(level);
      o.log(`  ${path} ${n} monitors: ${level.packetsPerSecond.toFixed(0)}/${level.expectedPerSecond} packets/s, ` +
        `${level.cpuPercent.toFixed(0)}% of a core (${level.monitorsPerCore.toFixed(0)} monitors/core), dropped ${level.dropped}, redis ${level.redisCpuPercent.toFixed(0)}%`);
      if (!keptUp(level) || level.cpuPercent > 85) break;
    }
  }
  const best = (path: DensityLevel['path']) => {
    const ok = out.filter((l) => l.path === path && keptUp(l));
    const top = ok[ok.length - 1];
    return top ? { carried: top.monitors, monitorsPerCore: top.monitorsPerCore } : null;
  };
  const { path: _p, ...clipInfo } = clip;
  return { clip: clipInfo, levels: out, capture: best('capture'), publishOnly: best('publish-only') };
}

function keptUp(l: DensityLevel): boolean {
  return l.packetsPerSecond >= 0.97 * l.expectedPerSecond && l.dropped === 0;
}

async function measure(path: DensityLevel['path'], n: number, clipPath: string, o: BenchOptions): Promise<DensityLevel> {
  const redis = await RedisServer.start();
  let child: Child | null = null;
  try {
    let packets: () => Promise<{ packets: number; dropped: number }>;
    if (path === 'capture') {
      child = Child.start('capture', benchModule('capture-process.js'), [redis.url], { files: 4 * n + 500 });
      await child.call('start', Array.from({ length: n }, (_, i) => ({ id: i + 1, name: `Clip ${i + 1}`, source: clipPath })));
      const c = child;
      packets = () => c.call('counters');
    } else {
      child = Child.start('publisher', benchModule('publisher-process.js'), ['zmcast', redis.url]);
      await child.call('setup', { monitors: Array.from({ length: n }, (_, i) => ({ id: i + 1, gop: o.gop })), size: o.size, fps: o.fps });
      await child.call('start');
      const c = child;
      packets = async () => {
        const t = await c.call<{ published: number; dropped: number }>('totals');
        return { packets: t.published, dropped: t.dropped };
      };
    }
    await sleep(2000);
    const [u0, c0, r0] = [await child.usage(), await packets(), await redis.sample()];
    await sleep(MEASURE_S * 1000);
    const [u1, c1, r1] = [await child.usage(), await packets(), await redis.sample()];
    const rd = redisDelta(r0, r1);
    const cpu = (u1.userUs - u0.userUs + u1.systemUs - u0.systemUs) / 1e6 / rd.seconds;
    return {
      path, monitors: n,
      packetsPerSecond: (c1.packets - c0.packets) / rd.seconds,
      expectedPerSecond: n * o.fps,
      dropped: c1.dropped - c0.dropped,
      cpuPercent: 100 * cpu,
      redisCpuPercent: (100 * rd.cpuSeconds) / rd.seconds,
      monitorsPerCore: n / cpu,
    };
  } finally {
    if (child) {
      await child.call('stop').catch(() => {});
      await child.stop();
    }
    await redis.stop();
  }
}
