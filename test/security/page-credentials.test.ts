/**
 * The montage page in a real Chromium against an edge that needs
 * credentials: the token comes from the page's URL fragment (never sent to a
 * server), goes to `/monitors` in the Authorization header and to the
 * WebSocket as a subprotocol, never in a URL; the page lists and decodes only
 * what the user may watch, under its Content-Security-Policy.
 */
import type { BrowserContext } from 'playwright-core';
import { launchChromium } from '../helpers/chromium.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mintToken } from '../../shared/auth/index.js';
import { startCaptureAndEdge, type CaptureAndEdge } from '../helpers/capture-and-edge.js';
import { until } from '../helpers/wait.js';

const secret = 'page-credentials-secret-page-credentials';
let slice: CaptureAndEdge;
let browser: BrowserContext;

beforeAll(async () => {
  slice = await startCaptureAndEdge([
    { id: 1, name: 'Front door', source: 'synthetic:?size=320x240&fps=25&gop=50' },
    { id: 2, name: 'Back office', source: 'synthetic:?size=320x240&fps=25&gop=50' },
  ], { auth: { mode: 'config', secret, users: [{ name: 'wall', monitors: [1], enabled: true, tokensNotBefore: 0 }] } });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await slice?.close();
});

it('takes the token from #token=, sends it only in headers, and shows only the monitors the user may watch', async () => {
  await until(async () => (await slice.redis.hget('zmcast:{m:1}:meta', 'kf')) !== null, 15_000, 'a keyframe');
  const token = await mintToken('wall', secret, 600);
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // A CSP refusal shows as a console error ("Refused to … because it violates the … Content Security Policy").
  page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy/.test(m.text())) errors.push(m.text()); });
  const requested: { url: string; authorization?: string }[] = [];
  page.on('request', (r) => requested.push({ url: r.url(), authorization: r.headers().authorization }));
  const sockets: string[] = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(`${slice.url}/#token=${token}`);
  await page.waitForFunction(() => {
    const tiles = (window as unknown as { zmcast: { tiles: Map<number, { decoded: number }> } }).zmcast.tiles;
    return tiles.size === 1 && [...tiles.values()].every((t) => t.decoded > 5);
  }, undefined, { timeout: 15_000 });
  const tiles = await page.evaluate(() => [...(window as unknown as { zmcast: { tiles: Map<number, unknown> } }).zmcast.tiles.keys()]);
  expect(tiles).toEqual([1]);
  expect(requested.find((r) => r.url.endsWith('/monitors'))?.authorization).toBe(`Bearer ${token}`);
  for (const url of [...requested.map((r) => r.url), ...sockets]) expect(url).not.toContain(token);
  expect(sockets).toEqual([slice.url.replace('http', 'ws') + '/ws']);
  expect(errors).toEqual([]); // nothing refused by the Content-Security-Policy either
  await page.close();
});

it('asks to sign in when opened without a token, with a user and password or a token', async () => {
  const page = await browser.newPage();
  await page.goto(`${slice.url}/`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor({ timeout: 10_000 });
  for (const label of ['User', 'Password', 'Access token']) expect(await page.getByLabel(label, { exact: true }).isVisible()).toBe(true);
  expect(await page.locator('.tile').count()).toBe(0);
  await page.close();
});
