/**
 * Guessing past the limits, against running edges: a client that chooses its
 * own address through X-Forwarded-For (a catch-all trusted-proxy range),
 * user names told apart by how long a wrong password takes, and guesses sent
 * in parallel so that all are checked before the first is counted.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlPasswordHash } from '../../shared/auth/passwords.js';
import { loadConfig } from '../../shared/config.js';
import { createZmTestDatabase, writeZmConf, type TestDatabase } from '../helpers/mariadb.js';
import { startEdge, type EdgeRig } from '../helpers/edge.js';
import { metricValue } from '../helpers/metrics.js';
import { sleep } from '../helpers/wait.js';
import { ZmFixture } from '../zoneminder/fixtures.js';
import { open, upgradeRefusal, type Refused } from './rig.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'zmcast.js');
const ROOT = join(import.meta.dirname, '..', '..');
const secret = 'guessing-secret-guessing-secret-0123';
const user = (name: string, password: string) => ({ name, password, monitors: '*' as const, enabled: true, tokensNotBefore: 0 });

/** The status of one upgrade attempt (101 when it opened). */
async function attempt(url: string, path: string, headers: Record<string, string> = {}): Promise<number> {
  try {
    const c = await open(url, path, { headers });
    c.ws.terminate();
    return 101;
  } catch (err) {
    return (err as Refused).status;
  }
}

/** Median time of `n` refused logins, one after another. */
/**
 * The median time to a refusal for each path. The paths take turns, in a
 * rotating order, so a busy moment of the machine falls on all of them alike
 * (measured one path after another, the first one's median was 16 % off the
 * rest in a CI run on an otherwise equal edge).
 */
async function medianRefusalsMs(url: string, paths: string[], rounds = 9): Promise<number[]> {
  const times = paths.map((): number[] => []);
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < paths.length; k++) {
      const i = (k + round) % paths.length;
      const t0 = performance.now();
      expect((await upgradeRefusal(url, paths[i])).status).toBe(401);
      times[i].push(performance.now() - t0);
    }
  }
  return times.map((t) => t.sort((a, b) => a - b)[rounds >> 1]);
}

describe('auth.trustedProxies', () => {
  it('refuses catch-all ranges at start, naming the setting', () => {
    for (const range of ['0.0.0.0/0', '::/0', '0.0.0.0/1', '::ffff:0:0/96']) {
      const r = spawnSync(process.execPath, [BIN, 'edge', '--port', '0'], {
        env: { ...process.env, ZMCAST_AUTH_MODE: 'none', ZMCAST_AUTH_TRUSTED_PROXIES: range, ZMCAST_EDGE_ADMIN_PORT: '0' },
        encoding: 'utf8', timeout: 30_000,
      });
      expect(r.status, range).toBe(2);
      expect(r.stderr, range).toContain(`config auth.trustedProxies (env ZMCAST_AUTH_TRUSTED_PROXIES): ${JSON.stringify(range)} is a catch-all range`);
    }
  });

  it('is set to the proxy alone in deploy/compose.yaml, so a client rotating X-Forwarded-For meets the failure limit', async () => {
    const compose = readFileSync(join(ROOT, 'deploy', 'compose.yaml'), 'utf8');
    const value = /ZMCAST_AUTH_TRUSTED_PROXIES:\s*(\S+)/.exec(compose)?.[1];
    expect(value).toBeDefined();
    const shipped = loadConfig({ env: { ZMCAST_AUTH_TRUSTED_PROXIES: value } }).auth.trustedProxies;
    const rig = await startEdge({
      auth: { mode: 'config', secret, users: [user('carol', bcrypt.hashSync('carol-pw', 4))], trustedProxies: shipped, failuresPerMinute: 20 },
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 25; i++) statuses.push(await attempt(rig.url, `/ws?user=carol&pass=guess${i}`, { 'X-Forwarded-For': `198.51.100.${i + 1}` }));
      expect(statuses.slice(0, 20)).toEqual(Array(20).fill(401));
      expect(statuses.slice(20)).toEqual(Array(5).fill(429));
    } finally {
      await rig.close();
    }
  });
});

describe('the time a wrong password takes', () => {
  let db: TestDatabase;
  afterAll(async () => db?.drop());

  it('is the same for unknown users and for users with cheaper hashes (config mode, cost-12 and cost-10 hashes)', async () => {
    const rig = await startEdge({
      auth: { mode: 'config', secret, failuresPerMinute: 0, users: [user('dear', bcrypt.hashSync('pw', 12)), user('cheap', bcrypt.hashSync('pw', 10))] },
    });
    try {
      const [unknown, dear, cheap] = await medianRefusalsMs(rig.url, ['nobody', 'dear', 'cheap'].map((name) => `/ws?user=${name}&pass=wrong`));
      console.info(`config mode, median wrong-password answer: unknown user ${unknown.toFixed(0)} ms, cost-12 user ${dear.toFixed(0)} ms, cost-10 user ${cheap.toFixed(0)} ms`);
      for (const known of [dear, cheap]) expect(Math.abs(known - unknown) / unknown).toBeLessThan(0.25);
    } finally {
      await rig.close();
    }
  });

  it('is the same for unknown users and for MySQL PASSWORD(), plaintext and cost-4 bcrypt users (ZoneMinder mode)', async () => {
    db = await createZmTestDatabase();
    const zm = new ZmFixture(db);
    await zm.standardOptions();
    await zm.addUser({ username: 'mysql', password: mysqlPasswordHash('pw') });
    await zm.addUser({ username: 'plain', password: 'plain-pw' });
    await zm.addUser({ username: 'cost4', password: bcrypt.hashSync('pw', 4) });
    await zm.addUser({ username: 'cost10', password: bcrypt.hashSync('pw', 10) });
    const rig = await startEdge({ auth: { mode: 'zoneminder', zmConf: writeZmConf(db), failuresPerMinute: 0 } });
    try {
      const names = ['mysql', 'plain', 'cost4', 'cost10'];
      const [unknown, ...medians] = await medianRefusalsMs(rig.url, ['nobody', ...names].map((name) => `/ws?user=${name}&pass=wrong`));
      const known = Object.fromEntries(names.map((name, i) => [name, medians[i]]));
      console.info(`zoneminder mode, median wrong-password answer: unknown user ${unknown.toFixed(0)} ms, ` +
        Object.entries(known).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(', '));
      for (const [name, ms] of Object.entries(known)) expect(Math.abs(ms - unknown) / unknown, name).toBeLessThan(0.25);
    } finally {
      await rig.close();
    }
  });
});

describe('guesses sent in parallel', () => {
  it('are counted when they start: no more than auth.failuresPerMinute are checked, and a real login from elsewhere does not wait behind them', async () => {
    const rig = await startEdge({
      auth: { mode: 'config', secret, users: [user('carol', bcrypt.hashSync('carol-pw', 10))], trustedProxies: ['127.0.0.1'], failuresPerMinute: 20 },
    });
    try {
      const checked0 = await metricValue('zmcast_auth_attempts_total', { method: 'password', result: 'invalid_credentials' });
      const guesser = { 'X-Forwarded-For': '203.0.113.66' };
      const statuses: number[] = [];
      let realLoginMs = 0;
      for (let wave = 0; wave < 3; wave++) {
        const guesses = Promise.all(Array.from({ length: 30 }, (_, i) => attempt(rig.url, `/ws?user=carol&pass=guess${wave}-${i}`, guesser)));
        if (wave === 0) {
          const t0 = performance.now();
          expect(await attempt(rig.url, '/ws?user=carol&pass=carol-pw', { 'X-Forwarded-For': '192.0.2.44' })).toBe(101);
          realLoginMs = performance.now() - t0;
        }
        statuses.push(...(await guesses));
      }
      const checked = (await metricValue('zmcast_auth_attempts_total', { method: 'password', result: 'invalid_credentials' })) - checked0;
      console.info(`90 parallel guesses from one address: ${statuses.filter((s) => s === 401).length} checked (401), ` +
        `${statuses.filter((s) => s === 429).length} refused (429); a real login from another address took ${realLoginMs.toFixed(0)} ms`);
      expect(checked).toBeLessThanOrEqual(20);
      expect(statuses.filter((s) => s === 401).length).toBe(checked);
      expect(statuses.filter((s) => s !== 401)).toEqual(Array(90 - checked).fill(429));
      expect(realLoginMs).toBeLessThan(1000);
      expect((await upgradeRefusal(rig.url, '/ws?user=carol&pass=carol-pw', { headers: guesser })).body).toMatch(/^Too many failed logins/);
    } finally {
      await rig.close();
    }
  });

  it('count a `busy` refusal as a failure, so filling the queue buys no extra guesses', async () => {
    const rig = await startEdge({
      auth: { mode: 'config', secret, users: [user('carol', bcrypt.hashSync('carol-pw', 11))], trustedProxies: ['127.0.0.1'], failuresPerMinute: 8 },
    });
    try {
      const addresses = Array.from({ length: 10 }, (_, i) => `203.0.113.${100 + i}`);
      const burst = addresses.flatMap((a) => Array.from({ length: 8 }, (_, i) => attempt(rig.url, `/ws?user=carol&pass=guess${i}`, { 'X-Forwarded-For': a })));
      // The queue holds 64 checks and one runs: of 80, some are refused as busy (503) at once.
      let busy = 0;
      const settled = burst.map((p) => p.then((s) => { if (s === 503) busy++; }));
      await sleep(1000);
      expect(busy).toBeGreaterThan(0);
      // Every address has used its 8 failures, those refused as busy included, while most checks still wait.
      for (const a of addresses) {
        expect((await upgradeRefusal(rig.url, '/ws?user=carol&pass=carol-pw', { headers: { 'X-Forwarded-For': a } })).status, a).toBe(429);
      }
      await Promise.all(settled);
    } finally {
      await rig.close();
    }
  });
});
