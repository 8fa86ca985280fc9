/**
 * The bench's processes talk over Node's IPC channel with a tiny
 * request/response protocol, so the coordinator can ask any child for its
 * CPU and memory at the exact moments a measurement window opens and closes.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { logger } from '../../shared/log.js';

const log = logger('bench-child');

interface Request { id: number; method: string; args: unknown[] }
interface Response { id: number; result?: unknown; error?: string }

/** What every child reports about itself. */
export interface Usage {
  /** CPU microseconds, user and kernel, since the process started. */
  userUs: number;
  systemUs: number;
  rss: number;
  heapUsed: number;
  external: number;
}

export function ownUsage(): Usage {
  const c = process.cpuUsage();
  const m = process.memoryUsage();
  return { userUs: c.user, systemUs: c.system, rss: m.rss, heapUsed: m.heapUsed, external: m.external };
}

export type Handlers = Record<string, (...args: never[]) => unknown>;

/** In a child: answers the coordinator's calls; `usage` and `gc` come built in. */
export function serve(handlers: Handlers): void {
  const all: Handlers = {
    usage: () => ownUsage(),
    gc: () => {
      const gc = (globalThis as { gc?: () => void }).gc;
      if (gc) { gc(); gc(); }
      return ownUsage();
    },
    exit: () => { setImmediate(() => process.exit(0)); },
    ...handlers,
  };
  process.on('message', (msg: Request) => {
    // A handler's failure is the reply; anything else (a message that is no request) is logged, never an unhandled rejection.
    answer(all, msg).catch((err) => log.error('cannot answer the coordinator', { error: (err as Error).stack ?? String(err) }));
  });
  process.on('disconnect', () => process.exit(0));
}

async function answer(all: Handlers, msg: Request): Promise<void> {
  const handler = all[msg.method] as ((...args: unknown[]) => unknown) | undefined;
  let reply: Response;
  try {
    if (!handler) throw new Error(`no method ${msg.method}`);
    reply = { id: msg.id, result: await handler(...msg.args) };
  } catch (err) {
    reply = { id: msg.id, error: (err as Error).stack ?? String(err) };
  }
  process.send?.(reply);
}

let softLimit: number | null = null;
let hardLimit: number | null = null;

/** The open-files limits this shell gives children. */
export function fileLimits(): { soft: number; hard: number } {
  if (softLimit === null || hardLimit === null) {
    const read = (flag: string) => {
      const out = execFileSync('/bin/sh', ['-c', `ulimit ${flag}`], { encoding: 'utf8' }).trim();
      return out === 'unlimited' ? 1 << 30 : Number(out);
    };
    softLimit = read('-n');
    hardLimit = read('-Hn');
  }
  return { soft: softLimit, hard: hardLimit };
}

export interface ChildOptions {
  execArgv?: string[];
  /** Open files the child needs; its soft limit is raised (up to the hard one) when short. */
  files?: number;
  env?: NodeJS.ProcessEnv;
}

/** A bench process, started from a module beside this one in dist/bench. */
export class Child {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly exited: Promise<number | null>;

  private constructor(readonly name: string, readonly proc: ChildProcess) {
    proc.on('message', (msg: Response) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error !== undefined) p.reject(new Error(`${name}: ${msg.error}`));
      else p.resolve(msg.result);
    });
    this.exited = new Promise((resolve) => proc.once('exit', (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`${name} exited (${code})`));
      this.pending.clear();
      resolve(code);
    }));
  }

  static start(name: string, module: URL, args: string[], opts: ChildOptions = {}): Child {
    const script = fileURLToPath(module);
    const nodeArgs = [...(opts.execArgv ?? []), script, ...args];
    const stdio: ('inherit' | 'ipc')[] = ['inherit', 'inherit', 'inherit', 'ipc'];
    const env = { ...process.env, ...opts.env };
    const { soft, hard } = fileLimits();
    let proc: ChildProcess;
    if (opts.files !== undefined && opts.files > soft) {
      const want = Math.min(hard, opts.files);
      proc = spawn('/bin/sh', ['-c', `ulimit -n ${want} && exec "$0" "$@"`, process.execPath, ...nodeArgs], { stdio, env, serialization: 'advanced' });
    } else {
      proc = spawn(process.execPath, nodeArgs, { stdio, env, serialization: 'advanced' });
    }
    return new Child(name, proc);
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  call<T>(method: string, ...args: unknown[]): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ id, method, args } satisfies Request, (err) => {
        if (err) {
          this.pending.delete(id);
          reject(err);
        }
      });
    });
  }

  usage(): Promise<Usage> {
    return this.call<Usage>('usage');
  }

  /** Asks the child to exit (so profiles get written); kills it if it will not. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.call('exit').catch(() => {});
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export function cpuSeconds(a: Usage, b: Usage): number {
  return (b.userUs - a.userUs + b.systemUs - a.systemUs) / 1e6;
}

export function sumUsage(list: Usage[]): Usage {
  const out: Usage = { userUs: 0, systemUs: 0, rss: 0, heapUsed: 0, external: 0 };
  for (const u of list) {
    out.userUs += u.userUs;
    out.systemUs += u.systemUs;
    out.rss += u.rss;
    out.heapUsed += u.heapUsed;
    out.external += u.external;
  }
  return out;
}
