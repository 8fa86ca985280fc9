/**
 * The edge's `/login` (the montage page's sign-in): a user and password, or a
 * token still valid, exchanged for an access token of the edge's auth mode,
 * by the rules the WebSocket applies; the token then opens a WebSocket.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { ZmcastClient, ConnectRefusedError } from '../../client/zmcast-client.js';
import { hashPassword } from '../../shared/auth/index.js';
import { createZmTestDatabase, writeZmConf, type TestDatabase } from '../helpers/mariadb.js';
import { startEdge, type EdgeRig } from '../helpers/edge.js';
import { ZmFixture } from '../zoneminder/fixtures.js';

const SECRET = 'login-route-test-secret-0123456789abcdef';

async function post(rig: EdgeRig, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(`${rig.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, text: (await res.text()).trim() };
}

/** Whether the edge takes this token on a WebSocket upgrade. */
async function opensSocket(rig: EdgeRig, token: string): Promise<boolean | number> {
  try {
    const client = await ZmcastClient.connect(rig.url, { protocols: ['zmcast', `zmcast.token.${token}`] });
    await client.close();
    return true;
  } catch (err) {
    if (err instanceof ConnectRefusedError) return err.status;
    throw err;
  }
}

describe('/login in auth mode config', () => {
  let rig: EdgeRig;
  beforeAll(async () => {
    rig = await startEdge({
      auth: {
        mode: 'config', secret: SECRET, tokenTtlSec: 600, failuresPerMinute: 5,
        users: [
          { name: 'alice', password: await hashPassword('wonderland', 4), monitors: [1], enabled: true, tokensNotBefore: 0 },
          { name: 'mallory', password: await hashPassword('sneaky', 4), monitors: [1], enabled: false, tokensNotBefore: 0 },
        ],
      },
    });
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('says it takes passwords, and exchanges a right one for a token the WebSocket accepts', async () => {
    expect(await (await fetch(`${rig.url}/login`)).json()).toEqual({ password_login: true });
    const res = await post(rig, { user: 'alice', password: 'wonderland' });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.text) as { token: string; user: string; expires_at: number };
    expect(body.user).toBe('alice');
    expect(decodeJwt(body.token)).toMatchObject({ iss: 'zmcast', user: 'alice', type: 'access' });
    expect(body.expires_at - Date.now()).toBeGreaterThan(590_000);
    expect(await opensSocket(rig, body.token)).toBe(true);
  });

  it('refuses as the WebSocket refuses: wrong password 401, disabled user 403, another site 403', async () => {
    expect(await post(rig, { user: 'alice', password: 'nope' })).toEqual({ status: 401, text: 'Invalid username or password' });
    expect(await post(rig, { user: 'mallory', password: 'sneaky' })).toEqual({ status: 403, text: 'User is disabled' });
    expect((await post(rig, { user: 'alice', password: 'wonderland' }, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await post(rig, { user: 'alice' })).status).toBe(400);
  });

  it('refreshes a valid token for the same user, and refuses a bad one', async () => {
    const { token } = JSON.parse((await post(rig, { user: 'alice', password: 'wonderland' })).text) as { token: string };
    const res = await post(rig, {}, { authorization: `Bearer ${token}` });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toMatchObject({ user: 'alice' });
    expect((await post(rig, {}, { authorization: 'Bearer not.a.token' })).status).toBe(401);
  });

  it('counts failures per address like upgrades do: guessing ends in 429', async () => {
    let last = 0;
    for (let i = 0; i < 8 && last !== 429; i++) last = (await post(rig, { user: 'alice', password: `guess-${i}` })).status;
    expect(last).toBe(429);
  });
});

describe('/login in auth mode none', () => {
  it('issues no tokens and says so', async () => {
    const rig = await startEdge({ auth: { mode: 'none' } });
    try {
      expect(await (await fetch(`${rig.url}/login`)).json()).toEqual({ password_login: false });
      expect((await post(rig, { user: 'a', password: 'b' })).status).toBe(404);
    } finally {
      await rig.close();
    }
  });
});

describe('/login in auth mode zoneminder', () => {
  let db: TestDatabase;
  let rig: EdgeRig;
  beforeAll(async () => {
    db = await createZmTestDatabase();
    const zm = new ZmFixture(db);
    await zm.standardOptions();
    await zm.addMonitor({ id: 1, name: 'Gate' });
    await zm.addUser({ username: 'viewer', plain: 'letmein' });
    await zm.addUser({ username: 'gone', plain: 'letmein', enabled: 0 });
    rig = await startEdge({ auth: { mode: 'zoneminder', zmConf: writeZmConf(db) } });
  });
  afterAll(async () => {
    await rig?.close();
    await db?.drop();
  });

  it('checks the ZoneMinder user and issues a ZoneMinder token (ZM_AUTH_HASH_TTL hours) the WebSocket accepts', async () => {
    const res = await post(rig, { user: 'viewer', password: 'letmein' });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.text) as { token: string; expires_at: number };
    const claims = decodeJwt(body.token);
    expect(claims).toMatchObject({ iss: 'ZoneMinder', user: 'viewer', type: 'access' });
    expect(claims.exp! - claims.iat!).toBe(2 * 3600);
    expect(await opensSocket(rig, body.token)).toBe(true);
    expect(await post(rig, { user: 'viewer', password: 'wrong' })).toEqual({ status: 401, text: 'Invalid username or password' });
    expect(await post(rig, { user: 'gone', password: 'letmein' })).toEqual({ status: 403, text: 'User is disabled' });
  });
});
