/**
 * Lua scripts live in shared/commands/<name>-<numKeys>.lua (bullmq's habit:
 * the file name says how many keys a script takes) and are registered once
 * per connection, then called by name.
 */
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis, Cluster } from 'ioredis';

const here = dirname(fileURLToPath(import.meta.url));
// Source tree: shared/commands; built tree: dist/shared → ../../shared/commands.
const dir = [join(here, 'commands'), join(here, '..', '..', 'shared', 'commands')].find((d) => existsSync(d));

type Arg = string | number | Buffer;

export interface ZmcastScripts {
  zmPublish(video: string, keyframes: string, meta: string, lease: string, ...args: Arg[]): Promise<string>;
  zmTrim(video: string, keyframes: string, meta: string, keepGops: number): Promise<number>;
  zmEvent(events: string, meta: string, lease: string, ...args: Arg[]): Promise<string>;
  zmStatus(status: string, lease: string, json: string, token: string, ttlMs: number): Promise<string>;
  zmLeaseAcquire(lease: string, fence: string, meta: string, taker: string, ttlMs: number): Promise<[0 | 1, string, string?]>;
  zmLeaseRenew(lease: string, token: string, ttlMs: number): Promise<0 | 1 | 2>;
  zmLeaseRelease(lease: string, meta: string, token: string): Promise<0 | 1>;
}

/** Command name for `lease-acquire-3.lua` is `zmLeaseAcquire`. */
function commandName(base: string): string {
  return 'zm' + base.split('-').map((w) => w[0].toUpperCase() + w.slice(1)).join('');
}

export function withScripts<T extends Redis | Cluster>(redis: T): T & ZmcastScripts {
  if (!(redis as unknown as Partial<ZmcastScripts>).zmPublish) {
    if (!dir) throw new Error('cannot find shared/commands');
    for (const file of readdirSync(dir)) {
      const m = /^(.+)-(\d+)\.lua$/.exec(file);
      if (!m) continue;
      redis.defineCommand(commandName(m[1]), { numberOfKeys: Number(m[2]), lua: readFileSync(join(dir, file), 'utf8') });
    }
  }
  return redis as T & ZmcastScripts;
}

/** The reply code of a Redis error (`FENCED …` → `FENCED`, `OOM …` → `OOM`); `ERR` for anything else (connection errors…). */
export function scriptErrorCode(err: unknown): string {
  const message = (err as Error | undefined)?.message ?? '';
  return /^([A-Z]{2,})\b/.exec(message)?.[1] ?? 'ERR';
}
