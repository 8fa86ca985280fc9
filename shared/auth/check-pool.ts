/**
 * bcrypt comparisons off the event loop. bcryptjs is pure JavaScript: one
 * cost-10 check takes ~100 ms of CPU, which on the main thread would stall
 * video fan-out for every viewer. A small pool of worker threads does them
 * instead, with a bounded queue: past it a login is refused as busy rather
 * than queued without end.
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { AuthError, AuthErrorCode } from './errors.js';

const BCRYPTJS = createRequire(import.meta.url).resolve('bcryptjs');

// CommonJS, evaluated in the worker: it cannot import this TypeScript file.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcryptjs);
parentPort.on('message', ({ id, plain, hash }) => {
  let ok = false;
  try { ok = bcrypt.compareSync(plain, hash); } catch { ok = false; }
  parentPort.postMessage({ id, ok });
});
`;

interface Job {
  id: number;
  plain: string;
  hash: string;
  resolve: (ok: boolean) => void;
  reject: (err: Error) => void;
}

export interface BcryptPoolOptions {
  workers?: number;
  /** Checks waiting beyond those running; more are refused with `busy`. */
  maxQueue?: number;
}

export class BcryptPool {
  private readonly idle: Worker[] = [];
  private readonly all = new Set<Worker>();
  private readonly running = new Map<Worker, Job>();
  private readonly queue: Job[] = [];
  private readonly size: number;
  private readonly maxQueue: number;
  private nextId = 1;
  private closed = false;

  constructor(opts: BcryptPoolOptions = {}) {
    this.size = Math.max(1, opts.workers ?? 1);
    this.maxQueue = Math.max(0, opts.maxQueue ?? 64);
  }

  /** Checks waiting or running, for the metrics gauge. */
  get pending(): number {
    return this.queue.length + this.running.size;
  }

  compare(plain: string, hash: string): Promise<boolean> {
    if (this.closed) return Promise.reject(new Error('bcrypt pool closed'));
    if (this.queue.length >= this.maxQueue && this.idle.length === 0 && this.all.size >= this.size) {
      return Promise.reject(new AuthError(AuthErrorCode.Busy, 'Too many logins in progress; try again', 'bcrypt queue full'));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, plain, hash, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('bcrypt pool closed'));
    await Promise.all([...this.all].map((w) => w.terminate()));
    this.all.clear();
    this.idle.length = 0;
  }

  private pump(): void {
    while (this.queue.length) {
      const worker = this.idle.pop() ?? (this.all.size < this.size ? this.spawn() : undefined);
      if (!worker) return;
      const job = this.queue.shift()!;
      this.running.set(worker, job);
      worker.postMessage({ id: job.id, plain: job.plain, hash: job.hash });
    }
  }

  private spawn(): Worker {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptjs: BCRYPTJS } });
    worker.unref();
    this.all.add(worker);
    worker.on('message', (msg: { id: number; ok: boolean }) => {
      const job = this.running.get(worker);
      this.running.delete(worker);
      if (job && job.id === msg.id) job.resolve(msg.ok === true);
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
    worker.on('exit', (code) => { if (this.all.has(worker)) lost(new Error(`bcrypt worker exited with ${code}`)); });
    return worker;
  }
}
