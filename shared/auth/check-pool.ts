/**
 * Credential checks too expensive for the event loop, in worker threads:
 * bcrypt comparisons (bcryptjs is pure JavaScript: one cost-10 check takes
 * ~100 ms of CPU) and the search for a ZoneMinder `auth=` hash among many
 * users and hours (302 users × 744 hours is 224,000 MD5s, ~260 ms). On the
 * main thread either would stall video fan-out for every viewer. A bounded
 * queue sits in front: past it a login is refused as busy rather than queued
 * without end. The queue takes clients in turn (the address the check is
 * for, passed with each check), so one address's burst of guesses does not make a
 * real login from elsewhere wait behind all of it.
 *
 * The address is passed with each check rather than kept in an
 * AsyncLocalStorage: in Node 20 the first `run()` turns on promise hooks for
 * the whole process, for good, and every promise and callback of video
 * fan-out then paid for them (measured 2026-11-30, docs/performance.md).
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { AuthError, AuthErrorCode } from './errors.js';

const BCRYPTJS = createRequire(import.meta.url).resolve('bcryptjs');

// CommonJS, evaluated in the worker: it cannot import these TypeScript files.
// bcrypt: a failed check is followed by padTimes checks against padHash (see Padding).
// hash: findHashHere of shared/zoneminder/auth-hash.ts, the same loop.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash, timingSafeEqual } = require('node:crypto');
const bcrypt = require(workerData.bcryptjs);
const check = (plain, hash) => { try { return bcrypt.compareSync(plain, hash); } catch { return false; } };
const find = (presented, prefixes, suffixes) => {
  const want = Buffer.from(presented, 'latin1');
  for (let c = 0; c < prefixes.length; c++) {
    for (let h = 0; h < suffixes.length; h++) {
      const got = Buffer.from(createHash('md5').update(prefixes[c] + suffixes[h], 'utf8').digest('hex'), 'latin1');
      if (timingSafeEqual(got, want)) return [c, h];
    }
  }
  return null;
};
parentPort.on('message', (job) => {
  if (job.kind === 'hash') {
    parentPort.postMessage({ id: job.id, result: find(job.presented, job.prefixes, job.suffixes) });
    return;
  }
  const ok = check(job.plain, job.hash);
  if (!ok) for (let i = 0; i < job.padTimes; i++) check(job.plain, job.padHash);
  parentPort.postMessage({ id: job.id, result: ok });
});
`;

/**
 * Work added to a failed check so that it costs what a check at a higher
 * cost would: `times` more checks against `hash` (a dummy of the same cost).
 */
export interface Padding {
  hash: string;
  times: number;
}

type Work =
  | { kind: 'bcrypt'; plain: string; hash: string; padHash: string; padTimes: number }
  | { kind: 'hash'; presented: string; prefixes: readonly string[]; suffixes: readonly string[] };

interface Job {
  id: number;
  work: Work;
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
}

export interface CheckPoolOptions {
  workers?: number;
  /** Checks waiting beyond those running; more are refused with `busy`. */
  maxQueue?: number;
}

export class CheckPool {
  private readonly idle: Worker[] = [];
  private readonly all = new Set<Worker>();
  private readonly running = new Map<Worker, Job>();
  /** Waiting checks by client, in the order clients take turns (a Map keeps insertion order). */
  private readonly queues = new Map<string, Job[]>();
  private waiting = 0;
  private readonly size: number;
  private readonly maxQueue: number;
  private nextId = 1;
  private closed = false;

  constructor(opts: CheckPoolOptions = {}) {
    this.size = Math.max(1, opts.workers ?? 1);
    this.maxQueue = Math.max(0, opts.maxQueue ?? 64);
  }

  /** Checks waiting or running, for the metrics gauge. */
  get pending(): number {
    return this.waiting + this.running.size;
  }

  /** `client`: the address the check is for (checks without one share a turn). */
  compare(plain: string, hash: string, pad?: Padding, client = ''): Promise<boolean> {
    return this.submit({ kind: 'bcrypt', plain, hash, padHash: pad?.hash ?? '', padTimes: pad?.times ?? 0 }, client);
  }

  /** HashFinder (shared/zoneminder/auth-hash.ts) in a worker. */
  findHash(presented: string, prefixes: readonly string[], suffixes: readonly string[], client = ''): Promise<[number, number] | null> {
    return this.submit({ kind: 'hash', presented, prefixes, suffixes }, client);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const jobs of this.queues.values()) for (const job of jobs) job.reject(new Error('check pool closed'));
    this.queues.clear();
    this.waiting = 0;
    await Promise.all([...this.all].map((w) => w.terminate()));
    this.all.clear();
    this.idle.length = 0;
  }

  private submit<T>(work: Work, key: string): Promise<T> {
    if (this.closed) return Promise.reject(new Error('check pool closed'));
    if (this.waiting >= this.maxQueue && this.idle.length === 0 && this.all.size >= this.size) {
      return Promise.reject(new AuthError(AuthErrorCode.Busy, 'Too many logins in progress; try again', 'check queue full'));
    }
    return new Promise<T>((resolve, reject) => {
      const jobs = this.queues.get(key);
      const job = { id: this.nextId++, work, resolve: resolve as (result: unknown) => void, reject };
      if (jobs) jobs.push(job);
      else this.queues.set(key, [job]);
      this.waiting++;
      this.pump();
    });
  }

  private pump(): void {
    while (this.waiting > 0) {
      const worker = this.idle.pop() ?? (this.all.size < this.size ? this.spawn() : undefined);
      if (!worker) return;
      const job = this.next();
      this.running.set(worker, job);
      worker.postMessage({ id: job.id, ...job.work });
    }
  }

  /** The first waiting check of the client whose turn it is; that client then goes to the back. */
  private next(): Job {
    const [key, jobs] = this.queues.entries().next().value as [string, Job[]];
    const job = jobs.shift()!;
    this.queues.delete(key);
    if (jobs.length) this.queues.set(key, jobs);
    this.waiting--;
    return job;
  }

  private spawn(): Worker {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptjs: BCRYPTJS } });
    worker.unref();
    this.all.add(worker);
    worker.on('message', (msg: { id: number; result: unknown }) => {
      const job = this.running.get(worker);
      this.running.delete(worker);
      if (job && job.id === msg.id) job.resolve(job.work.kind === 'bcrypt' ? msg.result === true : msg.result);
      if (!this.closed) {
        this.idle.push(worker);
        this.pump();
      }
    });
    const lost = (err: Error) => {
      const job = this.running.get(worker);
      this.running.delete(worker);
      this.all.delete(worker);
      const i = this.idle.indexOf(worker);
      if (i >= 0) this.idle.splice(i, 1);
      job?.reject(err);
      if (!this.closed) this.pump();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => { if (this.all.has(worker)) lost(new Error(`check worker exited with ${code}`)); });
    return worker;
  }
}
