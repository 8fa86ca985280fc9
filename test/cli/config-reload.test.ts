/**
 * `zmcast edge` in config mode follows its config file on SIGHUP: a grant
 * taken away drops that subscription, a user taken away closes the
 * connection, both within auth.revalidateMs, without a restart.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ZmcastClient } from '../../client/zmcast-client.js';
import { mintToken } from '../../shared/auth/index.js';
import type { ErrorReply } from '../../shared/protocol.js';
import { freePort } from '../../shared/redis-locator.js';
import { freshRedisUrl } from '../helpers/redis.js';
import { PacketSource } from '../helpers/edge.js';
import { until } from '../helpers/wait.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'zmcast.js');
const SECRET = 'reload-test-secret-reload-test-secret!!';
const children: ChildProcess[] = [];
afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

function writeConfig(file: string, users: object[]): void {
  writeFileSync(file, JSON.stringify({ auth: { mode: 'config', secret: SECRET, revalidateMs: 1000, users } }));
}

describe('zmcast edge on SIGHUP', () => {
  it('applies changed grants and removed users to open connections', async () => {
    const redisUrl = await freshRedisUrl();
    const redis = new Redis(redisUrl);
    for (const id of [1, 2]) await new PacketSource(redis, id, { gop: 5, size: 100 }).register();
    const file = join(mkdtempSync(join(tmpdir(), 'zmcast-reload-')), 'zmcast.json');
    writeConfig(file, [{ name: 'guard', monitors: [1, 2] }]);
    const port = await freePort();
    const edge = spawn(process.execPath, [BIN, 'edge', '--port', String(port), '--config', file], {
      env: { ...process.env, REDIS_URL: redisUrl, ZMCAST_EDGE_HOST: '127.0.0.1', ZMCAST_EDGE_ADMIN_PORT: '0' },
      stdio: 'ignore',
    });
    children.push(edge);
    await until(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)), 20_000, 'edge to listen');

    const client = await ZmcastClient.connect(`http://127.0.0.1:${port}`, { token: await mintToken('guard', SECRET, 600) });
    const errors: ErrorReply[] = [];
    client.on('errorReply', (e) => errors.push(e));
    const closed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));
    client.subscribeStream(1);
    await client.next('ack');
    client.subscribeStream(2);
    await client.next('ack');

    writeConfig(file, [{ name: 'guard', monitors: [1] }]);
    edge.kill('SIGHUP');
    await until(() => errors.some((e) => e.code === 'forbidden' && e.monitor_id === 2), 5000, 'monitor 2 to be taken away');

    writeConfig(file, []);
    edge.kill('SIGHUP');
    expect(await closed).toBe(4403); // revoked
    redis.disconnect();
  });
});
