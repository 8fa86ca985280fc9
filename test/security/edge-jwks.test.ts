/**
 * An edge in `jwks` mode, through real sockets: tokens from an OIDC provider
 * (served here from a JWKS file) open the connection, the monitors claim
 * decides what may be watched, and a rotated key works without a restart.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZmcastClient } from '../../client/zmcast-client.js';
import type { ErrorReply } from '../../shared/protocol.js';
import { startEdge, PacketSource, type EdgeRig } from '../helpers/edge.js';
import { until } from '../helpers/wait.js';
import { upgradeRefusal } from './rig.js';

const ISSUER = 'https://idp.test/realms/cams';
const AUDIENCE = 'zmcast-edge';
const dir = mkdtempSync(join(tmpdir(), 'zmcast-jwks-'));
const jwksFile = join(dir, 'jwks.json');

interface Key { kid: string; privateKey: CryptoKey; jwk: JWK }

async function makeKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

function publish(...keys: Key[]): void {
  writeFileSync(jwksFile, JSON.stringify({ keys: keys.map((k) => k.jwk) }));
}

function sign(key: Key, monitors: unknown, ttlSec = 300, extra: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'guard-7', iat: now, exp: now + ttlSec, zmcast_monitors: monitors, ...extra })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid })
    .sign(key.privateKey);
}

let rig: EdgeRig;
let first: Key;

beforeAll(async () => {
  first = await makeKey('k1');
  publish(first);
  rig = await startEdge({
    auth: { mode: 'jwks', jwksFile, jwksIssuer: ISSUER, jwksAudience: AUDIENCE, jwksRefreshMs: 1000, inBandTimeoutMs: 0, failuresPerMinute: 0 },
  });
  for (const id of [1, 2]) {
    const cam = new PacketSource(rig.redis, id, { gop: 5, size: 200 });
    await cam.register();
    await cam.publish(6);
  }
});

afterAll(() => rig.close());

async function upgradeStatus(token: string): Promise<number> {
  try {
    const c = await ZmcastClient.connect(rig.url, { token });
    await c.close();
    return 101;
  } catch (err) {
    return Number(/HTTP (\d+)/.exec((err as Error).message)?.[1] ?? 0);
  }
}

describe('edge in jwks mode', () => {
  it('lets a provider token watch exactly the monitors its claim lists', async () => {
    const client = await ZmcastClient.connect(rig.url, { token: await sign(first, [1]) });
    const errors: ErrorReply[] = [];
    let packets = 0;
    client.on('errorReply', (e) => errors.push(e));
    client.on('packet', () => packets++);
    client.subscribeStream(1);
    client.subscribeStream(2);
    await until(() => packets > 0 && errors.length > 0, 5000, 'video of 1 and a refusal for 2');
    expect(errors).toEqual([expect.objectContaining({ code: 'forbidden', monitor_id: 2 })]);
    await client.close();
  });

  it('refuses tokens of another issuer key, expired ones and unsigned ones before the upgrade', async () => {
    const stranger = await makeKey('k1'); // same kid, other key
    expect(await upgradeStatus(await sign(stranger, '*'))).toBe(401);
    expect(await upgradeStatus(await sign(first, '*', -60))).toBe(401);
    const claims = (await sign(first, '*')).split('.')[1];
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${claims}.`;
    expect(await upgradeStatus(unsigned)).toBe(401);
    expect(await upgradeStatus(await sign(first, '*'))).toBe(101);
  });

  it('refuses ID tokens of the same audience where the provider names the type (Keycloak typ, Cognito token_use)', async () => {
    for (const kind of [{ typ: 'ID' }, { token_use: 'id' }]) {
      const token = await sign(first, '*', 300, kind);
      expect(await upgradeRefusal(rig.url, '/ws', { headers: { Authorization: `Bearer ${token}` } }), JSON.stringify(kind)).toEqual({ status: 401, body: 'Invalid token\n' });
    }
    for (const kind of [{ typ: 'Bearer' }, { token_use: 'access' }]) expect(await upgradeStatus(await sign(first, '*', 300, kind)), JSON.stringify(kind)).toBe(101);
  });

  it('accepts a rotated key once the provider publishes it, without a restart', async () => {
    const next = await makeKey('k2');
    const token = await sign(next, '*');
    expect(await upgradeStatus(token)).toBe(401);
    publish(first, next);
    await until(async () => (await upgradeStatus(token)) === 101, 10_000, 'the new key to be picked up');
  });
});
