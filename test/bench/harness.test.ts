import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';

// The harness runs as compiled processes (edge, publisher, viewers), so the test drives the built bench.
type LoadPoint = typeof import('../../bench/lib/load-point.js');
let bench: LoadPoint;

beforeAll(async () => {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'bench/tsconfig.json'], { stdio: 'inherit' });
  bench = (await import('../../dist/bench/lib/load-point.js' as string)) as LoadPoint;
});

const tiny = { monitors: 1, viewersPerMonitor: 5, slowFraction: 0, size: 2000, gop: 25, fps: 25, seconds: 2 } as const;

describe('bench harness', () => {
  it('measures a tiny zmcast load with sane numbers and no loss', async () => {
    const r = await bench.runLoadPoint({ system: 'zmcast', ...tiny });
    expect(r.viewers).toBe(5);
    expect(r.published).toBeGreaterThanOrEqual(40);
    expect(r.publisherDropped).toBe(0);
    expect(r.normal.expected).toBe(5 * r.published);
    expect(r.normal.lost).toBe(0);
    expect(r.normal.delivered).toBe(r.normal.expected);
    expect(r.normal.outOfOrder).toBe(0);
    expect(r.normal.latencyMs.p50).toBeGreaterThan(0);
    expect(r.normal.latencyMs.p99).toBeLessThan(1000);
    expect(r.normal.latencyMs.max).toBeGreaterThanOrEqual(r.normal.latencyMs.p99);
    expect(r.deliveredMBps).toBeGreaterThan(0);
    expect(r.edge.cpuSeconds).toBeGreaterThan(0);
    expect(Number.isFinite(r.edge.cpuSecondsPerGB)).toBe(true);
    expect(r.edge.rssLoadedMB).toBeGreaterThan(0);
    expect(r.redis.commandsPerSecond).toBeGreaterThan(0);
    expect(r.redis.cpuMsPerPacket).toBeGreaterThan(0);
    expect(r.redis.commands.evalsha).toBeGreaterThan(0);
    expect(r.loadgen.processes).toBeGreaterThanOrEqual(1);
  });

  it('drives the Socket.IO baseline with the same load generator', async () => {
    const r = await bench.runLoadPoint({ system: 'socketio', ...tiny, viewersPerMonitor: 3 });
    expect(r.normal.lost).toBe(0);
    expect(r.normal.delivered).toBe(3 * r.published);
    expect(r.redis.commands.xadd).toBeGreaterThan(0);
  });

  it('drives nginx + nchan (Redis mode) with the same viewers and payloads, counting nginx\'s CPU as the edge\'s', async () => {
    const { ensureNchan } = (await import('../../dist/bench/baselines/nchan.js' as string)) as typeof import('../../bench/baselines/nchan.js');
    ensureNchan(() => {});
    const r = await bench.runLoadPoint({ system: 'nchan', ...tiny, viewersPerMonitor: 3 });
    expect(r.normal.lost).toBe(0);
    expect(r.normal.delivered).toBe(3 * r.published);
    expect(r.normal.outOfOrder).toBe(0);
    expect(r.edge.cpuSeconds).toBeGreaterThan(0);
    expect(r.edge.rssLoadedMB).toBeGreaterThan(0);
    expect(r.redis.commandsPerSecond).toBeGreaterThan(0); // nchan's Redis mode: the packets went through Redis
  });

  it('measures a montage socket: every viewer gets every monitor\'s packets, each monitor in order', async () => {
    const r = await bench.runLoadPoint({ system: 'zmcast', ...tiny, monitors: 3, viewersPerMonitor: 0, montageViewers: 4, coalesceMs: 5 });
    expect(r.viewers).toBe(4);
    expect(r.normal.expected).toBe(4 * r.published);
    expect(r.normal.lost).toBe(0);
    expect(r.normal.outOfOrder).toBe(0);
  });
});
