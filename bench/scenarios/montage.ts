/**
 * The montage page with 16 tiles in Debian's Chromium (headless, software
 * decoding), against the real capture (16 monitors, each a looped clip as its
 * main stream and a smaller one as its sub-stream, passed through) and edge.
 * For each grid mode (main streams, sub-streams, sub-streams keyframes only):
 * bytes per tile on the wire, the browser's CPU (every Chromium process of the
 * run), frames drawn per tile, and time to first frame per tile, "cold" (the
 * page is the edge's first viewer of those streams: the GOP comes from Redis)
 * and "warm" (a page opened right after the first one closed, while the edge
 * still follows those streams: the GOP comes from the edge's memory).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Child } from '../lib/child.js';
import { makeClip, type Clip } from '../lib/media.js';
import { machineCpu, procCpuSeconds } from '../lib/proc.js';
import { benchModule, quantiles, Rig, sleep } from '../lib/rig.js';
import type { BenchOptions } from './options.js';

const TILES = 16;
const MODES = [
  { name: 'main', query: 'grid_quality=main&keyframes_only=0' },
  { name: 'sub', query: 'grid_quality=sub&keyframes_only=0' },
  { name: 'keyframes-only', query: 'grid_quality=sub&keyframes_only=1' },
] as const;

export interface MontageResult {
  mode: (typeof MODES)[number]['name'];
  tiles: number;
  /** Tiles that drew at least one frame in the window. */
  tilesDrawing: number;
  /** Mean over tiles, kbit/s on the wire (packet headers included). */
  kbitPerTile: number;
  /** Frames drawn per tile per second, mean over tiles. */
  drawnFpsPerTile: number;
  /** Every Chromium process of the run, in cores (1.0 = one core busy). */
  browserCpuCores: number;
  /** The whole machine's busy share in the window: near 1, the browser was starved and skipped GOPs. */
  machineBusy: number;
  /** GOP remainders the page skipped per tile per minute to stay at the live edge (decoder behind). */
  lateSkipsPerTileMinute: number;
  /** Subscribe → first frame drawn, ms, per tile. */
  firstFrameColdMs: ReturnType<typeof quantiles>;
  firstFrameWarmMs: ReturnType<typeof quantiles>;
  decodedSize: string;
}

interface TileSample {
  bytes: number;
  drawn: number;
  late: number;
  firstFrameMs: number | null;
  width: number;
  height: number;
}

const sample = (page: Page): Promise<TileSample[]> => page.evaluate(() => {
  type Tile = { bytes: number; decoded: number; decoder: { stats: { late: number } }; firstFrameMs: number | null; width: number; height: number };
  return [...(window as unknown as { zmcast: { tiles: Map<number, Tile> } }).zmcast.tiles.values()]
    .map((t) => ({ bytes: t.bytes, drawn: t.decoded, late: t.decoder.stats.late, firstFrameMs: t.firstFrameMs, width: t.width, height: t.height }));
});

/** Every Chromium process this bench started (descendants of this process named chrom*). */
function chromiumCpuSeconds(): number {
  const parents = new Map<number, number>();
  const names = new Map<number, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      names.set(Number(entry), stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')));
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const mine = (pid: number): boolean => {
    for (let p = parents.get(pid); p !== undefined && p > 1; p = parents.get(p)) if (p === process.pid) return true;
    return false;
  };
  let total = 0;
  for (const [pid, name] of names) if (name.startsWith('chrom') && mine(pid)) total += procCpuSeconds(pid) || 0;
  return total;
}

async function openPage(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  await page.goto(url);
  await page.waitForFunction((n) => {
    const tiles = (window as unknown as { zmcast?: { tiles: Map<number, { firstFrameMs: number | null }> } }).zmcast?.tiles;
    return tiles?.size === n && [...tiles.values()].every((t) => t.firstFrameMs !== null);
  }, TILES, { timeout: 60_000 });
  return page;
}

export async function montage(o: BenchOptions): Promise<MontageResult[]> {
  const fps = 15;
  const gop = 2 * fps;
  const main = makeClip({ width: 960, height: 540, fps, gop, kbps: 1500, seconds: 20 });
  const sub = makeClip({ width: 480, height: 270, fps, gop, kbps: 300, seconds: 20 });
  o.log(`  16 monitors: main ${describe(main)}, sub ${describe(sub)}; Chromium headless, software decoding`);
  const rig = await Rig.start('zmcast');
  const capture = Child.start('capture', benchModule('capture-process.js'), [rig.redis.url]);
  rig.children.push(capture);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const out: MontageResult[] = [];
  try {
    await capture.call('start', Array.from({ length: TILES }, (_, i) => ({ id: i + 1, name: `Camera ${i + 1}`, source: main.path, secondSource: sub.path })));
    await sleep(3000); // every monitor has a keyframe in Redis
    for (const mode of MODES) {
      const url = `http://127.0.0.1:${rig.port}/?${mode.query}`;
      const cold = await openPage(browser, url);
      const coldFirst = (await sample(cold)).map((t) => t.firstFrameMs!);
      await sleep(1000);
      const before = await sample(cold);
      const cpu0 = chromiumCpuSeconds();
      const machine0 = machineCpu();
      const t0 = performance.now();
      await sleep(o.seconds * 1000);
      const after = await sample(cold);
      const seconds = (performance.now() - t0) / 1000;
      const cpu = (chromiumCpuSeconds() - cpu0) / seconds;
      const machine1 = machineCpu();
      await cold.close();
      // Within the edge's linger (10 s after a channel's last viewer leaves): it still holds each GOP.
      const warm = await openPage(browser, url);
      const warmFirst = (await sample(warm)).map((t) => t.firstFrameMs!);
      await warm.close();
      const bytes = after.map((t, i) => t.bytes - before[i].bytes);
      const drawn = after.map((t, i) => t.drawn - before[i].drawn);
      const late = after.map((t, i) => t.late - before[i].late);
      const r: MontageResult = {
        mode: mode.name,
        tiles: after.length,
        tilesDrawing: drawn.filter((d) => d > 0).length,
        kbitPerTile: (bytes.reduce((a, b) => a + b, 0) * 8) / 1000 / seconds / after.length,
        drawnFpsPerTile: drawn.reduce((a, b) => a + b, 0) / seconds / after.length,
        browserCpuCores: cpu,
        machineBusy: (machine1.busy - machine0.busy) / (machine1.total - machine0.total),
        lateSkipsPerTileMinute: (late.reduce((a, b) => a + b, 0) / after.length / seconds) * 60,
        firstFrameColdMs: quantiles(coldFirst),
        firstFrameWarmMs: quantiles(warmFirst),
        decodedSize: `${after[0].width}x${after[0].height}`,
      };
      o.log(`  ${mode.name}: ${r.kbitPerTile.toFixed(0)} kbit/s per tile, ${r.drawnFpsPerTile.toFixed(1)} frames drawn/s per tile (${r.decodedSize}), ` +
        `browser ${r.browserCpuCores.toFixed(2)} cores (machine ${(100 * r.machineBusy).toFixed(0)}% busy, ${r.lateSkipsPerTileMinute.toFixed(1)} GOP skips/tile/min); first frame cold p50 ${r.firstFrameColdMs.p50} ms max ${r.firstFrameColdMs.max} ms, ` +
        `warm p50 ${r.firstFrameWarmMs.p50} ms max ${r.firstFrameWarmMs.max} ms`);
      out.push(r);
      await sleep(12_000); // past the edge's 10 s linger: the next mode starts cold
    }
  } finally {
    await browser.close();
    await rig.stop();
  }
  return out;
}

const describe = (c: Clip) => `${c.width}x${c.height} ${c.fps} fps GOP ${c.gop} ${c.kbps} kbit/s`;
