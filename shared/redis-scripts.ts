/** Lua scripts live in shared/commands/*.lua and are registered once per connection. */
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis, Cluster } from 'ioredis';

const here = dirname(fileURLToPath(import.meta.url));
// Source tree: shared/commands; built tree: dist/shared → ../../shared/commands.
const dir = [join(here, 'commands'), join(here, '..', '..', 'shared', 'commands')].find((d) => existsSync(d));

function script(name: string): string {
  if (!dir) throw new Error('cannot find shared/commands');
  return readFileSync(join(dir, `${name}.lua`), 'utf8');
}

export interface ZmcastScripts {
  zmPublish(video: string, keyframes: string, meta: string, packet: Buffer, keyframe: '0' | '1', maxGops: number, maxAgeMs: number, maxEntries: number): Promise<string>;
}

export function withScripts<T extends Redis | Cluster>(redis: T): T & ZmcastScripts {
  if (!(redis as unknown as Partial<ZmcastScripts>).zmPublish) {
    redis.defineCommand('zmPublish', { numberOfKeys: 3, lua: script('publish') });
  }
  return redis as T & ZmcastScripts;
}
