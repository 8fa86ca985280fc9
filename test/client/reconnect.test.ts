/**
 * Clients come back by themselves: real capture and edge processes on a real
 * Redis, edges killed with SIGKILL, drained with SIGTERM, frozen with
 * SIGSTOP, refusing credentials; the reconnecting client, `zmcast watch` and
 * the live-view page must carry on (or stop, when retrying cannot help).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ReconnectingClient, type EventsGap, type Reconnecting } from '../../client/reconnecting-client.js';
import type { ReceivedPacket } from '../../client/zmcast-client.js';
import { mintToken } from '../../shared/auth/index.js';
import { monitorKeys } from '../../shared/redis-keys.js';
import { freePort } from '../../shared/redis-locator.js';
import type { CodecReply, EventReply } from '../../shared/protocol.js';
import { freshRedisUrl } from '../helpers/redis.js';
import { sleep, until } from '../helpers/wait.js';
import { BIN, Processes, type EdgeProcess } from './zmcast-processes.js';

const MONITOR = 1;
const procs = new Processes();
const clients: ReconnectingClient[] = [];
let redisUrl: string;
let redis: Redis;

beforeAll(async () => {
  redisUrl = await freshRedisUrl();
  redis = new Redis(redisUrl);
  await procs.capture(redisUrl, `${MONITOR}=synthetic:?size=320x240&fps=25&gop=25`);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  procs.killAll();
  redis?.disconnect();
});

/** What a client saw, in arrival order, for assertions on sequences. */
interface Seen {
  timeline: ({ kind: 'codec'; at: number; c: CodecReply } | { kind: 'packet'; at: number; p: ReceivedPacket } | { kind: 'reconnected'; at: number; url: string })[];
  events: EventReply[];
  statusTimes: number[];
  reconnecting: Reconnecting[];
  eventsAcks: number;
}

function record(client: ReconnectingClient): Seen {
  const seen: Seen = { timeline: [], events: [], statusTimes: [], reconnecting: [], eventsAcks: 0 };
  client.on('codec', (c) => seen.timeline.push({ kind: 'codec', at: Date.now(), c }));
  client.on('packet', (p) => seen.timeline.push({ kind: 'packet', at: p.receivedAt, p }));
  client.on('reconnected', ({ url }) => seen.timeline.push({ kind: 'reconnected', at: Date.now(), url }));
  client.on('event', (e) => seen.events.push(e));
  client.on('status', () => seen.statusTimes.push(Date.now()));
  client.on('reconnecting', (r) => seen.reconnecting.push(r));
  client.on('ack', (a) => { if (a.topic === 'events') seen.eventsAcks++; });
  return seen;
}

function start(urls: string[], opts: Parameters<typeof ReconnectingClient.start>[1] = {}): ReconnectingClient {
  const client = ReconnectingClient.start(urls, opts);
  clients.push(client);
  return client;
}

/** The video after the last reconnect (it must start with a codec message, then a keyframe); empty before one. */
function afterReconnect(seen: Seen) {
  const from = seen.timeline.map((t) => t.kind).lastIndexOf('reconnected');
  const rest = from < 0 ? [] : seen.timeline.slice(from + 1);
  const firstPacket = rest.find((t) => t.kind === 'packet');
  return { first: rest[0], firstPacket: firstPacket?.kind === 'packet' ? firstPacket : undefined };
}

const packetCount = (seen: Seen) => seen.timeline.filter((x) => x.kind === 'packet').length;
/** Packets that arrived before the loss was noticed do not count: only video on the new connection. */
const videoAgain = (client: ReconnectingClient, seen: Seen) => client.reconnects === 1 && afterReconnect(seen).firstPacket !== undefined;

const KEYS = monitorKeys(MONITOR);
const currentEpoch = () => redis.hget(KEYS.meta, 'epoch');

/**
 * Appends an event as capture does (shared/commands/event-3.lua: field `e`
 * the JSON, `h` the epoch of the monitor's history); resolves with its id.
 */
async function appendEvent(n: number, id = '*'): Promise<string> {
  const json = JSON.stringify({ event: 'test', message: String(n), time: Date.now(), generation: 1 });
  const epoch = await currentEpoch();
  return (await redis.xadd(KEYS.events, id, 'e', json, ...(epoch ? ['h', epoch] : [])))!;
}

describe('reconnecting client', () => {
  let edge1: EdgeProcess;
  let edge2: EdgeProcess;

  it('edge killed with SIGKILL: moves to the other edge, every event exactly once and in order, video restarts at a keyframe', async () => {
    [edge1, edge2] = await Promise.all([procs.edge(redisUrl), procs.edge(redisUrl)]);
    const client = start([edge1.url, edge2.url]);
    const seen = record(client);
    client.subscribeStream(MONITOR);
    client.subscribeEvents(MONITOR);
    await until(() => seen.eventsAcks === 1 && packetCount(seen) > 10, 20_000, 'video and the events subscription on edge 1');
    expect(client.url).toBe(edge1.url);

    const appended: string[] = [];
    let n = 0;
    for (; n < 10; n++) appended.push(await appendEvent(n));
    await until(() => seen.events.length === 10, 5_000, 'the events appended while connected');

    // Events keep coming during the outage: some at the very moment the loss is noticed, some all along.
    const inOutage: Promise<string>[] = [];
    client.once('reconnecting', () => { for (let i = 0; i < 3; i++) inOutage.push(appendEvent(n++)); });
    let appending = true;
    const appender = (async () => {
      while (appending) {
        await sleep(30);
        if (inOutage.length > 0) appended.push(...(await Promise.all(inOutage.splice(0))));
        appended.push(await appendEvent(n++));
      }
    })();

    const killedAt = Date.now();
    edge1.child.kill('SIGKILL');
    await until(() => videoAgain(client, seen), 10_000, 'video from edge 2');
    const recoveryMs = afterReconnect(seen).firstPacket!.at - killedAt;
    await sleep(500);
    appending = false;
    await appender;
    await until(() => seen.events.length >= appended.length, 5_000, 'every appended event');
    await sleep(300); // a duplicate would arrive now

    console.log(`SIGKILL drill: kill → first packet on edge 2 in ${recoveryMs} ms; ${appended.length} events, ${n - 10} after the kill`);
    expect(seen.reconnecting[0]).toMatchObject({ attempt: 1, code: 1006, url: edge2.url });
    expect(client.url).toBe(edge2.url);
    expect(seen.events.map((e) => e.id)).toEqual(appended);
    expect(seen.events.map((e) => e.message)).toEqual(appended.map((_, i) => String(i)));
    expect(new Set(seen.events.map((e) => e.epoch))).toEqual(new Set([await currentEpoch()]));
    const { first, firstPacket } = afterReconnect(seen);
    expect(first.kind).toBe('codec');
    expect(firstPacket?.p.keyframe).toBe(true);
    expect(recoveryMs).toBeLessThan(5_000);
  });

  it('edge drained with SIGTERM: close 1012, the client moves on with its subscriptions, the edge exits promptly', async () => {
    const edge3 = await procs.edge(redisUrl);
    const client = start([edge2.url, edge3.url]);
    const seen = record(client);
    client.subscribeStream(MONITOR);
    client.subscribeStatus(MONITOR, 200);
    await until(() => packetCount(seen) > 10, 20_000, 'video on edge 2');
    expect(client.url).toBe(edge2.url);

    const termAt = Date.now();
    edge2.child.kill('SIGTERM');
    await until(() => videoAgain(client, seen), 10_000, 'video from edge 3');
    const recoveryMs = afterReconnect(seen).firstPacket!.at - termAt;
    const code = await Promise.race([edge2.exited, sleep(5_000).then(() => 'still running')]);
    const exitMs = Date.now() - termAt;

    console.log(`SIGTERM drill: close ${seen.reconnecting[0]?.code}, first packet on edge 3 in ${recoveryMs} ms, edge exited in ${exitMs} ms`);
    expect(seen.reconnecting[0]).toMatchObject({ attempt: 1, code: 1012, url: edge3.url });
    expect(client.url).toBe(edge3.url);
    expect(afterReconnect(seen).first.kind).toBe('codec');
    expect(afterReconnect(seen).firstPacket?.p.keyframe).toBe(true);
    expect(code).toBe(0);
    expect(exitMs).toBeLessThan(5_000);
    expect(recoveryMs).toBeLessThan(5_000);

    // The status subscription came back too (every 200 ms), and stops when unsubscribed.
    await until(() => seen.statusTimes.some((t) => t > termAt + recoveryMs), 2_000, 'status from edge 3');
    client.unsubscribe(MONITOR, 'status');
    await sleep(300);
    const statuses = seen.statusTimes.length;
    await sleep(600);
    expect(seen.statusTimes.length).toBe(statuses);
  });

  it('edge frozen with SIGSTOP: the silent connection is given up and another edge serves', async () => {
    const [frozen, other] = await Promise.all([procs.edge(redisUrl), procs.edge(redisUrl)]);
    const client = start([frozen.url, other.url], { idleTimeoutMs: 1_000 });
    const seen = record(client);
    client.subscribeStream(MONITOR);
    await until(() => packetCount(seen) > 10, 20_000, 'video on the edge about to freeze');
    const stoppedAt = Date.now();
    frozen.child.kill('SIGSTOP');
    try {
      await until(() => videoAgain(client, seen), 10_000, 'video from the other edge');
    } finally {
      frozen.child.kill('SIGKILL');
    }
    const again = afterReconnect(seen).firstPacket!.at;
    const recoveryMs = again - stoppedAt;
    // The idle timer runs from the last message before the freeze, which may come a little before stoppedAt.
    const lastBefore = Math.max(...seen.timeline.filter((t) => t.kind === 'packet' && t.at <= stoppedAt).map((t) => t.at));
    console.log(`SIGSTOP drill: first packet on the other edge ${recoveryMs} ms after the freeze (idle timeout 1000 ms)`);
    expect(seen.reconnecting[0]).toMatchObject({ attempt: 1, code: 1006, url: other.url });
    expect(again - lastBefore).toBeGreaterThanOrEqual(1_000);
    expect(recoveryMs).toBeLessThan(3_000);
  });

  it('Redis lost the history: history_lost surfaces as eventsGap and the new history follows, even with lower ids', async () => {
    const [a, b] = await Promise.all([procs.edge(redisUrl), procs.edge(redisUrl)]);
    const client = start([a.url, b.url]);
    const seen = record(client);
    const gaps: EventsGap[] = [];
    client.on('eventsGap', (g) => gaps.push(g));
    client.subscribeEvents(MONITOR);
    await until(() => seen.eventsAcks === 1, 10_000, 'the events subscription');
    const before = [await appendEvent(0), await appendEvent(1), await appendEvent(2)];
    await until(() => seen.events.length === 3, 5_000, 'the first events');
    const lostEpoch = await currentEpoch();

    // Both edges die; meanwhile Redis loses the monitor's history and capture starts a new one.
    a.child.kill('SIGKILL');
    b.child.kill('SIGKILL');
    await until(() => seen.reconnecting.length > 0, 5_000, 'the client to notice');
    await redis.del(KEYS.events);
    await redis.hdel(KEYS.meta, 'epoch');
    await until(async () => ((await currentEpoch()) ?? lostEpoch) !== lostEpoch, 5_000, 'capture to start a new history');
    // Ids below the last one seen: only the epoch tells the client these are new.
    const after = [await appendEvent(3, '1-1'), await appendEvent(4, '1-2')];
    await procs.edge(redisUrl, { port: b.port });
    await until(() => seen.events.length === 5, 15_000, 'the new history');
    const live = await appendEvent(5);
    await until(() => seen.events.length === 6, 5_000, 'a live event');
    await sleep(300);

    expect(gaps).toEqual([{ monitorId: MONITOR, code: 'history_lost', message: expect.any(String) }]);
    expect(seen.events.map((e) => e.id)).toEqual([...before, ...after, live]);
    const newEpoch = await currentEpoch();
    expect(newEpoch).not.toBe(lostEpoch);
    expect(seen.events.map((e) => e.epoch)).toEqual([...before.map(() => lostEpoch), ...[...after, live].map(() => newEpoch)]);

    // A resume point older than retention: events_expired, also reported, and what is retained follows.
    const late = start([b.url]);
    const lateGaps: EventsGap[] = [];
    const lateEvents: string[] = [];
    late.on('eventsGap', (g) => lateGaps.push(g));
    late.on('event', (e) => lateEvents.push(e.id));
    late.subscribeEvents(MONITOR, '0-1');
    await until(() => lateEvents.length === 3, 10_000, 'the retained events');
    expect(lateGaps).toEqual([{ monitorId: MONITOR, code: 'events_expired', message: expect.any(String) }]);
    expect(lateEvents).toEqual([...after, live]);
  });

  it('presents fresh credentials on every attempt: a token provider, offered as a subprotocol', async () => {
    const secret = 'reconnect-test-secret-reconnect-test-secret';
    const env = { ZMCAST_AUTH_MODE: 'config', ZMCAST_AUTH_SECRET: secret, ZMCAST_AUTH_USERS: JSON.stringify([{ name: 'viewer', monitors: [MONITOR] }]) };
    const edge = await procs.edge(redisUrl, { env });
    let asked = 0;
    const client = start([edge.url], { tokenVia: 'subprotocol', token: () => (asked++, mintToken('viewer', secret, 60)) });
    const seen = record(client);
    client.subscribeStream(MONITOR);
    await until(() => packetCount(seen) > 10, 20_000, 'video with the first token');
    edge.child.kill('SIGKILL');
    await procs.edge(redisUrl, { port: edge.port, env });
    await until(() => videoAgain(client, seen), 20_000, 'video with a fresh token');
    // One token per attempt: the first connection, each failed attempt while the edge was down, the last.
    expect(asked).toBe(1 + seen.reconnecting.length);
    expect(seen.reconnecting.length).toBeGreaterThanOrEqual(2);
    await client.close();
    expect(await client.ended).toEqual({ kind: 'closed', code: 1000, reason: 'closed by client' });
  });

  it('refused credentials are final: HTTP 401 ends the client (and zmcast watch) at once, close 4401 too', async () => {
    // Auth mode config without users: nobody gets in. In-band login is allowed briefly, to reach 4401.
    const locked = await procs.edge(redisUrl, { env: { ZMCAST_AUTH_MODE: 'config', ZMCAST_AUTH_IN_BAND_TIMEOUT_MS: '500' } });
    let asked = 0;
    const t0 = Date.now();
    const refused = start([locked.url], { token: () => `not-a-token-${++asked}` });
    const seen = record(refused);
    const ending = await Promise.race([refused.ended, sleep(5_000).then(() => null)]);
    const refusedMs = Date.now() - t0;
    await sleep(1_000); // a client that loops would be retrying by now
    expect(ending).toMatchObject({ kind: 'refused', url: locked.url, error: { status: 401 } });
    expect(refusedMs).toBeLessThan(2_000);
    expect(seen.reconnecting).toEqual([]);
    expect(asked).toBe(1);
    // Offered as a subprotocol, the bad token is refused the same way (without it, in-band login would be tried).
    const viaSubprotocol = start([locked.url], { token: 'not-a-token', tokenVia: 'subprotocol' });
    expect(await viaSubprotocol.ended).toMatchObject({ kind: 'refused', error: { status: 401 } });

    const unauthenticated = start([locked.url]);
    const closes: number[] = [];
    unauthenticated.on('close', (code) => closes.push(code));
    expect(await Promise.race([unauthenticated.ended, sleep(5_000).then(() => null)])).toMatchObject({ kind: 'closed', code: 4401 });
    await sleep(1_000);
    expect(closes).toEqual([4401]);
    expect(unauthenticated.reconnects).toBe(0);

    const watch = spawnSync(process.execPath, [BIN, 'watch', locked.url, '--monitor', String(MONITOR), '--token', 'nope', '--duration', '10', '--quiet', '--out', '/dev/null'], {
      encoding: 'utf8', timeout: 15_000,
    });
    expect(watch.status).toBe(1);
    expect(watch.stderr).toBe(`zmcast: cannot watch ${locked.url}: edge refused the connection: HTTP 401\n`);
  });
});

describe('zmcast watch', () => {
  it('survives its edge being killed and restarted on the same port; the file decodes and the summary counts the reconnect', async () => {
    const edge = await procs.edge(redisUrl);
    const nobody = `http://127.0.0.1:${await freePort()}`; // first in the list: skipped at start
    const file = join(mkdtempSync(join(tmpdir(), 'zmcast-reconnect-')), 'm1.h264');
    const watch = procs.spawn(['watch', `${nobody},${edge.url}`, '--monitor', String(MONITOR), '--out', file, '--duration', '16', '--quiet'], {});
    await until(() => { try { return statSync(file).size > 0; } catch { return false; } }, 20_000, 'watch to record');
    await sleep(2_000);
    edge.child.kill('SIGKILL');
    await sleep(500);
    const restarted = await procs.edge(redisUrl, { port: edge.port });
    const code = await watch.exited;
    restarted.child.kill('SIGTERM');

    const lines = watch.stderr().trim().split('\n');
    const summary = JSON.parse(lines.pop()!) as Record<string, unknown>;
    const logs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    console.log(`zmcast watch: ${JSON.stringify(logs.map((l) => ({ msg: l.msg, downtime_ms: l.downtime_ms, code: l.code })))} ${JSON.stringify(summary)}`);
    expect(code).toBe(0);
    expect(logs.map((l) => l.msg)).toEqual(['edge unreachable; retrying', 'connected', 'connection lost; reconnecting', 'reconnected']);
    expect(logs[0]).toMatchObject({ component: 'watch', level: 'warn', code: 1006, next: edge.url });
    expect(logs[1]).toMatchObject({ component: 'watch', level: 'info', url: edge.url });
    expect(logs[2]).toMatchObject({ component: 'watch', level: 'warn', code: 1006, url: edge.url });
    expect(logs[3]).toMatchObject({ component: 'watch', level: 'info', url: edge.url, reconnects: 1 });
    expect(summary).toMatchObject({ reconnects: 1, dropped: 0, closeCode: null });
    expect(summary.packets).toBeGreaterThan(150); // 16 s at 25 fps, less start-up and the outage (up to ~6 s on a busy machine)
    const probe = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-f', 'h264', '-show_entries', 'stream=codec_name,width,height,nb_read_frames', '-of', 'json', file], { encoding: 'utf8' });
    expect(probe.stderr).toBe('');
    expect(JSON.parse(probe.stdout).streams[0]).toMatchObject({ codec_name: 'h264', width: 320, height: 240, nb_read_frames: String(summary.packets) });
  });
});

describe('montage page', () => {
  it('reconnects after its edge is killed and restarted, re-initialising the decoders', async () => {
    const { chromium } = await import('playwright-core');
    const edge = await procs.edge(redisUrl);
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${edge.url}/`);
      type Tile = { decoded: number; errors: number; configurations: number };
      const state = () => page.evaluate(() => {
        const z = (window as unknown as { zmcast: { tiles: Map<number, Tile>; connection: { state: string; reconnects: number } } }).zmcast;
        const t = z.tiles.get(1); // none until the page has read /monitors
        return { decoded: t?.decoded ?? 0, errors: t?.errors ?? 0, configurations: t?.configurations ?? 0, ...z.connection };
      });
      await until(async () => (await state()).decoded > 25, 20_000, 'the page to decode');
      edge.child.kill('SIGKILL');
      await until(async () => (await state()).state === 'reconnecting', 5_000, 'the page to notice');
      const before = await state();
      const restarted = await procs.edge(redisUrl, { port: edge.port });
      const t0 = Date.now();
      await until(async () => (await state()).decoded > before.decoded + 25, 20_000, 'the page to decode again');
      const after = await state();
      console.log(`montage page: decoding again ${Date.now() - t0} ms after the edge was back (${JSON.stringify(after)})`);
      restarted.child.kill('SIGTERM');
      expect(after).toMatchObject({ state: 'open', reconnects: 1, errors: 0 });
      expect(after.configurations).toBe(before.configurations + 1);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
