/**
 * A soak's viewers inside one load-generator process: a steady set that stays
 * connected the whole run and checks every packet it gets, and a churning set
 * that keeps joining and leaving. A churner subscribes to video, to events, to
 * both, or asks for one keyframe (a one-shot `stream`), stays a random time,
 * and leaves with a close frame, after unsubscribing, or by dropping the TCP
 * connection without a close frame.
 */
import { Histogram, type HistogramData } from './histogram.js';
import { inBatches, Viewer } from './viewer.js';
import { logger } from '../../shared/log.js';

const log = logger('soak');

export interface SoakSpec {
  port: number;
  /** Monitor ids; steady viewer k of this process watches monitors[(firstSteady + k) % n]. */
  monitors: number[];
  firstSteady: number;
  steady: number;
  /** Churning viewers connected at once, on average. */
  churnPool: number;
  /** Churning viewers that join (and as many that leave) per second. */
  churnPerSecond: number;
}

export const CHURN_KINDS = ['stream', 'events', 'both', 'one-shot'] as const;
export const LEAVE_KINDS = ['close', 'unsubscribe', 'destroy'] as const;
export type ChurnKind = (typeof CHURN_KINDS)[number];
export type LeaveKind = (typeof LEAVE_KINDS)[number];

export interface SteadyStats {
  viewers: number;
  /** Still open, never closed by the edge. */
  connected: number;
  received: number;
  /** Packets missing between two received ones (a gap in the sequence within a generation). */
  lost: number;
  /** Packets missing at the end of the run (after the drain), counted by `finish`. */
  tailLost: number;
  outOfOrder: number;
  droppedNotices: number;
  closedByServer: number;
  errors: string[];
  /** Capture → viewer latency since the previous call. */
  latency: HistogramData;
}

export interface ChurnStats {
  joined: number;
  left: number;
  /** Sessions that could not connect or subscribe, got an error reply, or were closed by the edge before leaving. */
  failed: number;
  active: number;
  kinds: Record<ChurnKind, number>;
  leaves: Record<LeaveKind, number>;
  packets: number;
  events: number;
  /** Gaps in churners' video (informative: only steady viewers' losses fail a soak). */
  lost: number;
  errors: string[];
}

export interface SoakStats {
  steady: SteadyStats;
  churn: ChurnStats;
}

/** Per monitor, sequence numbers must follow one another within a generation; a new generation starts over. */
export class SequenceCheck {
  private readonly last = new Map<number, { generation: number; sequence: number }>();
  lost = 0;
  outOfOrder = 0;

  see(monitorId: number, generation: number, sequence: number): void {
    const l = this.last.get(monitorId);
    if (!l || l.generation !== generation) {
      this.last.set(monitorId, { generation, sequence });
      return;
    }
    if (sequence <= l.sequence) {
      this.outOfOrder++;
      return;
    }
    this.lost += sequence - l.sequence - 1;
    l.sequence = sequence;
  }

  /** The last sequence seen on the monitor, -1 before any. */
  lastSequence(monitorId: number): number {
    return this.last.get(monitorId)?.sequence ?? -1;
  }
}

interface Steady {
  viewer: Viewer;
  monitorId: number;
  check: SequenceCheck;
}

const wallNow = () => performance.timeOrigin + performance.now();
const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TIMEOUT_MS = 10_000;

export class SoakLoad {
  private readonly steady: Steady[] = [];
  private readonly byViewer = new Map<Viewer, SequenceCheck>();
  private latency = new Histogram();
  private steadyReceived = 0;
  private tailLost = 0;
  private readonly churners = new Set<Viewer>();
  private readonly sessions = new Set<Promise<void>>();
  private readonly sleepers = new Set<() => void>();
  private timer: NodeJS.Timeout | null = null;
  private stopping = false;
  private readonly churn: Omit<ChurnStats, 'active'> = {
    joined: 0, left: 0, failed: 0, packets: 0, events: 0, lost: 0, errors: [],
    kinds: { stream: 0, events: 0, both: 0, 'one-shot': 0 },
    leaves: { close: 0, unsubscribe: 0, destroy: 0 },
  };

  constructor(private readonly spec: SoakSpec) {}

  /** Connects the steady viewers (each has a packet before this resolves), then starts the churn. */
  async start(): Promise<{ steady: number; failed: number; errors: string[] }> {
    const errors: string[] = [];
    let failed = 0;
    const { monitors } = this.spec;
    await inBatches(Array.from({ length: this.spec.steady }, (_, k) => async () => {
      const check = new SequenceCheck();
      const viewer = new Viewer({
        port: this.spec.port, protocol: 'zmcast', slow: 'none', throttleBytesPerSecond: 0,
        onPacket: (_v, monitorId, sequence, captureTime, _keyframe, _bytes, generation) => {
          this.steadyReceived++;
          check.see(monitorId, generation, sequence);
          this.latency.record((wallNow() - captureTime) * 1000);
        },
      });
      const monitorId = monitors[(this.spec.firstSteady + k) % monitors.length];
      try {
        await viewer.connect(TIMEOUT_MS);
        await viewer.subscribe(monitorId, TIMEOUT_MS);
        this.steady.push({ viewer, monitorId, check });
      } catch (err) {
        failed++;
        if (errors.length < 5) errors.push((err as Error).message);
        viewer.close();
      }
    }), 32);
    const deadline = performance.now() + 15_000;
    const waiting = () => this.steady.filter((s) => s.viewer.firstPacketAt === 0).length;
    while (waiting() > 0 && performance.now() < deadline) await sleep(50);
    if (waiting() > 0) errors.push(`${waiting()} steady viewers got no packet in 15 s`);

    // The churning set starts full: each initial churner has already stayed a while, so it gets the
    // remaining time of a uniform(0, 2·mean) stay (density ∝ 2·mean − t); then one joins every 1/rate s.
    const mean = (this.spec.churnPool / this.spec.churnPerSecond) * 1000;
    for (let i = 0; i < this.spec.churnPool; i++) this.track(this.session(2 * mean * (1 - Math.sqrt(1 - Math.random()))));
    this.timer = setInterval(() => this.track(this.session(Math.random() * 2 * mean)), 1000 / this.spec.churnPerSecond);
    // Return once the initial churners are in (subscribed, or failed), so the first sample sees the full load.
    const settled = () => CHURN_KINDS.reduce((a, k) => a + this.churn.kinds[k], 0) + this.churn.failed;
    const churnDeadline = performance.now() + 15_000;
    while (settled() < this.spec.churnPool && performance.now() < churnDeadline) await sleep(50);
    return { steady: this.steady.length, failed, errors };
  }

  /** Counters since the start (latency: since the previous call). */
  stats(): SoakStats {
    const latency = this.latency;
    this.latency = new Histogram();
    const list = this.steady;
    const sum = (f: (s: Steady) => number) => list.reduce((a, s) => a + f(s), 0);
    return {
      steady: {
        viewers: list.length,
        connected: list.filter((s) => s.viewer.open && s.viewer.closedByServer === null).length,
        received: this.steadyReceived,
        lost: sum((s) => s.check.lost),
        tailLost: this.tailLost,
        outOfOrder: sum((s) => s.check.outOfOrder),
        droppedNotices: sum((s) => s.viewer.droppedNotices),
        closedByServer: list.filter((s) => s.viewer.closedByServer !== null).length,
        errors: list.flatMap((s) => s.viewer.errors).slice(0, 5),
        latency: latency.toJSON(),
      },
      churn: { ...this.churn, kinds: { ...this.churn.kinds }, leaves: { ...this.churn.leaves }, errors: [...this.churn.errors], active: this.churners.size },
    };
  }

  /**
   * Ends the run: stops the churn, waits (at most `drainMs`) until every steady viewer has
   * packet `nextSeq - 1` of its monitor, counts what is still missing as lost, and closes them.
   */
  async finish(nextSeq: number, drainMs: number): Promise<SoakStats> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    for (const wake of this.sleepers) wake();
    for (const v of this.churners) v.close();
    await Promise.all(this.sessions);
    const behind = () => this.steady.filter((s) => s.viewer.open && s.check.lastSequence(s.monitorId) < nextSeq - 1);
    const deadline = performance.now() + drainMs;
    while (behind().length > 0 && performance.now() < deadline) await sleep(20);
    this.tailLost = this.steady.reduce((a, s) => a + Math.max(0, nextSeq - 1 - s.check.lastSequence(s.monitorId)), 0);
    const stats = this.stats();
    for (const s of this.steady) s.viewer.close();
    return stats;
  }

  private track(p: Promise<void>): void {
    // session() turns a viewer's failure into a counted one; anything that still escapes is counted and logged too.
    const tracked: Promise<void> = p.catch((err) => {
      this.churn.failed++;
      if (this.churn.errors.length < 10) this.churn.errors.push(`session: ${(err as Error).message}`);
      log.error('churn session failed', { error: (err as Error).stack ?? String(err) });
    }).finally(() => this.sessions.delete(tracked));
    this.sessions.add(tracked);
  }

  /** Resolves at `deadline` (performance.now() time), or at once when the run stops. */
  private until(deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => { clearTimeout(timer); this.sleepers.delete(wake); resolve(); };
      const timer = setTimeout(wake, Math.max(0, deadline - performance.now()));
      this.sleepers.add(wake);
    });
  }

  private async session(stayMs: number): Promise<void> {
    if (this.stopping) return;
    const c = this.churn;
    const kind = pick(CHURN_KINDS);
    const leave = kind === 'one-shot' ? pick(['close', 'destroy'] as const) : pick(LEAVE_KINDS);
    const monitorId = pick(this.spec.monitors);
    const check = new SequenceCheck();
    const v = new Viewer({
      port: this.spec.port, protocol: 'zmcast', slow: 'none', throttleBytesPerSecond: 0,
      onPacket: (_v, m, sequence, _t, _k, _b, generation) => { c.packets++; check.see(m, generation, sequence); },
    });
    const started = performance.now();
    const fail = (why: string) => {
      c.failed++;
      if (c.errors.length < 10) c.errors.push(`${kind}: ${why}`);
    };
    c.joined++;
    this.churners.add(v);
    try {
      await v.connect(TIMEOUT_MS);
      const topics = kind === 'both' ? ['stream', 'events'] : kind === 'one-shot' ? [] : [kind];
      for (const topic of topics) {
        await v.command({ command: 'subscribe', topic, monitor_id: monitorId, ...(topic === 'stream' ? { codec: 'auto' } : {}) }, TIMEOUT_MS);
      }
      if (kind === 'one-shot') await v.oneShot(monitorId, TIMEOUT_MS);
      c.kinds[kind]++;
      await this.until(started + stayMs);
      if (this.stopping) return;
      if (v.closedByServer !== null || !v.open) return fail(`closed by the edge (${v.closedByServer ?? 'no close frame'}) before leaving`);
      if (v.errors.length > 0) return fail(v.errors[0]);
      if (leave === 'destroy') v.close();
      else {
        if (leave === 'unsubscribe') {
          for (const topic of topics) await v.command({ command: 'unsubscribe', topic, monitor_id: monitorId }, TIMEOUT_MS);
        }
        await v.closeGracefully();
      }
      c.leaves[leave]++;
    } catch (err) {
      if (!this.stopping) fail((err as Error).message);
    } finally {
      v.close();
      c.lost += check.lost;
      c.events += v.events;
      this.churners.delete(v);
      c.left++;
    }
  }
}
