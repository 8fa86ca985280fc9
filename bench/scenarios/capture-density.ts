/**
 * Capture density: how many passthrough monitors one capture core carries.
 * The real capture service plays N copies of a camera-like clip (looped file,
 * demuxed and never decoded, real-time pace) into Redis; N grows until the
 * capture process nears a full core or stops keeping up, for a 2 and a
 * 4 Mbit/s clip. The publish path alone (Publisher, no demuxing) is measured
 * the same way, from 1 monitor up, and gives Redis's CPU per published packet
 * (with 1, 20 and 200 monitors among the levels).
 */
import { Child } from '../lib/child.js';
import { RedisServer, redisDelta } from '../lib/redis-server.js';
import { benchModule, sleep } from '../lib/rig.js';
import { makeClip } from '../lib/media.js';
import type { BenchOptions } from './options.js';

export interface DensityLevel {
  path: 'capture' | 'publish-only';
  /** Stream bitrate: the clip's for capture, the synthetic payload's for publish-only. */
  kbps: number;
  monitors: number;
  packetsPerSecond: number;
  expectedPerSecond: number;
  dropped: number;
  cpuPercent: number;
  redisCpuPercent: number;
  /** Redis CPU per published packet, ms; and the same less Redis's idle rate (measured before publishing). */
  redisMsPerPacket: number;
  redisNetMsPerPacket: number;
  /** Monitors one core would carry at this level's cost per monitor. */
  monitorsPerCore: number;
}

type ClipInfo = { width: number; height: number; fps: number; gop: number; kbps: number };

export interface DensityResult {
  clips: ClipInfo[];
  levels: DensityLevel[];
  /** Per clip bitrate: the largest measured level that kept up, and the per-core figure from it. */
  capture: { kbps: number; carried: number; monitorsPerCore: number }[];
  publishOnly: { carried: number; monitorsPerCore: number } | null;
}

const MEASURE_S = 5;
/** Camera bitrates the capture path is measured at. */
const CLIP_KBPS = [2000, 4000];
/** Publish-only levels always measured, for Redis CPU per packet. */
const REDIS_LEVELS = [1, 20, 200];

export async function captureDensity(o: BenchOptions, levels: number[]): Promise<DensityResult> {
  const clips = CLIP_KBPS.map((kbps) => makeClip({ width: 1280, height: 720, fps: o.fps, gop: o.gop, kbps, seconds: 10 }));
  const out: DensityLevel[] = [];
  const run = async (path: DensityLevel['path'], list: number[], clip: ClipInfo & { path: string } | null) => {
    for (const n of list) {
      const level = await measure(path, n, clip, o);
      out.push(level);
      o.log(`  ${path} ${level.kbps} kb/s ${n} monitors: ${level.packetsPerSecond.toFixed(0)}/${level.expectedPerSecond} packets/s, ` +
        `${level.cpuPercent.toFixed(0)}% of a core (${level.monitorsPerCore.toFixed(0)} monitors/core), dropped ${level.dropped}, ` +
        `redis ${level.redisCpuPercent.toFixed(0)}% (${level.redisMsPerPacket.toFixed(3)} ms/pkt, ${level.redisNetMsPerPacket.toFixed(3)} net of idle)`);
      if (!keptUp(level) || level.cpuPercent > 85) break;
    }
  };
  for (const clip of clips) await run('capture', levels, clip);
  await run('publish-only', [...new Set([...REDIS_LEVELS, ...levels])].sort((a, b) => a - b), null);
  const best = (path: DensityLevel['path'], kbps?: number) => {
    const ok = out.filter((l) => l.path === path && (kbps === undefined || l.kbps === kbps) && keptUp(l));
    return ok[ok.length - 1] ?? null;
  };
  const topPublish = best('publish-only');
  return {
    clips: clips.map(({ path: _p, ...info }) => info),
    levels: out,
    capture: clips.flatMap((c) => {
      const top = best('capture', c.kbps);
      return top ? [{ kbps: c.kbps, carried: top.monitors, monitorsPerCore: top.monitorsPerCore }] : [];
    }),
    publishOnly: topPublish ? { carried: topPublish.monitors, monitorsPerCore: topPublish.monitorsPerCore } : null,
  };
}

function keptUp(l: DensityLevel): boolean {
  return l.packetsPerSecond >= 0.97 * l.expectedPerSecond && l.dropped === 0;
}

async function measure(path: DensityLevel['path'], n: number, clip: ClipInfo & { path: string } | null, o: BenchOptions): Promise<DensityLevel> {
  const redis = await RedisServer.start();
  let child: Child | null = null;
  let idle: ReturnType<typeof redisDelta> | null = null;
  try {
    let packets: () => Promise<{ packets: number; dropped: number }>;
    if (path === 'capture') {
      child = Child.start('capture', benchModule('capture-process.js'), [redis.url], { files: 4 * n + 500 });
      await child.call('start', Array.from({ length: n }, (_, i) => ({ id: i + 1, name: `Clip ${i + 1}`, source: clip!.path })));
      const c = child;
      packets = () => c.call('counters');
    } else {
      child = Child.start('publisher', benchModule('publisher-process.js'), ['zmcast', redis.url]);
      // Redis's own background rate before any packet, to tell it from the packets' cost.
      const i0 = await redis.sample();
      await sleep(1500);
      idle = redisDelta(i0, await redis.sample());
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
    const published = c1.packets - c0.packets;
    const idleCpu = idle ? (idle.cpuSeconds / idle.seconds) * rd.seconds : NaN;
    return {
      path, monitors: n,
      kbps: clip ? clip.kbps : Math.round((o.size * 8 * o.fps) / 1000),
      packetsPerSecond: (c1.packets - c0.packets) / rd.seconds,
      expectedPerSecond: n * o.fps,
      dropped: c1.dropped - c0.dropped,
      cpuPercent: 100 * cpu,
      redisCpuPercent: (100 * rd.cpuSeconds) / rd.seconds,
      redisMsPerPacket: (rd.cpuSeconds * 1000) / published,
      redisNetMsPerPacket: ((rd.cpuSeconds - idleCpu) * 1000) / published,
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
