/**
 * The montage page in a real Chromium against real zmcast processes (capture
 * and edge, auth mode config): sign-in, only the permitted monitors, decoded
 * pictures that move, sub-stream in the grid and main stream when a tile is
 * opened with no blank frame, streams stopped for tiles out of view or in a
 * hidden tab and back at once when shown, MJPEG pictures (from a real picture
 * worker) for a monitor none of whose streams the browser decodes, and
 * recovery from a killed edge.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { hashPassword } from '../../shared/auth/index.js';
import { freePort } from '../../shared/redis-locator.js';
import { listMonitors, signIn } from '../../client/edge-http.js';
import { launchChromium } from '../helpers/chromium.js';
import { parseExposition, sampleSum } from '../helpers/metrics.js';
import { freshRedisUrl } from '../helpers/redis.js';
import { sleep, until } from '../helpers/wait.js';
import { Processes, type EdgeProcess } from '../client/zmcast-processes.js';

const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts');
const MAIN = 'synthetic:?size=640x360&fps=15&gop=15';
const SUB = 'synthetic:?size=320x180&fps=15&gop=15';
const MAIN_H265 = 'synthetic:?size=480x270&fps=15&gop=15&codec=h265';
/** Alice may watch 1 to 6 and 8; 7 exists but is Bob's. */
const ALICE = [1, 2, 3, 4, 5, 6, 8];

const procs = new Processes();
let redisUrl: string;
let edgeEnv: NodeJS.ProcessEnv;
let edge: EdgeProcess;
let adminUrl: string;
let workerMetricsUrl: string;
let browser: BrowserContext;
let page: Page;

interface TileState {
  id: number;
  drawn: number;
  errors: number;
  width: number;
  height: number;
  quality: string | null;
  stream: { quality?: string; keyframesOnly?: boolean; pictures?: true; fps?: number; width?: number } | null;
  visible: boolean;
  firstFrameMs: number | null;
  resumeMs: number | null;
}

const tiles = (): Promise<TileState[]> => page.evaluate(() => {
  type Tile = { monitor: { id: number }; decoded: number; errors: number; width: number; height: number; quality: string | null; stream: TileState['stream']; visible: boolean; firstFrameMs: number | null; resumeMs: number | null };
  const z = (window as unknown as { zmcast: { tiles: Map<number, Tile> } }).zmcast;
  return [...z.tiles.values()].map((t) => ({
    id: t.monitor.id, drawn: t.decoded, errors: t.errors, width: t.width, height: t.height, quality: t.quality,
    stream: t.stream, visible: t.visible, firstFrameMs: t.firstFrameMs, resumeMs: t.resumeMs,
  }));
});
const tile = async (id: number) => (await tiles()).find((t) => t.id === id)!;

/** Local video subscribers per monitor, from the edge's admin /metrics. */
async function subscribers(): Promise<Map<number, number>> {
  const scrape = parseExposition(await (await fetch(`${adminUrl}/metrics`)).text());
  return new Map([...ALICE, 7].map((id) => [id, sampleSum(scrape, 'zmcast_edge_stream_subscribers', { monitor: String(id) })]));
}

/** Derived picture streams the worker produces, from its /metrics. */
async function derivedStreams(): Promise<number> {
  return sampleSum(parseExposition(await (await fetch(`${workerMetricsUrl}/metrics`)).text()), 'zmcast_worker_derived_streams');
}

/** A few pixels of the tile's canvas, as a string: equal strings, same picture. */
const pixels = (id: number) => page.evaluate((monitor) => {
  const canvas = document.querySelector<HTMLCanvasElement>(`.tile[data-monitor="${monitor}"] canvas`)!;
  const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0;
  for (let i = 0; i < d.length; i += 97) sum = (sum * 31 + d[i]) % 1_000_000_007;
  return `${canvas.width}x${canvas.height}:${sum}`;
}, id);

async function startEdge(port?: number): Promise<EdgeProcess> {
  const admin = await freePort();
  const started = await procs.edge(redisUrl, { port, env: { ...edgeEnv, ZMCAST_EDGE_ADMIN_PORT: String(admin) } });
  adminUrl = `http://127.0.0.1:${admin}`;
  return started;
}

beforeAll(async () => {
  redisUrl = await freshRedisUrl();
  // Monitor 6's main stream is H.265, which Debian's Chromium cannot decode; its sub-stream is H.264.
  // Monitor 8 has only an H.265 stream: the page shows it as MJPEG pictures, made by the worker.
  const source = (id: number) => (id === 6 ? `${MAIN_H265}|${SUB}` : id === 8 ? MAIN_H265 : `${MAIN}|${SUB}`);
  await procs.capture(redisUrl, [...ALICE, 7].map((id) => `${id}=${source(id)}`).join(','));
  const workerPort = await freePort();
  await procs.worker(redisUrl, workerPort);
  workerMetricsUrl = `http://127.0.0.1:${workerPort}`;
  edgeEnv = {
    ZMCAST_AUTH_MODE: 'config',
    ZMCAST_AUTH_SECRET: 'montage-test-secret-0123456789abcdef',
    // One-minute tokens, the warning 5 s after each is issued: the page must refresh in-band to stay on.
    ZMCAST_AUTH_TOKEN_TTL: '60',
    ZMCAST_AUTH_EXPIRY_WARNING_MS: '55000',
    ZMCAST_AUTH_USERS: JSON.stringify([
      { name: 'alice', password: await hashPassword('wonderland', 4), monitors: ALICE },
      { name: 'bob', password: await hashPassword('builder', 4), monitors: [7] },
    ]),
  };
  edge = await startEdge();
  browser = await launchChromium();
  page = await browser.newPage();
  // Two columns of 16:9 tiles, three rows: the last row starts below the fold.
  await page.setViewportSize({ width: 960, height: 340 });
}, 90_000);

afterAll(async () => {
  await browser?.close();
  procs.killAll();
});

describe('montage page', () => {
  it('asks for sign-in, refuses a wrong password, and shows a tile for each permitted monitor and none other', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${edge.url}/`);
    await page.getByLabel('User').fill('alice');
    await page.getByLabel('Password').fill('not-her-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('#signin-error').textContent()).toBe('Invalid username or password');

    await page.getByLabel('User').fill('alice');
    await page.getByLabel('Password').fill('wonderland');
    const t0 = Date.now();
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForFunction(() => document.querySelectorAll('.tile').length > 0);
    const shown = await page.locator('.tile').evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.monitor)));
    expect(shown).toEqual(ALICE);
    // The page's list is the edge's, which never names a monitor she may not watch.
    const { token } = await signIn(edge.url, 'alice', 'wonderland');
    expect((await listMonitors(edge.url, token)).map((m) => m.id)).toEqual(ALICE);

    await until(async () => (await tiles()).filter((t) => t.visible).every((t) => t.drawn > 0), 20_000, 'every visible tile to draw');
    const firsts = (await tiles()).filter((t) => t.visible).map((t) => `monitor ${t.id} ${t.firstFrameMs} ms`);
    console.log(`montage: first frame per visible tile after subscribing (cold edge): ${firsts.join(', ')}; ${Date.now() - t0} ms from sign-in`);
    // The events panel starts with the last hour: capture connecting to each camera.
    await expect.poll(() => page.locator('#event-list').textContent(), { timeout: 5_000 }).toMatch(/Monitor 1: connected/);
    expect(errors).toEqual([]);
  });

  it('draws decoded pictures that change, from the sub-stream in the grid', async () => {
    const visible = (await tiles()).filter((t) => t.visible);
    expect(visible.length).toBeGreaterThanOrEqual(2);
    for (const t of visible) {
      const before = await pixels(t.id);
      await until(async () => (await pixels(t.id)) !== before, 5_000, `monitor ${t.id}'s picture to change`);
      expect(await tile(t.id)).toMatchObject({ quality: 'sub', width: 320, height: 180, errors: 0, stream: { quality: 'sub', keyframesOnly: false } });
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'montage.png') });
  });

  it('opening a tile (Enter) switches it to the main stream with no blank frame, and closing it (Escape) back to the grid', async () => {
    // Every animation frame, whether the canvas holds a picture (a resized canvas is transparent until drawn).
    await page.evaluate(() => {
      const canvas = document.querySelector<HTMLCanvasElement>('.tile[data-monitor="1"] canvas')!;
      const probe = { frames: 0, blank: 0, stop: false };
      (window as unknown as { probe: typeof probe }).probe = probe;
      const look = () => {
        if (probe.stop) return;
        const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = false;
        for (let i = 3; i < d.length && !painted; i += 4 * 101) painted = d[i] !== 0;
        probe.frames++;
        if (!painted) probe.blank++;
        requestAnimationFrame(look);
      };
      requestAnimationFrame(look);
    });
    await page.locator('.tile[data-monitor="1"]').focus();
    await page.keyboard.press('Enter');
    await until(async () => (await tile(1)).width === 640, 10_000, 'the main stream to be drawn');
    const probe = await page.evaluate(() => {
      const p = (window as unknown as { probe: { frames: number; blank: number; stop: boolean } }).probe;
      p.stop = true;
      return p;
    });
    console.log(`montage: switch to main drawn ${(await tile(1)).resumeMs} ms after asking; ${probe.frames} animation frames watched, ${probe.blank} blank`);
    expect(probe.frames).toBeGreaterThan(0);
    expect(probe.blank).toBe(0);
    expect(await tile(1)).toMatchObject({ quality: 'main', height: 360, stream: { quality: 'main', keyframesOnly: false } });
    expect(await page.locator('.tile[data-monitor="1"]').getAttribute('aria-pressed')).toBe('true');
    // The tiles the large view covers stop streaming.
    await until(async () => (await subscribers()).get(2) === 0, 5_000, 'covered tiles to unsubscribe');

    await page.keyboard.press('Escape');
    await until(async () => (await tile(1)).width === 320 && (await subscribers()).get(2) === 1, 10_000, 'the grid to come back on sub-streams');
  });

  it('a main stream this browser cannot decode (H.265) leaves the large view on the sub-stream, and the tile says why', async () => {
    await page.locator('.tile[data-monitor="6"]').focus();
    await page.keyboard.press('Enter');
    const message = page.locator('.tile[data-monitor="6"] .message');
    await expect.poll(() => message.textContent(), { timeout: 10_000 }).toMatch(/^H\.265 \(hev1\.[^)]*\) cannot be decoded by this browser: showing the sub-stream\.$/);
    const before = await tile(6);
    await until(async () => (await tile(6)).drawn > before.drawn + 5, 10_000, 'the sub-stream to go on in the large view');
    expect(await tile(6)).toMatchObject({ quality: 'sub', width: 320, errors: 0, stream: { quality: 'sub' } });
    await page.keyboard.press('Escape');
    await page.evaluate(() => window.scrollTo(0, 0));
  });

  it('a monitor none of whose streams this browser decodes shows MJPEG pictures that change, at 5 fps in the grid and 10 in the large view, and only while in view', async () => {
    // Below the fold it asks for nothing, and no picture stream is made (focusing tile 6 above may have scrolled it in for a moment).
    await until(async () => (await tile(8)).stream === null, 10_000, 'tile 8, below the fold again, to ask for nothing');
    await until(async () => (await derivedStreams()) === 0, 20_000, 'no derived stream');

    await page.locator('.tile[data-monitor="8"]').scrollIntoViewIfNeeded();
    const message = page.locator('.tile[data-monitor="8"] .message');
    await expect.poll(() => message.textContent(), { timeout: 10_000 }).toMatch(/^MJPEG 5 fps: H\.265 \(hev1\.[^)]*\) cannot be decoded by this browser\.$/);
    await until(async () => (await tile(8)).drawn > 0, 10_000, 'the first picture');
    const shown = await tile(8);
    console.log(`montage: first MJPEG picture (${shown.width}×${shown.height}) ${shown.resumeMs} ms after asking (worker cold)`);
    expect(shown).toMatchObject({ quality: 'mjpeg', errors: 0, stream: { pictures: true, fps: 5 } });
    // Matched to the tile (rounded up to 160 px steps), never wider than the camera's 480.
    expect(shown.width).toBe(shown.stream!.width);
    expect(shown.width).toBeLessThanOrEqual(480);
    expect(shown.height).toBe(Math.round((shown.width * 270) / 480));
    const before = await pixels(8);
    await until(async () => (await pixels(8)) !== before, 5_000, 'the picture to change');
    expect(await derivedStreams()).toBe(1);
    await sleep(1_100); // the caption's numbers refresh once a second
    await page.locator('.tile[data-monitor="8"]').screenshot({ path: join(ARTIFACTS, 'montage-mjpeg-tile.png') });
    // Pictures, not video: the edge counts no video subscriber for it.
    expect((await subscribers()).get(8)).toBe(0);

    await page.locator('.tile[data-monitor="8"]').focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => message.textContent(), { timeout: 5_000 }).toMatch(/^MJPEG 10 fps: H\.265/);
    const opened = await tile(8);
    await sleep(3_000);
    const rate = ((await tile(8)).drawn - opened.drawn) / 3;
    console.log(`montage: MJPEG in the large view: ${rate.toFixed(1)} pictures/s drawn (asked 10)`);
    expect(rate).toBeGreaterThan(5);
    expect(await tile(8)).toMatchObject({ quality: 'mjpeg', errors: 0, stream: { pictures: true, fps: 10 } });
    await page.keyboard.press('Escape');

    // Out of view: the tile unsubscribes and the worker stops making its pictures (a few seconds after the last edge wants them).
    await page.evaluate(() => window.scrollTo(0, 0));
    await until(async () => (await tile(8)).stream === null, 5_000, 'the tile to unsubscribe');
    await until(async () => (await derivedStreams()) === 0, 20_000, 'the worker to stop the derived stream');
  });

  it('tiles out of view and a hidden tab stop streaming; shown again, each draws its picture within 300 ms', async () => {
    await until(async () => [...(await subscribers()).values()].filter((n) => n > 0).length >= 2, 10_000, 'the visible tiles to stream');
    const offscreen = (await tiles()).filter((t) => !t.visible).map((t) => t.id);
    expect(offscreen.length).toBeGreaterThan(0);
    await until(async () => { const n = await subscribers(); return offscreen.every((id) => n.get(id) === 0); }, 5_000, 'tiles below the fold to stream nothing');
    expect((await subscribers()).get(7)).toBe(0);

    // Scroll the last row of video in (monitor 8, below it, shows pictures): the first row leaves the viewport, that one streams.
    const last = 6;
    await page.locator(`.tile[data-monitor="${last}"]`).scrollIntoViewIfNeeded();
    await until(async () => (await subscribers()).get(1) === 0 && (await subscribers()).get(last) === 1, 5_000, 'the first row to unsubscribe, the last to subscribe');
    await until(async () => (await tile(last)).resumeMs !== null && (await tile(last)).drawn > 0, 5_000, 'the last row to draw');

    await page.evaluate(() => window.scrollTo(0, 0));
    await until(async () => (await tile(1)).stream !== null && (await tile(1)).resumeMs !== null, 5_000, 'the first row to come back');
    const scrolledBack = await tile(1);

    // A hidden tab (as a browser reports it when the user switches tabs) streams nothing.
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await until(async () => [...(await subscribers()).values()].every((n) => n === 0), 5_000, 'a hidden tab to unsubscribe everything');
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await until(async () => (await tiles()).filter((t) => t.visible).every((t) => t.stream !== null && t.resumeMs !== null), 5_000, 'the visible tiles to draw again');
    const shownAgain = (await tiles()).filter((t) => t.visible);
    console.log(`montage: picture back after showing: scrolled into view ${scrolledBack.resumeMs} ms; tab shown again ${shownAgain.map((t) => `monitor ${t.id} ${t.resumeMs} ms`).join(', ')}`);
    for (const t of [scrolledBack, ...shownAgain]) expect(t.resumeMs).toBeLessThanOrEqual(300);
  });

  it('keeps its session: a token about to expire is exchanged at /login and sent in-band, the connection goes on', async () => {
    const state = () => page.evaluate(() => (window as unknown as { zmcast: { connection: { state: string; reconnects: number; refreshes: number } } }).zmcast.connection);
    const before = await state();
    await until(async () => (await state()).refreshes > before.refreshes, 20_000, 'an in-band refresh');
    expect(await state()).toMatchObject({ state: 'open', reconnects: before.reconnects });
  });

  it('recovers by itself when its edge is killed and another starts on the same port', async () => {
    const before = await tiles();
    await edge.kill('SIGKILL');
    await until(async () => (await page.evaluate(() => (window as unknown as { zmcast: { connection: { state: string } } }).zmcast.connection.state)) === 'reconnecting', 5_000, 'the page to notice');
    edge = await startEdge(edge.port);
    const t0 = Date.now();
    await until(async () => {
      const now = await tiles();
      return now.filter((t) => t.visible).every((t) => t.drawn > before.find((b) => b.id === t.id)!.drawn + 5);
    }, 20_000, 'every visible tile to draw again');
    const connection = await page.evaluate(() => (window as unknown as { zmcast: { connection: { state: string; reconnects: number } } }).zmcast.connection);
    console.log(`montage: drawing again ${Date.now() - t0} ms after the new edge started`);
    expect(connection).toMatchObject({ state: 'open', reconnects: 1 });
    expect((await tiles()).every((t) => t.errors === 0)).toBe(true);
  });
});
