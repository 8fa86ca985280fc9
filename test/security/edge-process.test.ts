/**
 * The real `zmcast edge` (and `zmcast watch`) as operators run them: a leaked
 * auth.secret rotated with SIGHUP stops working at once, an `auth=` hash
 * without a user name is searched off the event loop, and what the process
 * says about its secrets: Redis URLs masked even when the password holds an
 * `@`, a warning for secret files others can read, tokens for `watch` from a
 * file or the environment instead of the process list.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ZmcastClient } from '../../client/zmcast-client.js';
import { mintToken } from '../../shared/auth/index.js';
import { freePort } from '../../shared/redis-locator.js';
import { DrillRedis } from '../faults/rig.js';
import { PacketSource } from '../helpers/edge.js';
import { createZmTestDatabase, writeZmConf } from '../helpers/mariadb.js';
import { freshRedisUrl } from '../helpers/redis.js';
import { sleep, until } from '../helpers/wait.js';
import { zmBcrypt, ZmFixture } from '../zoneminder/fixtures.js';
import { upgradeRefusal } from './rig.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'zmcast.js');
const dir = mkdtempSync(join(tmpdir(), 'zmcast-edge-process-'));
const children: ChildProcess[] = [];
afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

interface Edge {
  child: ChildProcess;
  url: string;
  log: () => string;
}

/** `zmcast edge` with this environment (nothing inherited from ZMCAST_*), once it logged `started`. */
async function edge(args: string[], env: NodeJS.ProcessEnv): Promise<Edge> {
  const port = await freePort();
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ZMCAST_') && !k.startsWith('ZM_')));
  const child = spawn(process.execPath, [BIN, 'edge', '--port', String(port), ...args], {
    env: { ...clean, ZMCAST_EDGE_HOST: '127.0.0.1', ZMCAST_EDGE_ADMIN_PORT: '0', ZMCAST_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  await until(() => log.includes('"msg":"started"') || child.exitCode !== null, 30_000, 'zmcast edge to start');
  if (child.exitCode !== null) throw new Error(`zmcast edge exited: ${log}`);
  return { child, url: `http://127.0.0.1:${port}`, log: () => log };
}

function configFile(name: string, content: object, mode: number): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(content));
  chmodSync(file, mode);
  return file;
}

describe('zmcast edge, config mode', () => {
  const oldSecret = 'the-old-secret-that-leaked-0123456789';
  const newSecret = 'the-new-secret-after-rotation-98765';
  const users = [{ name: 'guard', monitors: '*' }];

  it('takes a rotated auth.secret on SIGHUP: connections holding tokens of the old one are closed at once, and those tokens refused', async () => {
    // revalidateMs is a minute: what closes the connection is the reload, not the periodic check.
    const file = configFile('rotate.json', { auth: { mode: 'config', secret: oldSecret, revalidateMs: 60_000, users } }, 0o600);
    const e = await edge(['--config', file], { REDIS_URL: await freshRedisUrl() });
    const oldToken = await mintToken('guard', oldSecret, 600);
    const client = await ZmcastClient.connect(e.url, { token: oldToken });
    const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) => client.once('close', (code, reason) => resolve({ code, reason, at: Date.now() })));
    configFile('rotate.json', { auth: { mode: 'config', secret: newSecret, revalidateMs: 60_000, users } }, 0o600);
    const t0 = Date.now();
    e.child.kill('SIGHUP');
    const c = await Promise.race([closed, sleep(3000).then(() => null)]);
    expect(c, 'the connection of the old token closed').not.toBeNull();
    expect(c).toMatchObject({ code: 4403, reason: 'Credentials revoked; sign in again' });
    expect(c!.at - t0).toBeLessThan(2000);
    console.info(`rotated secret: the old token's connection closed ${c!.at - t0} ms after SIGHUP`);
    expect(await upgradeRefusal(e.url, '/ws', { headers: { Authorization: `Bearer ${oldToken}` } })).toEqual({ status: 401, body: 'Invalid token\n' });
    const fresh = await ZmcastClient.connect(e.url, { token: await mintToken('guard', newSecret, 600) });
    await fresh.close();
    expect(e.log()).not.toContain(oldSecret);
    expect(e.log()).not.toContain(newSecret);
    expect(e.log()).not.toMatch(/readable by/); // the file is 0600
  });

  it('warns about a config file with a secret and a TLS key that others can read, and masks a Redis password holding "@"', async () => {
    // The password need not be right: what is under test is what the log says about it.
    const redis = await DrillRedis.start();
    try {
      const file = configFile('readable.json', { auth: { mode: 'config', secret: oldSecret, users } }, 0o644);
      const [key, cert] = [join(dir, 'edge.key'), join(dir, 'edge.crt')];
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
        '-subj', '/CN=edge', '-keyout', key, '-out', cert], { stdio: 'ignore' });
      chmodSync(key, 0o640);
      const e = await edge(['--config', file], {
        REDIS_URL: `redis://:s3cr@t-pw@127.0.0.1:${redis.port}`, ZMCAST_EDGE_TLS_CERT: cert, ZMCAST_EDGE_TLS_KEY: key,
      });
      const lines = e.log().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.find((l) => l.msg === 'started')).toMatchObject({ redis: `redis://***@127.0.0.1:${redis.port}` });
      expect(e.log()).not.toMatch(/s3cr|t-pw/);
      expect(lines).toContainEqual(expect.objectContaining({ level: 'warn', path: file, mode: '644', msg: expect.stringMatching(/^config file .* is readable by every user/) }));
      expect(lines).toContainEqual(expect.objectContaining({ level: 'warn', path: key, mode: '640', msg: expect.stringMatching(/^TLS private key is readable by its group/) }));
    } finally {
      await redis.kill();
    }
  });

  it('lets `zmcast watch` take its token from a file or ZMCAST_TOKEN instead of the command line', async () => {
    const redisUrl = await freshRedisUrl();
    const redis = new Redis(redisUrl);
    const cam = new PacketSource(redis, 1, { gop: 5, size: 500 });
    await cam.register();
    cam.start(25);
    try {
      const file = configFile('watch.json', { auth: { mode: 'config', secret: newSecret, users } }, 0o600);
      const e = await edge(['--config', file], { REDIS_URL: redisUrl });
      const token = await mintToken('guard', newSecret, 600);
      const tokenFile = join(dir, 'token');
      writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
      // Not spawnSync: the camera publishes from this process meanwhile.
      const watch = (args: string[], env: NodeJS.ProcessEnv = {}) => new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [BIN, 'watch', e.url, '--monitor', '1', '--duration', '2', '--quiet', '--out', '/dev/null', ...args], {
          env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'],
        });
        children.push(child);
        let stderr = '';
        child.stderr!.on('data', (d) => (stderr += d));
        child.once('exit', (status) => resolve({ status, stderr }));
      });
      for (const [how, r] of [['--token-file', await watch(['--token-file', tokenFile])], ['ZMCAST_TOKEN', await watch([], { ZMCAST_TOKEN: token })]] as const) {
        expect(r.status, `${how}: ${r.stderr}`).toBe(0);
        expect(JSON.parse(r.stderr.trim().split('\n').pop()!).packets, `${how}: ${r.stderr}`).toBeGreaterThan(10);
      }
      const missing = await watch(['--token-file', join(dir, 'no-such-file')]);
      expect(missing.status).toBe(2);
      expect(missing.stderr).toContain('cannot read --token-file');
    } finally {
      await cam.stop();
      redis.disconnect();
    }
  });
});

describe('zmcast edge, ZoneMinder mode', () => {
  it('searches an auth= hash without a user name off the event loop: 302 users × 744 hours do not stall /healthz', async () => {
    const db = await createZmTestDatabase();
    try {
      const zm = new ZmFixture(db);
      await zm.standardOptions({ ZM_AUTH_HASH_TTL: '744' });
      const stored = zmBcrypt('pw');
      const values = Array.from({ length: 302 }, (_, i) => `('user${i}', '${stored}', 1, 'View', 'View', 'None', 'View', 'None', 0)`);
      await db.sql.query(`INSERT INTO Users (Username, Password, Enabled, Stream, Events, Control, Monitors, System, TokenMinExpiry) VALUES ${values.join(',')}`);
      const e = await edge(['--auth', 'zoneminder', '--zm-conf', writeZmConf(db)], { REDIS_URL: await freshRedisUrl(), ZMCAST_AUTH_FAILURES_PER_MINUTE: '0' });
      let worst = 0;
      let probing = true;
      const probe = (async () => {
        while (probing) {
          const t0 = performance.now();
          await fetch(`${e.url}/healthz`);
          worst = Math.max(worst, performance.now() - t0);
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const t0 = performance.now();
      const refusals = await Promise.all(['a', 'b', 'c'].map((c) => upgradeRefusal(e.url, `/ws?auth=${c.repeat(32)}`)));
      const searchMs = performance.now() - t0;
      probing = false;
      await probe;
      expect(refusals).toEqual(Array(3).fill({ status: 401, body: 'Invalid username or password\n' }));
      console.info(`3 nameless auth= hashes (302 users × 744 hours each) answered in ${searchMs.toFixed(0)} ms; slowest /healthz meanwhile ${worst.toFixed(0)} ms`);
      expect(worst).toBeLessThan(100);
    } finally {
      await db.drop();
    }
  });
});
