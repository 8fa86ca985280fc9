/**
 * Mode `zoneminder` against a real MariaDB holding ZoneMinder's tables:
 * every credential path, every permission rule, revocation, expiry and the
 * awkward inputs, through the same Authenticator the edge uses.
 */
import type { IncomingMessage } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAuthenticator, type Authenticator } from '../../shared/auth/authenticator.js';
import { parseAuthMessage } from '../../shared/auth/credentials.js';
import { AuthError } from '../../shared/auth/errors.js';
import { mysqlPasswordHash } from '../../shared/auth/passwords.js';
import type { Principal } from '../../shared/auth/types.js';
import { ZmDatabase } from '../../shared/zoneminder/database.js';
import { ZM_DEFAULT_SECRET } from '../../shared/zoneminder/options.js';
import type { AuthConfig } from '../../shared/config.js';
import { setLogLevel } from '../../shared/log.js';
import { authErrorFrom } from '../helpers/auth-error.js';
import { createZmTestDatabase, type TestDatabase } from '../helpers/mariadb.js';
import { metricValue } from '../helpers/metrics.js';
import { until } from '../helpers/wait.js';
import { authConfig, phpJwtEncode, SECRET, TestClock, zmAuthHashAt, zmBcrypt, ZmFixture, zmToken } from '../zoneminder/fixtures.js';

const HOUR = 3_600_000;
const CLIENT = '203.0.113.9';
/** db/zm_create.sql.in seeds admin/admin with this hash. */
const ZM_SEED_ADMIN = '$2b$12$NHZsm6AM2f2LQVROriz79ul3D6DnmFiZC.ZK5eqbF.ZWfwH9bqUJ6';

let db: TestDatabase;
let zm: ZmFixture;
const open: Authenticator[] = [];
const M: Record<string, number> = {};

beforeAll(async () => {
  setLogLevel('warn');
  db = await createZmTestDatabase();
  zm = new ZmFixture(db);
  await zm.standardOptions();
  for (let i = 1; i <= 6; i++) M[`m${i}`] = await zm.addMonitor({ id: i, name: `Camera ${i}` });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((a) => a.close()));
  await zm.standardOptions();
});

afterAll(async () => {
  setLogLevel('info');
  await db?.drop();
});

/** Without a clock the authenticator runs on real time, like tokens minted with the default `now`. */
async function start(over: Partial<AuthConfig> = {}, clock?: TestClock, database?: ZmDatabase): Promise<Authenticator> {
  const a = await createAuthenticator(authConfig({ mode: 'zoneminder', failuresPerMinute: 0, ...over }), {
    zmDatabase: database ?? ZmDatabase.connect(db.settings),
    now: clock?.now,
  });
  open.push(a);
  return a;
}

function upgrade(url: string, headers: Record<string, string> = {}, remoteAddress = CLIENT): IncomingMessage {
  return { url, headers, socket: { remoteAddress } } as unknown as IncomingMessage;
}

async function login(a: Authenticator, url: string, headers: Record<string, string> = {}, remoteAddress = CLIENT): Promise<Principal> {
  const { presented, clientAddress } = a.fromRequest(upgrade(url, headers, remoteAddress));
  return a.authenticate(presented, clientAddress);
}

const q = encodeURIComponent;

/** Revalidates until it fails (the Config table is re-read on a timer), or gives up. */
function revokedWithin(p: Principal, ms: number): Promise<AuthError> {
  return until(() => p.revalidate().then(() => undefined, (err: unknown) => {
    if (err instanceof AuthError) return err;
    throw err;
  }), ms, 'the principal to fail revalidation');
}

describe('ZoneMinder tokens', () => {
  it('logs in with an access token minted as ZoneMinder mints it, in every place a client can put it', async () => {
    await zm.addUser({ username: 'tok' });
    const clock = new TestClock();
    const a = await start({}, clock);
    const t = zmToken(SECRET, 'tok', { now: clock.t });
    for (const [url, headers] of [
      [`/ws?token=${t}`, {}],
      [`/ws?jwt_token=${t}`, {}],
      ['/ws', { authorization: `Bearer ${t}` }],
      ['/ws', { 'sec-websocket-protocol': `zmcast, zmcast.token.${t}` }],
    ] as const) {
      const p = await login(a, url, headers);
      expect(p).toMatchObject({ user: 'tok', method: 'token' });
      expect(p.expiresAt).toBe((Math.floor(clock.t / 1000) + 7200) * 1000);
    }
    const inBand = await a.authenticate(parseAuthMessage({ command: 'auth', token: t }), CLIENT);
    expect(inBand.user).toBe('tok');
  });

  it('refuses refresh tokens, alg:none and tokens signed with another key', async () => {
    await zm.addUser({ username: 'tok2' });
    const a = await start();
    expect((await authErrorFrom(login(a, `/ws?token=${zmToken(SECRET, 'tok2', { type: 'refresh' })}`))).code).toBe('refresh_token');
    const now = Math.floor(Date.now() / 1000);
    const none = phpJwtEncode({ iss: 'ZoneMinder', iat: now, exp: now + 60, user: 'tok2', type: 'access' }, '', { typ: 'JWT', alg: 'none' });
    const e1 = await authErrorFrom(login(a, `/ws?token=${none}`));
    expect([e1.code, e1.status]).toEqual(['invalid_token', 401]);
    expect((await authErrorFrom(login(a, `/ws?token=${zmToken('not-the-zoneminder-secret-at-all', 'tok2')}`))).code).toBe('invalid_token');
  });

  it('refuses an expired token, and an open connection fails revalidation once it expires', async () => {
    await zm.addUser({ username: 'exp' });
    const clock = new TestClock();
    const a = await start({}, clock);
    const t = zmToken(SECRET, 'exp', { now: clock.t, ttlHours: 1 });
    const p = await login(a, `/ws?token=${t}`);
    clock.advance(HOUR - 1000);
    await p.revalidate();
    clock.advance(1000);
    const err = await authErrorFrom(p.revalidate());
    expect([err.code, err.closeCode]).toEqual(['token_expired', 4401]);
    expect((await authErrorFrom(login(a, `/ws?token=${t}`))).code).toBe('token_expired');
  });

  it('refuses a token issued before TokenMinExpiry, and revokes open connections when it is bumped', async () => {
    const clock = new TestClock();
    const id = await zm.addUser({ username: 'rev' });
    const a = await start({}, clock);
    const t = zmToken(SECRET, 'rev', { now: clock.t });
    const p = await login(a, `/ws?token=${t}`);
    await zm.setUser(id, 'TokenMinExpiry', Math.floor(clock.t / 1000)); // iat == TokenMinExpiry is still valid
    await p.revalidate();
    await zm.setUser(id, 'TokenMinExpiry', Math.floor(clock.t / 1000) + 1); // "Revoke all" a second later
    const err = await authErrorFrom(p.revalidate());
    expect([err.code, err.closeCode]).toEqual(['revoked', 4403]);
    expect((await authErrorFrom(login(a, `/ws?token=${t}`))).code).toBe('revoked');
    clock.advance(2000);
    expect((await login(a, `/ws?token=${zmToken(SECRET, 'rev', { now: clock.t })}`)).user).toBe('rev');
  });

  it('refuses a disabled user (403) and revokes an open connection when the user is disabled', async () => {
    const id = await zm.addUser({ username: 'dis' });
    const a = await start();
    const p = await login(a, `/ws?token=${zmToken(SECRET, 'dis')}`);
    await zm.setUser(id, 'Enabled', 0);
    const err = await authErrorFrom(p.revalidate());
    expect([err.code, err.status, err.closeCode]).toEqual(['user_disabled', 403, 4403]);
    expect((await authErrorFrom(login(a, `/ws?token=${zmToken(SECRET, 'dis')}`))).status).toBe(403);
  });

  it('revokes a connection whose user was deleted or renamed', async () => {
    const id = await zm.addUser({ username: 'gone' });
    const a = await start();
    const p = await login(a, `/ws?token=${zmToken(SECRET, 'gone')}`);
    await zm.setUser(id, 'Username', 'renamed');
    expect((await authErrorFrom(p.revalidate())).code).toBe('revoked');
    expect((await authErrorFrom(login(a, `/ws?token=${zmToken(SECRET, 'nobody')}`))).code).toBe('revoked');
  });

  it('refuses tokens while ZM_AUTH_HASH_SECRET is the shipped default like any bad token, and says why in its status', async () => {
    await zm.addUser({ username: 'dflt', plain: 'pw-dflt' });
    await zm.setOptions({ ZM_AUTH_HASH_SECRET: ZM_DEFAULT_SECRET });
    const a = await start();
    expect(a.status().warnings.join('\n')).toMatch(/shipped default/);
    const err = await authErrorFrom(login(a, `/ws?token=${zmToken(ZM_DEFAULT_SECRET, 'dflt')}`));
    expect([err.code, err.publicReason]).toEqual(['invalid_token', 'Invalid token']);
    expect(err.detail).toMatch(/shipped default/);
    expect((await login(a, '/ws?user=dflt&pass=pw-dflt')).user).toBe('dflt');
  });

  it('revokes token connections when the secret changes (Config re-read)', async () => {
    await zm.addUser({ username: 'rot' });
    const a = await start({ zmRefreshMs: 1000 });
    const p = await login(a, `/ws?token=${zmToken(SECRET, 'rot')}`);
    await zm.setOptions({ ZM_AUTH_HASH_SECRET: 'a-brand-new-secret-after-rotation-42' });
    expect((await revokedWithin(p, 5000)).code).toBe('revoked');
  });
});

describe('legacy auth= hashes', () => {
  it('logs in with ?auth=&user= computed from the recipe, and with no user against every enabled user', async () => {
    const stored = zmBcrypt('h1');
    await zm.addUser({ username: 'hash1', password: stored });
    const clock = new TestClock();
    const a = await start({}, clock);
    const h = zmAuthHashAt(SECRET, 'hash1', stored, '', new Date(clock.t));
    expect(await login(a, `/ws?auth=${h}&user=hash1`)).toMatchObject({ user: 'hash1', method: 'auth_hash' });
    expect((await login(a, `/ws?auth=${h}&username=hash1`)).user).toBe('hash1');
    expect((await login(a, `/ws?auth=${h}`)).user).toBe('hash1');
    expect((await authErrorFrom(login(a, `/ws?auth=${h}&user=admin`))).code).toBe('invalid_credentials');
  });

  it('accepts the previous hour with TTL 2, expires with the window, and refuses older hashes', async () => {
    const stored = zmBcrypt('h2');
    await zm.addUser({ username: 'hash2', password: stored });
    const clock = new TestClock(new Date(2026, 6, 1, 12, 15).getTime());
    const a = await start({}, clock);
    const previous = zmAuthHashAt(SECRET, 'hash2', stored, '', new Date(clock.t - HOUR));
    const p = await login(a, `/ws?auth=${previous}&user=hash2`);
    expect(p.expiresAt).toBe(new Date(2026, 6, 1, 13, 0).getTime());
    clock.advance(HOUR);
    expect((await authErrorFrom(p.revalidate())).code).toBe('token_expired');
    expect((await authErrorFrom(login(a, `/ws?auth=${previous}&user=hash2`))).code).toBe('invalid_credentials');
  });

  it('treats ZM_AUTH_HASH_TTL=0 as 2 hours, as zms does', async () => {
    const stored = zmBcrypt('h3');
    await zm.addUser({ username: 'hash3', password: stored });
    await zm.setOptions({ ZM_AUTH_HASH_TTL: '0' });
    const clock = new TestClock();
    const a = await start({}, clock);
    const previous = zmAuthHashAt(SECRET, 'hash3', stored, '', new Date(clock.t - HOUR));
    expect((await login(a, `/ws?auth=${previous}&user=hash3`)).user).toBe('hash3');
  });

  it('with ZM_AUTH_HASH_IPS binds the hash to the client address, taken from X-Forwarded-For only via a trusted proxy', async () => {
    const stored = zmBcrypt('h4');
    await zm.addUser({ username: 'hash4', password: stored });
    await zm.setOptions({ ZM_AUTH_HASH_IPS: '1' });
    const a = await start({ trustedProxies: ['10.0.0.0/8'] });
    const h = zmAuthHashAt(SECRET, 'hash4', stored, '198.51.100.7', new Date());
    expect((await login(a, `/ws?auth=${h}&user=hash4`, {}, '198.51.100.7')).user).toBe('hash4');
    expect((await login(a, `/ws?auth=${h}&user=hash4`, { 'x-forwarded-for': '198.51.100.7' }, '10.0.0.2')).user).toBe('hash4');
    expect((await authErrorFrom(login(a, `/ws?auth=${h}&user=hash4`, { 'x-forwarded-for': '198.51.100.7' }, '192.0.2.50'))).code).toBe('invalid_credentials');
  });

  it('uses the ZoneMinder server\'s time zone for the hash when auth.zmTimeZone is set', async () => {
    const stored = zmBcrypt('h5');
    await zm.addUser({ username: 'hash5', password: stored });
    const clock = new TestClock(Date.UTC(2026, 11, 31, 20, 0)); // 1 Jan 2027 01:30 in Kolkata
    const a = await start({ zmTimeZone: 'Asia/Kolkata' }, clock);
    const { createHash } = await import('node:crypto');
    const h = createHash('md5').update(`${SECRET}hash5${stored}` + '1' + '1' + '0' + '127').digest('hex');
    expect((await login(a, `/ws?auth=${h}&user=hash5`)).user).toBe('hash5');
  });

  it('revokes a hash connection when the user\'s password changes', async () => {
    const stored = zmBcrypt('h6');
    const id = await zm.addUser({ username: 'hash6', password: stored });
    const a = await start();
    const p = await login(a, `/ws?auth=${zmAuthHashAt(SECRET, 'hash6', stored, '', new Date())}&user=hash6`);
    await zm.setUser(id, 'Password', zmBcrypt('changed'));
    expect((await authErrorFrom(p.revalidate())).code).toBe('revoked');
  });
});

describe('user and password', () => {
  it('accepts ZoneMinder\'s seeded admin/admin ($2b$12$) and PHP\'s $2y$ hashes', async () => {
    await zm.addUser({ username: 'seedadmin', password: ZM_SEED_ADMIN, monitors: 'Create' });
    await zm.addUser({ username: 'php', password: zmBcrypt('php-pw') });
    const a = await start();
    expect(await login(a, '/ws?user=seedadmin&pass=admin')).toMatchObject({ user: 'seedadmin', method: 'password', expiresAt: null });
    expect((await login(a, '/ws?username=php&password=php-pw')).user).toBe('php');
    expect((await a.authenticate(parseAuthMessage({ command: 'auth', user: 'php', pass: 'php-pw' }), CLIENT)).user).toBe('php');
  });

  it('accepts the MySQL * SHA1 form and a plaintext password, as ZoneMinder does', async () => {
    await zm.addUser({ username: 'oldmysql', password: mysqlPasswordHash('legacy') });
    await zm.addUser({ username: 'plainuser', password: 'plaintext-pw' });
    const a = await start();
    expect((await login(a, '/ws?user=oldmysql&pass=legacy')).user).toBe('oldmysql');
    expect((await login(a, '/ws?user=plainuser&pass=plaintext-pw')).user).toBe('plainuser');
  });

  it('refuses the -ZM- migration format with a reason that says how to fix it', async () => {
    await zm.addUser({ username: 'halfmigrated', password: '-ZM-$2a$10$' + 'x'.repeat(53) });
    const a = await start();
    const err = await authErrorFrom(login(a, '/ws?user=halfmigrated&pass=whatever'));
    expect([err.code, err.status]).toEqual(['unsupported_password_format', 401]);
    expect(err.publicReason).toMatch(/-ZM-.*ZoneMinder web console/);
    expect(Buffer.byteLength(err.publicReason)).toBeLessThanOrEqual(123); // fits a WebSocket close reason
  });

  it('gives one reason for an unknown user and a wrong password', async () => {
    await zm.addUser({ username: 'known', plain: 'right' });
    const a = await start();
    const wrong = await authErrorFrom(login(a, '/ws?user=known&pass=wrong'));
    const unknown = await authErrorFrom(login(a, '/ws?user=unknown&pass=wrong'));
    expect([wrong.code, wrong.status, wrong.publicReason]).toEqual([unknown.code, unknown.status, unknown.publicReason]);
    expect(wrong.publicReason).toBe('Invalid username or password');
  });

  it('needs a password: a bare user is refused unless relay is none and auth.trustRelayNone is set', async () => {
    await zm.addUser({ username: 'relayed' });
    const a = await start();
    expect((await authErrorFrom(login(a, '/ws?user=relayed'))).code).toBe('unsupported_credentials');
    await zm.setOptions({ ZM_AUTH_RELAY: 'none' });
    const untrusting = await start();
    expect((await authErrorFrom(login(untrusting, '/ws?user=relayed'))).code).toBe('unsupported_credentials');
    const trusting = await start({ trustRelayNone: true });
    expect(await login(trusting, '/ws?user=relayed')).toMatchObject({ user: 'relayed', method: 'trusted_user' });
    expect(trusting.status().warnings.join('\n')).toMatch(/without a password/);
  });

  it('revokes a password connection when the password changes', async () => {
    const id = await zm.addUser({ username: 'pwchange', plain: 'before' });
    const a = await start();
    const p = await login(a, '/ws?user=pwchange&pass=before');
    await p.revalidate();
    await zm.setUser(id, 'Password', zmBcrypt('after'));
    expect((await authErrorFrom(p.revalidate())).code).toBe('revoked');
  });

  it('refuses a correct password of a disabled user with 403', async () => {
    await zm.addUser({ username: 'off', plain: 'pw', enabled: 0 });
    const a = await start();
    const err = await authErrorFrom(login(a, '/ws?user=off&pass=pw'));
    expect([err.code, err.status]).toEqual(['user_disabled', 403]);
  });
});

describe('user names', () => {
  it('match exactly by default (latin1_bin), trailing spaces included', async () => {
    await zm.addUser({ username: 'Exact', plain: 'pw' });
    const a = await start();
    expect((await login(a, '/ws?user=Exact&pass=pw')).user).toBe('Exact');
    expect((await authErrorFrom(login(a, '/ws?user=exact&pass=pw'))).code).toBe('invalid_credentials');
    expect((await authErrorFrom(login(a, '/ws?user=Exact%20&pass=pw'))).code).toBe('invalid_credentials');
  });

  it('match in any case with ZM_CASE_INSENSITIVE_USERNAMES, for passwords, tokens and hashes', async () => {
    const stored = zmBcrypt('pw');
    await zm.addUser({ username: 'MixedCase', password: stored });
    await zm.setOptions({ ZM_CASE_INSENSITIVE_USERNAMES: '1' });
    const a = await start();
    expect((await login(a, '/ws?user=mixedcase&pass=pw')).user).toBe('MixedCase');
    expect((await login(a, `/ws?token=${zmToken(SECRET, 'MIXEDCASE')}`)).user).toBe('MixedCase');
    expect((await login(a, `/ws?auth=${zmAuthHashAt(SECRET, 'MixedCase', stored, '', new Date())}&user=mixedCASE`)).user).toBe('MixedCase');
  });

  it('refuse a case-insensitive name that matches two users', async () => {
    await zm.addUser({ username: 'Twin', plain: 'pw' });
    await zm.addUser({ username: 'twin', plain: 'pw' });
    await zm.setOptions({ ZM_CASE_INSENSITIVE_USERNAMES: '1' });
    const a = await start();
    expect((await authErrorFrom(login(a, '/ws?user=TWIN&pass=pw'))).code).toBe('invalid_credentials');
  });

  it('that look like SQL are data, never SQL', async () => {
    const evil = "x'; DROP TABLE Users; --";
    await zm.addUser({ username: evil, plain: 'pw' });
    const a = await start();
    expect((await authErrorFrom(login(a, `/ws?user=${q("' OR '1'='1")}&pass=${q("' OR '1'='1")}`))).code).toBe('invalid_credentials');
    expect((await authErrorFrom(login(a, `/ws?user=${q('admin" OR ""="')}&pass=x`))).code).toBe('invalid_credentials');
    expect((await authErrorFrom(login(a, `/ws?token=${zmToken(SECRET, "' OR 1=1 -- ")}`))).code).toBe('revoked');
    expect((await login(a, `/ws?user=${q(evil)}&pass=pw`)).user).toBe(evil);
    const [rows] = await db.sql.query('SELECT COUNT(*) AS n FROM Users');
    expect((rows as { n: number }[])[0].n).toBeGreaterThan(0);
  });

  it('outside latin1 are refused as unknown, not as a database error', async () => {
    const a = await start();
    const err = await authErrorFrom(login(a, `/ws?user=${q('漢字')}&pass=pw`));
    expect([err.code, err.status]).toEqual(['invalid_credentials', 401]);
  });
});

describe('ZM_OPT_USE_AUTH off', () => {
  it('lets everyone watch everything, as zms does, and revokes them when auth is turned on', async () => {
    await zm.setOptions({ ZM_OPT_USE_AUTH: '0' });
    const a = await start({ zmRefreshMs: 1000 });
    expect(a.status().warnings.join('\n')).toMatch(/OPT_USE_AUTH off/);
    const p = await login(a, '/ws');
    expect(p).toMatchObject({ user: '', method: 'anonymous', expiresAt: null });
    expect(p.canView(6)).toBe(true);
    await zm.setOptions({ ZM_OPT_USE_AUTH: '1' });
    expect((await revokedWithin(p, 5000)).code).toBe('revoked');
    expect((await authErrorFrom(login(a, '/ws'))).code).toBe('credentials_required');
  });
});

describe('per-monitor permissions from the database', () => {
  it('1. a Monitors_Permissions row: View allows, None denies, Inherit falls through', async () => {
    const id = await zm.addUser({ username: 'permrow', monitors: 'None' });
    await zm.grantMonitor(id, M.m1, 'View');
    await zm.grantMonitor(id, M.m2, 'None');
    await zm.grantMonitor(id, M.m3, 'Inherit');
    await zm.grantMonitor(id, M.m4, 'Edit');
    const a = await start();
    const p = await login(a, `/ws?token=${zmToken(SECRET, 'permrow')}`);
    expect([1, 2, 3, 4].map((m) => p.canView(m))).toEqual([true, false, false, true]);
  });

  it('the monitor row beats the base enum in both directions', async () => {
    const id = await zm.addUser({ username: 'permrow2', monitors: 'View' });
    await zm.grantMonitor(id, M.m1, 'None');
    const a = await start();
    const p = await login(a, `/ws?token=${zmToken(SECRET, 'permrow2')}`);
    expect([p.canView(1), p.canView(2)]).toEqual([false, true]);
  });

  it('2. a Groups_Permissions row covers the group\'s monitors and its child groups\' monitors', async () => {
    const parent = await zm.addGroup('Site A');
    const child = await zm.addGroup('Site A / Gate', parent);
    const grandchild = await zm.addGroup('Site A / Gate / Left', child);
    await zm.addToGroup(parent, M.m1);
    await zm.addToGroup(child, M.m2);
    await zm.addToGroup(grandchild, M.m3);
    const id = await zm.addUser({ username: 'groupie', monitors: 'None' });
    await zm.grantGroup(id, parent, 'View');
    const a = await start();
    const p = await login(a, `/ws?token=${zmToken(SECRET, 'groupie')}`);
    expect([1, 2, 3, 4].map((m) => p.canView(m))).toEqual([true, true, true, false]);
  });

  it('a group row with None denies even where another group allows', async () => {
    const outer = await zm.addGroup('All');
    const blocked = await zm.addGroup('Blocked', outer);
    await zm.addToGroup(outer, M.m1);
    await zm.addToGroup(blocked, M.m2);
    const id = await zm.addUser({ username: 'grpdeny', monitors: 'View' });
    await zm.grantGroup(id, outer, 'View');
    await zm.grantGroup(id, blocked, 'None');
    const a = await start();
    const p = await login(a, `/ws?token=${zmToken(SECRET, 'grpdeny')}`);
    expect([p.canView(1), p.canView(2), p.canView(5)]).toEqual([true, false, true]);
  });

  it('3. the role\'s monitor and group rows apply when the user\'s own rows do not decide', async () => {
    const g = await zm.addGroup('Role group');
    await zm.addToGroup(g, M.m3);
    const role = await zm.addRole({ name: 'Guard', stream: 'View', monitors: 'None' });
    await zm.roleGrantMonitor(role, M.m1, 'View');
    await zm.roleGrantMonitor(role, M.m2, 'None');
    await zm.roleGrantGroup(role, g, 'View');
    const id = await zm.addUser({ username: 'roleuser', stream: 'None', monitors: 'None', roleId: role });
    await zm.grantMonitor(id, M.m2, 'View');
    const a = await start();
    const p = await login(a, `/ws?token=${zmToken(SECRET, 'roleuser')}`);
    // Stream comes from the role (the user's is None); m2's user row beats the role's None.
    expect([1, 2, 3, 4].map((m) => p.canView(m))).toEqual([true, true, true, false]);
  });

  it('4. the base Monitors enum decides last, with the role\'s value where the user\'s is None', async () => {
    const role = await zm.addRole({ name: 'Viewer role', stream: 'View', monitors: 'View' });
    await zm.addUser({ username: 'baseview', monitors: 'View' });
    await zm.addUser({ username: 'basenone', monitors: 'None' });
    await zm.addUser({ username: 'baserole', stream: 'None', monitors: 'None', roleId: role });
    const a = await start();
    expect((await login(a, `/ws?token=${zmToken(SECRET, 'baseview')}`)).canView(5)).toBe(true);
    expect((await login(a, `/ws?token=${zmToken(SECRET, 'basenone')}`)).canView(5)).toBe(false);
    expect((await login(a, `/ws?token=${zmToken(SECRET, 'baserole')}`)).canView(5)).toBe(true);
  });

  it('Stream = None allows no live view at all', async () => {
    const id = await zm.addUser({ username: 'nostream', stream: 'None', monitors: 'Create' });
    await zm.grantMonitor(id, M.m1, 'Edit');
    const a = await start();
    const p = await login(a, `/ws?token=${zmToken(SECRET, 'nostream')}`);
    expect([p.canView(1), p.canView(2)]).toEqual([false, false]);
  });

  it('a permission removed in ZoneMinder is gone after the next revalidation', async () => {
    const id = await zm.addUser({ username: 'shrinking', monitors: 'None' });
    await zm.grantMonitor(id, M.m1, 'View');
    const a = await start();
    const p = await login(a, `/ws?token=${zmToken(SECRET, 'shrinking')}`);
    expect(p.canView(1)).toBe(true);
    await zm.grantMonitor(id, M.m1, 'None');
    expect(p.canView(1)).toBe(true);
    await p.revalidate();
    expect(p.canView(1)).toBe(false);
  });
});

describe('failures of the database and of clients', () => {
  it('answers 503, not 401, when the database goes away, and keeps open connections for the grace period', async () => {
    await zm.addUser({ username: 'dbdown' });
    const clock = new TestClock();
    const database = ZmDatabase.connect(db.settings);
    const a = await start({ revalidateGraceMs: 60_000 }, clock, database);
    const p = await login(a, `/ws?token=${zmToken(SECRET, 'dbdown', { now: clock.t })}`);
    await database.close();
    const err = await authErrorFrom(login(a, `/ws?token=${zmToken(SECRET, 'dbdown', { now: clock.t })}`));
    expect([err.code, err.status, err.closeCode]).toEqual(['auth_unavailable', 503, 1013]);
    clock.advance(30_000);
    await p.revalidate();
    clock.advance(31_000);
    expect((await authErrorFrom(p.revalidate())).code).toBe('auth_unavailable');
  });

  it('fails to start, naming the problem, when the database cannot be reached', async () => {
    const bad = ZmDatabase.connect({ host: '127.0.0.1', port: 1, user: 'zmuser', password: 'zmpass', database: 'zm' });
    await expect(createAuthenticator(authConfig({ mode: 'zoneminder' }), { zmDatabase: bad })).rejects.toThrow(/ECONNREFUSED|connect/);
  });

  it('rate-limits an address after repeated failures, right password or not, and not its neighbours', async () => {
    await zm.addUser({ username: 'target', plain: 'right' });
    const clock = new TestClock();
    const a = await start({ failuresPerMinute: 3 }, clock);
    for (let i = 0; i < 3; i++) expect((await authErrorFrom(login(a, '/ws?user=target&pass=guess'))).code).toBe('invalid_credentials');
    const limited = await authErrorFrom(login(a, '/ws?user=target&pass=right'));
    expect([limited.code, limited.status, limited.closeCode]).toEqual(['rate_limited', 429, 4029]);
    expect((await login(a, '/ws?user=target&pass=right', {}, '203.0.113.10')).user).toBe('target');
    clock.advance(61_000);
    expect((await login(a, '/ws?user=target&pass=right')).user).toBe('target');
  });

  it('never writes tokens or passwords to the log, and counts attempts by method and result', async () => {
    await zm.addUser({ username: 'quiet', plain: 'never-log-this-password' });
    const a = await start();
    const token = zmToken(SECRET, 'quiet');
    // Each login below is one attempt, counted under its method and result.
    const outcomes = ['token ok', 'password ok', 'password invalid_credentials', 'token invalid_token'];
    const attempts = () => Promise.all(outcomes.map((o) => {
      const [method, result] = o.split(' ');
      return metricValue('zmcast_auth_attempts_total', { method, result });
    }));
    const before = await attempts();
    const lines: string[] = [];
    const write = process.stderr.write;
    setLogLevel('debug');
    process.stderr.write = ((chunk: string | Uint8Array) => { lines.push(String(chunk)); return true; }) as typeof process.stderr.write;
    try {
      await login(a, `/ws?token=${token}`);
      await login(a, '/ws?user=quiet&pass=never-log-this-password');
      await authErrorFrom(login(a, '/ws?user=quiet&pass=wrong-password-also-secret'));
      await authErrorFrom(login(a, `/ws?token=${token.slice(0, -4)}AAAA`));
    } finally {
      process.stderr.write = write;
      setLogLevel('warn');
    }
    const text = lines.join('');
    expect(text).toContain('authentication refused');
    for (const secret of [token, token.split('.')[2], 'never-log-this-password', 'wrong-password-also-secret', SECRET]) {
      expect(text).not.toContain(secret);
    }
    const after = await attempts();
    expect(Object.fromEntries(outcomes.map((o, i) => [o, after[i] - before[i]]))).toEqual(Object.fromEntries(outcomes.map((o) => [o, 1])));
  });
});
