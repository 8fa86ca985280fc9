/**
 * Runs a MonitorCapture for every monitor this process holds the lease of.
 * The candidates are the configured list at start, then whatever `apply()`
 * is given (the ZoneMinder Monitors table, re-read while running); the
 * LeaseKeeper decides which candidates this process captures, so two
 * processes given the same monitor never write it both. A monitor that did
 * not change keeps its camera connection through every apply.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../../shared/config.js';
import { logger } from '../../shared/log.js';
import type { RedisClient } from '../../shared/redis.js';
import { monitorKeys, SUB_STREAMS_KEY } from '../../shared/redis-keys.js';
import { LeaseKeeper } from './lease-keeper.js';
import type { MonitorLease } from './monitor-lease.js';
import { MonitorCapture, streamSpec } from './monitor-capture.js';
import { createSource, type CaptureSpec } from './source.js';

const log = logger('capture');

export interface ApplyResult {
  added: number[];
  removed: number[];
  /** Candidates whose camera settings or name changed: a running capture is stopped, then started anew. */
  replaced: number[];
  /** Monitors whose source can never work (e.g. a bad synthetic: query), with the reason; not started. */
  refused: { id: number; reason: string }[];
}

export interface CaptureServiceOptions {
  /**
   * Pool mode (the default): processes given the same monitors share them,
   * each about an equal part. Off where an assignment (ZoneMinder's
   * ServerId) already says who captures: then a process takes every free
   * candidate, and the lease only keeps a move between servers clean.
   */
  balance?: boolean;
}

export class CaptureService {
  /** The monitors this process may capture, by id. */
  private readonly specs = new Map<number, CaptureSpec>();
  /** The ones it captures now (it holds their lease): the main stream, then the sub-stream if the monitor has one. */
  private readonly captures = new Map<number, MonitorCapture[]>();
  private readonly leases: LeaseKeeper;
  /** This process among capture processes: unique even for two processes on one host. */
  readonly processId: string;
  private started = false;
  private stopped = false;
  /** start(), apply(), stop() and lease changes run one after the other, never interleaved. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Specs already refused, by id: the same spec is not tried (nor logged) again on every apply. */
  private readonly refused = new Map<number, CaptureSpec>();

  /** Throws for a configured monitor whose source can never work, before anything starts. */
  constructor(private readonly redis: RedisClient, private readonly config: Config, opts: CaptureServiceOptions = {}) {
    for (const spec of config.capture.monitors) {
      this.check(spec);
      this.specs.set(spec.id, spec);
    }
    this.processId = `${config.capture.node}/${process.pid}/${randomBytes(3).toString('hex')}`;
    this.leases = new LeaseKeeper(redis, { processId: this.processId, ttlMs: config.capture.leaseTtlMs, balance: opts.balance ?? true }, {
      acquired: (lease) => this.serial(() => this.begin(lease)),
      lost: (id) => this.serial(() => this.end(id)),
      handOver: (id) => this.serial(() => this.end(id)),
    });
  }

  /** Ids of the monitors this process captures, ascending. */
  get monitorIds(): number[] {
    return [...this.captures.keys()].sort((a, b) => a - b);
  }

  /** Ids of the monitors this process may capture (those it holds and those it stands by for). */
  get candidateIds(): number[] {
    return [...this.specs.keys()].sort((a, b) => a - b);
  }

  async start(): Promise<void> {
    if (this.stopped || this.started) return;
    this.started = true;
    await this.leases.start(this.candidateIds);
    await this.queue;
    log.info('capture started', { process: this.processId, monitors: this.monitorIds, standing_by: this.candidateIds.filter((id) => !this.captures.has(id)) });
  }

  /**
   * Makes the candidates equal `specs`: stops and hands over the ones no
   * longer listed, restarts those whose name, source or camera options
   * changed, and lets the lease keeper take the new ones. Everything else is
   * left alone. A monitor that cannot be built is refused and logged; the
   * others still apply.
   */
  async apply(specs: readonly CaptureSpec[]): Promise<ApplyResult> {
    const result = await this.serial(() => this.applyNow(specs));
    if (this.started && !this.stopped) await this.leases.tick();
    return result;
  }

  async stop(): Promise<void> {
    await this.serial(async () => {
      this.stopped = true;
    });
    await this.leases.stop();
    await this.serial(async () => {
      const ids = [...this.captures.keys()];
      await Promise.all(ids.map((id) => this.end(id)));
      // Handed back at once: a standby takes the monitors at its next tick, not after the TTL.
      await Promise.all(this.leases.owned.map((id) => this.leases.release(id)));
      log.info('capture stopped', { monitors: ids.length });
    });
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(task);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** A lease was taken: capture the monitor under it. */
  private async begin(lease: MonitorLease): Promise<void> {
    const spec = this.specs.get(lease.monitorId);
    if (spec && this.captures.has(spec.id)) return;
    if (this.stopped || !spec) {
      // Taken while the monitor was being removed (or the process stopping): hand it straight back.
      await this.leases.release(lease.monitorId);
      return;
    }
    const onFenced = (id: number) => {
      // Redis refused a write: another process holds the lease now.
      this.leases.forget(id);
      // oxlint-disable-next-line typescript/no-floating-promises -- end() catches its own errors, so this serial() never rejects
      void this.serial(() => this.end(id));
    };
    const streams = [new MonitorCapture(this.redis, spec, this.config, lease, onFenced)];
    if (spec.secondSource) streams.push(new MonitorCapture(this.redis, spec, this.config, lease, onFenced, 'sub'));
    this.captures.set(spec.id, streams);
    try {
      for (const capture of streams) await capture.start();
      // A sub-stream removed from the monitor must not look live to edges: it leaves the registry, its history goes.
      if (!spec.secondSource) await this.dropSubStream(spec.id);
    } catch (err) {
      log.error('capture failed to start; the lease goes back', { monitor: spec.id, error: (err as Error).message });
      this.captures.delete(spec.id);
      await Promise.all(streams.map((c) => c.stop().catch(() => undefined)));
      await this.leases.release(spec.id);
    }
  }

  private async end(id: number): Promise<void> {
    const streams = this.captures.get(id);
    if (!streams) return;
    this.captures.delete(id);
    await Promise.all(streams.map((capture) => capture.stop().catch((err) =>
      log.error('capture did not stop cleanly', { monitor: id, quality: capture.quality, error: (err as Error).message }))));
  }

  private async dropSubStream(id: number): Promise<void> {
    const sub = monitorKeys(id, 'sub');
    await Promise.all([this.redis.srem(SUB_STREAMS_KEY, String(id)), this.redis.del(sub.meta, sub.video, sub.keyframes, sub.status)]);
  }

  private check(spec: CaptureSpec): void {
    createSource(spec, { rtspTimeoutMs: this.config.capture.rtspTimeoutMs });
    if (spec.secondSource) createSource(streamSpec(spec, 'sub'), { rtspTimeoutMs: this.config.capture.rtspTimeoutMs });
  }

  private async applyNow(specs: readonly CaptureSpec[]): Promise<ApplyResult> {
    const result: ApplyResult = { added: [], removed: [], replaced: [], refused: [] };
    if (this.stopped) return result;
    const wanted = new Map<number, CaptureSpec>();
    for (const id of this.refused.keys()) if (!specs.some((s) => s.id === id)) this.refused.delete(id);
    for (const spec of specs) {
      const before = this.refused.get(spec.id);
      if (before && sameSpec(before, spec)) continue;
      try {
        this.check(spec);
        this.refused.delete(spec.id);
        wanted.set(spec.id, spec);
      } catch (err) {
        this.refused.set(spec.id, spec);
        result.refused.push({ id: spec.id, reason: (err as Error).message });
        log.error('monitor refused: its source can never work', { monitor: spec.id, reason: (err as Error).message });
      }
    }
    for (const [id, old] of this.specs) {
      const spec = wanted.get(id);
      if (spec && sameSpec(old, spec)) continue;
      if (spec) result.replaced.push(id);
      else result.removed.push(id);
      this.specs.delete(id);
      // Stopped first: a replacement must not publish beside the capture it replaces.
      await this.end(id);
      if (!spec) await this.leases.release(id);
    }
    for (const spec of wanted.values()) {
      if (this.specs.has(spec.id)) continue;
      this.specs.set(spec.id, spec);
      if (!result.replaced.includes(spec.id)) result.added.push(spec.id);
      // A changed monitor whose lease this process kept starts again under it at once.
      const lease = this.leases.lease(spec.id);
      if (lease && this.started) await this.begin(lease);
    }
    this.leases.setCandidates(this.candidateIds);
    if (result.added.length || result.removed.length || result.replaced.length) {
      log.info('monitors changed', { added: result.added, removed: result.removed, replaced: result.replaced, monitors: this.candidateIds });
    }
    return result;
  }
}

/** Same camera and name: the capture may keep running. */
function sameSpec(a: CaptureSpec, b: CaptureSpec): boolean {
  return a.name === b.name && a.source === b.source && (a.secondSource ?? '') === (b.secondSource ?? '') && (a.rtspTransport ?? '') === (b.rtspTransport ?? '') && sameOptions(a.options, b.options);
}

function sameOptions(a: Record<string, string> = {}, b: Record<string, string> = {}): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}
