/**
 * Idle connections: memory per connected viewer that watches nothing, at
 * 10,000 sockets (the edge's open-files limit is raised for it when the
 * shell allows). Measured after a forced GC on both sides of the connects.
 */
import { Rig, sleep } from '../lib/rig.js';
import { fileLimits } from '../lib/child.js';
import type { BenchOptions } from './options.js';

export interface IdleResult {
  system: string;
  connections: number;
  failed: number;
  connectSeconds: number;
  rssPerConnectionKB: number;
  heapPerConnectionKB: number;
  rssIdleMB: number;
  rssLoadedMB: number;
}

export async function idle(o: BenchOptions): Promise<IdleResult[]> {
  const n = o.idleConnections;
  const limits = fileLimits();
  if (limits.hard < n + 500) o.log(`  open-files hard limit ${limits.hard} < ${n + 500}: expect failed connections (raise it with ulimit -Hn as root)`);
  const out: IdleResult[] = [];
  for (const system of o.systems) {
    const rig = await Rig.start(system, n + 1000);
    try {
      const workers = rig.viewers(4, Math.ceil(n / 4) + 200);
      await sleep(300);
      const before = await rig.edgeGc();
      const t = performance.now();
      const res = await Promise.all(workers.map((w, i) => w.call<{ connected: number; failed: number }>('connect', {
        port: rig.port, protocol: system === 'socketio' ? 'socketio' : 'zmcast', throttleBytesPerSecond: 0, concurrency: 32,
        groups: [{ monitorId: null, count: Math.floor(n / 4) + (i < n % 4 ? 1 : 0), slow: 'none' }],
      })));
      const connectSeconds = (performance.now() - t) / 1000;
      await sleep(1000);
      const after = await rig.edgeGc();
      const connected = res.reduce((a, r) => a + r.connected, 0);
      const r: IdleResult = {
        system, connections: connected, failed: n - connected, connectSeconds,
        rssPerConnectionKB: (after.rss - before.rss) / 1024 / connected,
        heapPerConnectionKB: (after.heapUsed - before.heapUsed) / 1024 / connected,
        rssIdleMB: before.rss / 1e6, rssLoadedMB: after.rss / 1e6,
      };
      o.log(`  ${system}: ${connected} idle connections (${r.failed} failed) in ${connectSeconds.toFixed(1)} s: ` +
        `${r.rssPerConnectionKB.toFixed(1)} KB RSS, ${r.heapPerConnectionKB.toFixed(1)} KB heap per connection`);
      out.push(r);
    } finally {
      await rig.stop();
    }
  }
  return out;
}
