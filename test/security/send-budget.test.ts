/**
 * A client that stops reading must cost the edge a bounded amount of memory
 * and then be let go, whatever it asks for: one-shot `stream` replies, an
 * events catch-up over the whole history, pongs nobody asked for. The real
 * `zmcast edge` runs as its own process (its RSS is what is measured), and
 * the attackers never read their sockets while they keep sending.
 *
 * Two edges: one with the default ping interval (30 s), so that only the send
 * budget can close a non-reader within the test, and one pinging every 2 s
 * for the pong check alone.
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { monitorKeys } from '../../shared/redis-keys.js';
import { startEdge, type Zmcast } from '../faults/rig.js';
import { PacketSource } from '../helpers/edge.js';
import { parseExposition, sampleSum } from '../helpers/metrics.js';
import { freshRedisUrl } from '../helpers/redis.js';
import { sleep, until } from '../helpers/wait.js';
import { open, isType } from './rig.js';

const PING_MS = 2000;
const KEYFRAME_BYTES = 60_000;
const EVENTS = 10_000;

type Edge = Zmcast & { url: string; adminUrl: string };
let redis: Redis;
let edge: Edge;
let pinging: Edge;

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

async function scrape(e: Edge): Promise<ReturnType<typeof parseExposition>> {
  return parseExposition(await (await fetch(`${e.adminUrl}/metrics`)).text());
}

/** A /ws connection that never reads what the edge sends: its socket is paused from the start. */
async function nonReader(e: Edge): Promise<WebSocket> {
  const ws = new WebSocket(`${e.url.replace('http', 'ws')}/ws`, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('upgrade', (res) => res.socket.pause());
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => {});
  return ws;
}

/** Runs `attack` from `n` non-readers until `e` has closed them all (or `limitMs`), sampling its RSS. */
interface Outcome {
  /** When the edge had closed every attacker (counted under its reason), ms after the attack began. */
  closedAfterMs: number | null;
  /** When their sockets were gone too (a closed slow consumer gets a grace period to read its close frame). */
  releasedAfterMs: number | null;
  baseMiB: number;
  peakMiB: number;
  reasons: Record<string, number>;
}

async function attackUntilClosed(e: Edge, n: number, limitMs: number, attack: (ws: WebSocket) => () => void): Promise<Outcome> {
  const pid = e.child.pid!;
  const clients = async () => sampleSum(await scrape(e), 'zmcast_edge_clients');
  // Connections of an earlier attack may still be in their close grace.
  await until(async () => (await clients()) === 0, 15_000, 'no connection left on the edge');
  const before = await scrape(e);
  const dropped0 = (reason: string) => sampleSum(before, 'zmcast_edge_dropped_clients_total', { reason });
  const sockets = await Promise.all(Array.from({ length: n }, () => nonReader(e)));
  const stops = sockets.map((ws) => attack(ws));
  const baseMiB = rssMiB(pid);
  let peakMiB = baseMiB;
  const t0 = Date.now();
  let closedAfterMs: number | null = null;
  let releasedAfterMs: number | null = null;
  const drops = (m: Awaited<ReturnType<typeof scrape>>) => ['slow_consumer', 'ping_timeout']
    .reduce((sum, reason) => sum + sampleSum(m, 'zmcast_edge_dropped_clients_total', { reason }) - dropped0(reason), 0);
  try {
    while (Date.now() - t0 < limitMs) {
      await sleep(250);
      peakMiB = Math.max(peakMiB, rssMiB(pid));
      const m = await scrape(e);
      if (closedAfterMs === null && drops(m) >= n) closedAfterMs = Date.now() - t0;
      if (sampleSum(m, 'zmcast_edge_clients') === 0) {
        releasedAfterMs = Date.now() - t0;
        break;
      }
    }
  } finally {
    for (const stop of stops) stop();
    for (const ws of sockets) ws.terminate();
  }
  const after = await scrape(e);
  const reasons: Record<string, number> = {};
  for (const reason of ['slow_consumer', 'ping_timeout']) reasons[reason] = sampleSum(after, 'zmcast_edge_dropped_clients_total', { reason }) - dropped0(reason);
  return { closedAfterMs, releasedAfterMs, baseMiB, peakMiB, reasons };
}

beforeAll(async () => {
  const url = await freshRedisUrl();
  redis = new Redis(url);
  const cam = new PacketSource(redis, 1, { gop: 25, size: KEYFRAME_BYTES });
  await cam.register();
  await cam.publish(50);
  // A long events history: what a `since` catch-up from the start has to go through.
  const epoch = await redis.hget(monitorKeys(1).meta, 'epoch');
  const pipe = redis.pipeline();
  for (let i = 0; i < EVENTS; i++) {
    pipe.xadd(monitorKeys(1).events, '*', 'e', JSON.stringify({ event: 'connected', message: `event ${i} ${'x'.repeat(900)}`, time: Date.now(), generation: 1 }), 'h', epoch ?? '');
  }
  await pipe.exec();
  edge = await startEdge(url, { ZMCAST_LOG_LEVEL: 'warn' });
  pinging = await startEdge(url, { ZMCAST_EDGE_PING_INTERVAL_MS: String(PING_MS), ZMCAST_LOG_LEVEL: 'warn' });
});

afterAll(async () => {
  await edge?.kill();
  await pinging?.kill();
  redis?.disconnect();
});

describe('a client that stops reading', () => {
  it('is closed, and costs bounded memory meanwhile, when it asks for one-shot keyframes and sends pongs nobody asked for', async () => {
    const r = await attackUntilClosed(edge, 4, 30_000, (ws) => {
      const commands = setInterval(() => ws.send('{"command":"stream","codec":"auto","monitor_id":1}'), 1000 / 45);
      const pongs = setInterval(() => ws.pong(), 1000);
      return () => { clearInterval(commands); clearInterval(pongs); };
    });
    console.info(`4 non-readers × 45 one-shot keyframes/s (${KEYFRAME_BYTES / 1000} KB) + a pong a second: RSS ${r.baseMiB.toFixed(0)} → peak ${r.peakMiB.toFixed(0)} MiB, ` +
      `closed after ${r.closedAfterMs} ms, sockets released after ${r.releasedAfterMs} ms (${JSON.stringify(r.reasons)})`);
    expect(r.releasedAfterMs, 'every non-reader closed by the edge').not.toBeNull();
    expect(r.reasons).toEqual({ slow_consumer: 4, ping_timeout: 0 });
    // Four send budgets (8 MiB each at most), the kernel's socket buffers and garbage not yet collected;
    // nothing that grows with time (without the budget: 10 MiB more every second).
    expect(r.peakMiB - r.baseMiB).toBeLessThan(128);
  });

  it('is closed when it asks again and again for the whole events history, and the edge reads that history a page at a time', async () => {
    const r = await attackUntilClosed(edge, 4, 30_000, (ws) => {
      const commands = setInterval(() => ws.send('{"command":"subscribe","topic":"events","monitor_id":1,"since":"0-0"}'), 100);
      return () => clearInterval(commands);
    });
    console.info(`4 non-readers × 10 catch-ups/s over ${EVENTS} events (~1 KB): RSS ${r.baseMiB.toFixed(0)} → peak ${r.peakMiB.toFixed(0)} MiB, ` +
      `closed after ${r.closedAfterMs} ms, sockets released after ${r.releasedAfterMs} ms (${JSON.stringify(r.reasons)})`);
    expect(r.releasedAfterMs, 'every non-reader closed by the edge').not.toBeNull();
    expect(r.reasons).toEqual({ slow_consumer: 4, ping_timeout: 0 });
    expect(r.peakMiB - r.baseMiB).toBeLessThan(128);
  });

  it('does not stop a reader from getting the whole history, in order, each event once', async () => {
    const c = await open(edge.url, '/ws');
    await c.waitFor(isType('hello'));
    c.send({ command: 'subscribe', topic: 'events', monitor_id: 1, since: '0-0' });
    await until(() => c.messages.filter(isType('event')).length >= EVENTS, 20_000, `${EVENTS} events`);
    await sleep(200);
    const ids = c.messages.filter(isType('event')).map((m) => m.id as string);
    expect(ids).toHaveLength(EVENTS);
    expect(new Set(ids).size).toBe(EVENTS);
    const all = (await redis.xrange(monitorKeys(1).events, '-', '+')).map(([id]) => id);
    expect(ids).toEqual(all);
    c.ws.close();
  });

  it('cannot stay connected with pongs the edge did not ask for', async () => {
    const r = await attackUntilClosed(pinging, 1, 4 * PING_MS + 1000, (ws) => {
      const pongs = setInterval(() => ws.pong(Buffer.from('not-your-ping')), 300);
      return () => clearInterval(pongs);
    });
    expect(r.releasedAfterMs, 'dropped within two ping intervals').not.toBeNull();
    expect(r.releasedAfterMs!).toBeLessThan(2 * PING_MS + 1000);
    expect(r.reasons).toEqual({ slow_consumer: 0, ping_timeout: 1 });
  });
});
