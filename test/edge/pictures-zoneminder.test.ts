/**
 * ZoneMinder credentials on the picture routes, against a real ZoneMinder
 * database: the zms URL takes token=, auth=&user= and user=&pass= (or
 * username=&password=) as zms does and refuses wrong ones with 403 as zms
 * does; the native routes refuse them as the WebSocket upgrade does; a
 * monitor the user may not watch looks like one that does not exist.
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setLogLevel } from '../../shared/log.js';
import { createZmTestDatabase, writeZmConf, type TestDatabase } from '../helpers/mariadb.js';
import { until } from '../helpers/wait.js';
import { SECRET, zmAuthHashAt, zmBcrypt, ZmFixture, zmToken } from '../zoneminder/fixtures.js';
import { upgradeRefusal } from '../security/rig.js';
import { frameClient, readMultipart, startPictureSlice, type PictureSlice } from './pictures-rig.js';

let db: TestDatabase;
let slice: PictureSlice;
let stored: string;

beforeAll(async () => {
  setLogLevel('error');
  db = await createZmTestDatabase();
  const zm = new ZmFixture(db);
  await zm.standardOptions();
  await zm.addMonitor({ id: 1, name: 'Door' });
  await zm.addMonitor({ id: 2, name: 'Yard' });
  stored = zmBcrypt('viewer-pw');
  // May watch monitor 1 only.
  const viewer = await zm.addUser({ username: 'viewer', password: stored, monitors: 'None' });
  await zm.grantMonitor(viewer, 1, 'View');
  slice = await startPictureSlice([
    { id: 1, name: 'Door', source: 'synthetic:?size=320x240&fps=10&gop=10' },
    { id: 2, name: 'Yard', source: 'synthetic:?size=320x240&fps=5&gop=5' },
  ], { auth: { mode: 'zoneminder', zmConf: writeZmConf(db), failuresPerMinute: 0 } });
  await until(async () => (await slice.redis.xlen('zmcast:{m:1}:video')) > 0 && (await slice.redis.xlen('zmcast:{m:2}:video')) > 0, 20_000, 'video');
});

afterAll(async () => {
  await slice?.close();
  await db?.drop();
  setLogLevel('warn');
});

async function get(path: string): Promise<{ status: number; type: string | null; server: string | null; body: Buffer }> {
  const r = await fetch(slice.url + path);
  return { status: r.status, type: r.headers.get('content-type'), server: r.headers.get('server'), body: Buffer.from(await r.arrayBuffer()) };
}

describe('ZoneMinder credentials on picture URLs', () => {
  it('takes every credential form zms takes on the zms URL, for a monitor the user may watch', async () => {
    const token = zmToken(SECRET, 'viewer');
    const hash = zmAuthHashAt(SECRET, 'viewer', stored, '', new Date());
    for (const creds of [`token=${token}`, `auth=${hash}&user=viewer`, `auth=${hash}&username=viewer`, 'user=viewer&pass=viewer-pw', 'username=viewer&password=viewer-pw']) {
      const r = await get(`/zm/cgi-bin/nph-zms?mode=single&monitor=1&scale=50&${creds}`);
      expect(r.status, creds).toBe(200);
      expect(r.server).toMatch(/^ZoneMinder Video Server\//);
      expect(await sharp(r.body).metadata()).toMatchObject({ format: 'jpeg', width: 160, height: 120 });
    }
    const s = await readMultipart(`${slice.url}/zm/cgi-bin/nph-zms?mode=jpeg&monitor=1&maxfps=2&auth=${hash}&user=viewer`);
    try {
      expect(s.status).toBe(200);
      await until(() => s.parts.length >= 2, 10_000, 'two MJPEG parts');
      expect((await sharp(s.parts[1].body).metadata()).format).toBe('jpeg');
    } finally {
      s.close();
    }
  });

  it('refuses wrong credentials on the zms URL with 403, as zms does, and on native routes as the WebSocket upgrade does', async () => {
    const forged = zmToken('not-the-secret-0123456789abcdef', 'viewer');
    const wrongHash = zmAuthHashAt(SECRET, 'viewer', 'not-the-stored-hash', '', new Date());
    for (const creds of [`token=${forged}`, `auth=${wrongHash}&user=viewer`, 'user=viewer&pass=wrong', 'username=nobody&password=x', '']) {
      const r = await get(`/cgi-bin/nph-zms?mode=single&monitor=1&${creds}`);
      expect(r.status, creds || 'no credentials').toBe(403);
      expect(r.type).toMatch(/^text\/plain/);
    }
    for (const creds of ['user=viewer&pass=wrong', `token=${forged}`, `auth=${wrongHash}&user=viewer`]) {
      const ws = await upgradeRefusal(slice.url, `/monitors/1/ws?${creds}`);
      const http = await get(`/monitors/1/snapshot.jpg?${creds}`);
      expect(http.status, creds).toBe(ws.status);
      expect(http.body.toString()).toBe(ws.body);
    }
    // No credentials: a WebSocket may still log in in-band; plain HTTP cannot, so it is told to authenticate.
    const bare = await fetch(`${slice.url}/monitors/1/snapshot.jpg`);
    expect(bare.status).toBe(401);
    expect(bare.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('answers a monitor the user may not watch exactly like one that does not exist, on every route', async () => {
    const token = zmToken(SECRET, 'viewer');
    for (const route of ['/monitors/ID/snapshot.jpg?', '/monitors/ID/mjpeg?', '/cgi-bin/nph-zms?mode=single&monitor=ID&', '/cgi-bin/nph-zms?mode=jpeg&monitor=ID&']) {
      const notPermitted = await get(route.replace('ID', '2') + `token=${token}`);
      const missing = await get(route.replace('ID', '9') + `token=${token}`);
      expect(notPermitted.status, route).toBe(404);
      expect(notPermitted.body.toString()).toBe(missing.body.toString());
      expect(missing.status).toBe(404);
    }
    expect((await upgradeRefusal(slice.url, `/monitors/2/ws?token=${token}`)).status).toBe(404);
  });

  it('gives the same user images over the WebSocket with the same credentials', async () => {
    const hash = zmAuthHashAt(SECRET, 'viewer', stored, '', new Date());
    const c = await frameClient(slice.url, `/monitors/1/ws?auth=${hash}&username=viewer`);
    try {
      c.send({ command: 'image', format: 'jpeg', request_id: 'i' });
      const p = await until(() => c.payloads((m) => m.request_id === 'i')[0], 8000, 'the image');
      expect(p.meta).toMatchObject({ type: 'image', monitor_id: 1, width: 320, height: 240 });
      expect((await sharp(p.bytes).metadata()).format).toBe('jpeg');
    } finally {
      c.close();
    }
  });
});
