/**
 * The synthetic camera side: N monitors at a fixed frame rate, each packet
 * published exactly as capture publishes it (services/capture Publisher, the
 * same Lua script and pipelining), or, for the Socket.IO baseline, emitted to
 * the monitor's room through @socket.io/redis-streams-adapter, or, for nchan,
 * POSTed to the publisher nginx (its own nchan instance on the same Redis,
 * see baselines/nchan.ts), the same bytes as zmcast stores. All monitors
 * share one sequence counter, so the coordinator can open and close the
 * measurement window by sequence number.
 */
import { Agent, request } from 'node:http';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { Publisher } from '../services/capture/publisher.js';
import { loadConfig } from '../shared/config.js';
import { captureMetrics } from '../shared/metrics.js';
import { encodePacket } from '../shared/packet.js';
import { setLogLevel } from '../shared/log.js';
import { serve } from './lib/child.js';
import { NchanServer } from './baselines/nchan.js';

export type PublishMode = 'zmcast' | 'socketio' | 'nchan';

export interface PublishSpec {
  monitors: { id: number; gop: number }[];
  /** Payload bytes per packet (the codec bytes, before the 44-byte header). */
  size: number;
  fps: number;
  /** zmcast only: also publish a monitor event on every monitor each this many packets (none when absent). */
  eventEveryPackets?: number;
}

export interface PublishTotals {
  /** The first sequence number never published. */
  nextSeq: number;
  published: number;
  dropped: number;
  /** Ticks the timer fired late by more than one frame interval. */
  lateTicks: number;
}

const [mode, redisUrl] = process.argv.slice(2) as [PublishMode, string];
setLogLevel('warn');
const redis = new Redis(redisUrl, { connectionName: `bench-publisher-${mode}`, maxRetriesPerRequest: null });
// The adapter's stream keeps about as many packets as zmcast's retention does (3 GOPs, bounded).
const io = mode === 'socketio' ? new Server({ adapter: createAdapter(redis, { maxLen: 1000 }) }) : null;

let nchan: NchanServer | null = null;
const nchanAgent = new Agent({ keepAlive: true, maxSockets: 64 });
/** POSTs to nchan still in flight: stop() waits for them as it waits for the Publisher's flush. */
const posting = new Set<Promise<void>>();

let spec: PublishSpec = { monitors: [], size: 0, fps: 25 };
let publishers: Publisher[] = [];
let payload = Buffer.alloc(0);
let seq = 0;
let published = 0;
let lateTicks = 0;
let timer: NodeJS.Timeout | null = null;
let running = false;
const waiters: { seq: number; resolve: () => void }[] = [];

async function setup(s: PublishSpec): Promise<void> {
  spec = s;
  payload = Buffer.alloc(s.size, 0x42);
  payload.writeUInt32BE(1, 0); // an Annex-B start code, so it looks like what a camera sends
  if (mode === 'nchan') {
    nchan = await NchanServer.start('publisher', redisUrl);
    process.on('exit', () => nchan?.stopNow());
  }
  if (mode !== 'zmcast') return;
  const retention = loadConfig({ env: {} }).retention;
  publishers = s.monitors.map((m) => new Publisher(redis, m.id, retention, { token: `bench-${m.id}-${process.pid}`, ttlMs: 60_000 }));
  await Promise.all(publishers.map((p) => p.register(`Bench ${p.monitorId}`)));
  for (const p of publishers) {
    p.publishConfig({
      codec: 'h264', codecString: 'avc1.640028', width: 1920, height: 1080, generation: 1,
      extradata: Buffer.from([0, 0, 0, 1, 0x67, 0x64, 0, 0x28, 0, 0, 0, 1, 0x68, 0xee, 0x3c, 0x80]),
    });
    await p.flush();
  }
}

function tick(): void {
  const captureTime = performance.timeOrigin + performance.now();
  const s = seq++;
  for (let i = 0; i < spec.monitors.length; i++) {
    const m = spec.monitors[i];
    const packet = {
      data: payload, keyframe: s % m.gop === 0, generation: 1, sequence: s, captureTime,
      pts: BigInt(s * 40_000), dts: BigInt(s * 40_000), duration: Math.round(1e6 / spec.fps),
    };
    if (io) io.to(`m:${m.id}`).emit('p', encodePacket({ ...packet, monitorId: m.id }));
    else if (nchan) postToNchan(nchan.port, m.id, encodePacket({ ...packet, monitorId: m.id }));
    else publishers[i].publishPacket(packet);
    if (spec.eventEveryPackets && s % spec.eventEveryPackets === 0 && !io) publishers[i].event('bench', `packet ${s}`, 1);
  }
  published += spec.monitors.length;
  for (let i = waiters.length - 1; i >= 0; i--) {
    if (seq >= waiters[i].seq) waiters.splice(i, 1)[0].resolve();
  }
}

function start(): void {
  const interval = 1000 / spec.fps;
  const t0 = performance.now();
  let n = 0;
  running = true;
  const loop = () => {
    if (!running) return;
    tick();
    n++;
    const next = t0 + n * interval;
    const now = performance.now();
    if (now - next > interval) lateTicks++;
    timer = setTimeout(loop, Math.max(0, next - now));
  };
  loop();
}

let nchanFailures = 0;

function postToNchan(port: number, monitorId: number, body: Buffer): void {
  const done: Promise<void> = new Promise((resolve) => {
    const finish = () => { posting.delete(done); resolve(); };
    const req = request({
      host: '127.0.0.1', port, path: `/pub/m${monitorId}`, method: 'POST', agent: nchanAgent,
      headers: { 'content-type': 'application/octet-stream', 'content-length': body.length },
    }, (res) => {
      if ((res.statusCode ?? 500) >= 300) nchanFailures++;
      res.resume();
      res.on('end', finish);
    });
    req.on('error', () => { nchanFailures++; finish(); });
    req.end(body);
  });
  posting.add(done);
}

async function dropped(): Promise<number> {
  if (mode === 'nchan') return nchanFailures;
  const data = await captureMetrics().dropped.get();
  return data.values.reduce((a, v) => a + v.value, 0);
}

async function stop(): Promise<PublishTotals> {
  running = false;
  if (timer) clearTimeout(timer);
  await Promise.all(publishers.map((p) => p.flush()));
  await Promise.all(posting);
  return { nextSeq: seq, published, dropped: await dropped(), lateTicks };
}

serve({
  setup: (s: PublishSpec) => setup(s),
  start: () => start(),
  seq: () => seq,
  /** Resolves once sequence `n` has been published. */
  waitSeq: (n: number) => (seq > n ? undefined : new Promise<void>((resolve) => waiters.push({ seq: n + 1, resolve }))),
  stop: () => stop(),
  totals: async () => ({ nextSeq: seq, published, dropped: await dropped(), lateTicks }),
});
