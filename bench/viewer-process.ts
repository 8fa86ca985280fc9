/**
 * A load-generator process: holds a share of the viewers, counts what they
 * receive inside the measurement window and keeps their latency histogram.
 * The coordinator starts several of these so the load generator is never
 * the bottleneck, and reports their CPU beside the edge's.
 */
import { Histogram, type HistogramData } from './lib/histogram.js';
import { serve } from './lib/child.js';
import { inBatches, Viewer, type Protocol, type Slowness } from './lib/viewer.js';
import { SoakLoad, type SoakSpec } from './lib/soak-load.js';

export interface ViewerGroup {
  /** null: connect and stay idle (no subscription). */
  monitorId: number | null;
  count: number;
  slow: Slowness;
  /** Edge to connect to, when the point runs several; else ConnectSpec.port. */
  port?: number;
  /** A montage: every viewer of the group subscribes to all of these on its one socket (monitorId is then ignored). */
  monitorIds?: number[];
}

export interface ConnectSpec {
  port: number;
  protocol: Protocol;
  groups: ViewerGroup[];
  throttleBytesPerSecond: number;
  /** Handshakes in flight at once. */
  concurrency: number;
}

export interface ClassStats {
  viewers: number;
  received: number;
  bytes: number;
  outOfOrder: number;
  closedByServer: number;
  droppedNotices: number;
  droppedPackets: number;
  /** Viewers that ended the window having missed at least one packet. */
  viewersWithLoss: number;
  latency: HistogramData;
  errors: string[];
}

export interface WindowStats {
  normal: ClassStats;
  slow: ClassStats;
  drained: boolean;
}

export interface FirstFrame {
  /** Subscribe sent → first binary packet. */
  firstPacketMs: number;
  /** Subscribe sent → first keyframe (the first decodable frame). */
  firstKeyframeMs: number;
  firstWasKeyframe: boolean;
  codecBeforeKeyframe: boolean;
}

const wallNow = () => performance.timeOrigin + performance.now();

let viewers: Viewer[] = [];
let fromSeq = Infinity;
let toSeq = Infinity;
let histNormal = new Histogram();
let histSlow = new Histogram();

function onPacket(v: Viewer, monitorId: number, seq: number, captureTime: number, _keyframe: boolean, bytes: number): void {
  if (seq < fromSeq || seq >= toSeq) return;
  v.received++;
  v.bytes += bytes;
  if (v.monitors > 1) {
    // A montage socket: order is per monitor; lastSeq is the monitor furthest behind.
    if (seq <= (v.lastSeqByMonitor.get(monitorId) ?? -1)) v.outOfOrder++;
    v.lastSeqByMonitor.set(monitorId, seq);
    v.lastSeq = v.lastSeqByMonitor.size < v.monitors ? -1 : Math.min(...v.lastSeqByMonitor.values());
  } else {
    if (seq <= v.lastSeq) v.outOfOrder++;
    v.lastSeq = seq;
  }
  (v.opts.slow === 'none' ? histNormal : histSlow).record((wallNow() - captureTime) * 1000);
}

async function connectAll(spec: ConnectSpec): Promise<{ connected: number; failed: number; errors: string[] }> {
  const jobs: (() => Promise<void>)[] = [];
  const errors: string[] = [];
  let failed = 0;
  for (const g of spec.groups) {
    for (let i = 0; i < g.count; i++) {
      jobs.push(async () => {
        const v = new Viewer({
          port: g.port ?? spec.port, protocol: spec.protocol, slow: g.slow, throttleBytesPerSecond: spec.throttleBytesPerSecond, onPacket,
          ...(g.monitorId !== null ? { monitorId: g.monitorId } : {}),
        });
        try {
          await v.connect();
          if (g.monitorIds) for (const id of g.monitorIds) await v.subscribe(id);
          else if (g.monitorId !== null) await v.subscribe(g.monitorId);
          viewers.push(v);
        } catch (err) {
          failed++;
          if (errors.length < 5) errors.push((err as Error).message);
          v.close();
        }
      });
    }
  }
  await inBatches(jobs, spec.concurrency);
  return { connected: viewers.length, failed, errors };
}

async function waitFirstPacket(timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  const waiting = () => viewers.filter((v) => v.acks > 0 && v.firstPacketAt === 0).length;
  while (waiting() > 0 && performance.now() < deadline) await sleep(50);
  return waiting();
}

function openWindow(seq: number): void {
  fromSeq = seq;
  toSeq = Infinity;
  histNormal = new Histogram();
  histSlow = new Histogram();
  for (const v of viewers) {
    v.resetCounters();
    v.lastSeq = -1;
    v.lastSeqByMonitor.clear();
    if (v.opts.slow !== 'none') v.startSlowness();
  }
}

async function closeWindow(seq: number, drainMs: number): Promise<WindowStats> {
  toSeq = seq;
  const deadline = performance.now() + drainMs;
  const lagging = () => viewers.some((v) => v.opts.slow === 'none' && v.acks > 0 && v.closedByServer === null && v.lastSeq < seq - 1);
  while (lagging() && performance.now() < deadline) await sleep(20);
  const drained = !lagging();
  const stats = (slow: boolean, hist: Histogram): ClassStats => {
    const list = viewers.filter((v) => (v.opts.slow !== 'none') === slow && v.acks > 0);
    const expected = seq - fromSeq;
    return {
      viewers: list.length,
      received: sum(list, (v) => v.received),
      bytes: sum(list, (v) => v.bytes),
      outOfOrder: sum(list, (v) => v.outOfOrder),
      closedByServer: list.filter((v) => v.closedByServer !== null).length,
      droppedNotices: sum(list, (v) => v.droppedNotices),
      droppedPackets: sum(list, (v) => v.droppedPackets),
      viewersWithLoss: list.filter((v) => v.received < expected * Math.max(1, v.monitors)).length,
      latency: hist.toJSON(),
      errors: list.flatMap((v) => v.errors).slice(0, 5),
    };
  };
  fromSeq = Infinity;
  return { normal: stats(false, histNormal), slow: stats(true, histSlow), drained };
}

async function firstFrame(port: number, protocol: Protocol, monitorId: number, timeoutMs: number): Promise<FirstFrame> {
  const v = new Viewer({ port, protocol, slow: 'none', throttleBytesPerSecond: 0, onPacket: () => {} });
  try {
    await v.connect();
    await v.subscribe(monitorId);
    const deadline = performance.now() + timeoutMs;
    while (v.firstKeyframeAt === 0 && performance.now() < deadline) await sleep(1);
    if (v.firstKeyframeAt === 0) throw new Error(`no keyframe within ${timeoutMs} ms`);
    return {
      firstPacketMs: v.firstPacketAt - v.subscribedAt,
      firstKeyframeMs: v.firstKeyframeAt - v.subscribedAt,
      firstWasKeyframe: v.firstPacketAt === v.firstKeyframeAt,
      codecBeforeKeyframe: v.codecBeforeKeyframe,
    };
  } finally {
    v.close();
  }
}

function closeAll(): number {
  const n = viewers.length;
  for (const v of viewers) v.close();
  viewers = [];
  return n;
}

function sum<T>(list: T[], f: (t: T) => number): number {
  let s = 0;
  for (const t of list) s += f(t);
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let soakLoad: SoakLoad | null = null;

serve({
  connect: (spec: ConnectSpec) => connectAll(spec),
  waitFirstPacket: (timeoutMs: number) => waitFirstPacket(timeoutMs),
  openWindow: (seq: number) => openWindow(seq),
  closeWindow: (seq: number, drainMs: number) => closeWindow(seq, drainMs),
  firstFrame: (port: number, protocol: Protocol, monitorId: number, timeoutMs: number) => firstFrame(port, protocol, monitorId, timeoutMs),
  closeAll: () => closeAll(),
  connectedCount: () => viewers.filter((v) => v.open).length,
  /** The soak: steady viewers that check every packet, plus churn (bench/lib/soak-load.ts). */
  soakStart: (spec: SoakSpec) => (soakLoad = new SoakLoad(spec)).start(),
  soakStats: () => soakLoad?.stats(),
  soakFinish: (nextSeq: number, drainMs: number) => soakLoad?.finish(nextSeq, drainMs),
});
