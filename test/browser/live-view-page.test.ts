/**
 * The live-view page in a real Chromium: it lists the monitors, decodes their
 * H.264 with WebCodecs and draws frames, starting at once from the keyframe.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { launchChromium } from '../helpers/chromium.js';
import { startCaptureAndEdge, type CaptureAndEdge } from '../helpers/capture-and-edge.js';
import { until } from '../helpers/wait.js';

let slice: CaptureAndEdge;
let browser: BrowserContext;
let url: string;

beforeAll(async () => {
  slice = await startCaptureAndEdge([
    { id: 1, name: 'Front door', source: 'synthetic:?size=320x240&fps=25&gop=50' },
    { id: 2, name: 'Yard', source: 'synthetic:?size=320x240&fps=25&gop=50' },
  ], { auth: { mode: 'none' } });
  url = `${slice.url}/`;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await slice?.close();
});

describe('live-view page', () => {
  it('decodes and draws every monitor with WebCodecs', async () => {
    await until(async () => (await slice.redis.hget('zmcast:{m:2}:meta', 'kf')) !== null, 15_000, 'keyframes');
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const t0 = Date.now();
    await page.goto(url);
    await page.waitForFunction(() => {
      const tiles = (window as unknown as { zmcast: { tiles: Map<number, { decoded: number }> } }).zmcast.tiles;
      return tiles.size === 2 && [...tiles.values()].every((t) => t.decoded > 0);
    }, undefined, { timeout: 15_000 });
    const firstFramesMs = Date.now() - t0;
    await page.waitForTimeout(1500);
    const stats = await page.evaluate(() =>
      [...(window as unknown as { zmcast: { tiles: Map<number, { decoded: number; errors: number; canvas: HTMLCanvasElement }> } }).zmcast.tiles.values()]
        .map((t) => ({ decoded: t.decoded, errors: t.errors, width: t.canvas.width, height: t.canvas.height })));
    for (const s of stats) {
      expect(s).toMatchObject({ errors: 0, width: 320, height: 240 });
      expect(s.decoded).toBeGreaterThan(25);
    }
    expect(errors).toEqual([]);
    expect(firstFramesMs).toBeLessThan(10_000);
    await page.screenshot({ path: join(tmpdir(), 'zmcast-live-view.png') });
    const captions = await page.locator('figcaption').allTextContents();
    expect(captions.join(' ')).toMatch(/Front door.*320×240/);
  });
});
