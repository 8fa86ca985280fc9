/**
 * What the synthetic camera shows (FFmpeg's testsrc2): six vertical bars,
 * red, green, yellow, blue, magenta, cyan, over the whole height, with moving
 * shapes over them. A picture matches when most sampled spots of each bar
 * have its colour.
 */
import { expect } from 'vitest';

export type Rgb = [number, number, number];

const BARS: Rgb[] = [[255, 0, 0], [0, 255, 0], [255, 255, 0], [0, 0, 255], [255, 0, 255], [0, 255, 255]];
/** Heights sampled in each bar (fractions): away from the clock and the checkerboard. */
const ROWS = [0.35, 0.5, 0.99];
const TOLERANCE = 70;

/** Expects the pattern in a picture of width × height, read one pixel at a time. */
export function expectTestPattern(width: number, height: number, pixel: (x: number, y: number) => Rgb): void {
  BARS.forEach((want, bar) => {
    const x = Math.floor(((bar + 0.5) / BARS.length) * width);
    const seen = ROWS.map((f) => pixel(x, Math.min(height - 1, Math.floor(f * height))));
    const matching = seen.filter((rgb) => rgb.every((c, i) => Math.abs(c - want[i]) <= TOLERANCE));
    expect(matching.length, `bar ${bar} (${want}) at x=${x}: saw ${JSON.stringify(seen)}`).toBeGreaterThanOrEqual(2);
  });
}

/** A pixel of an I420 picture with the stated line sizes (BT.601, limited range, as FFmpeg's default). */
export function i420Pixel(data: Buffer, lineSizes: number[], height: number, x: number, y: number): Rgb {
  const [ly, lu] = lineSizes;
  const uStart = ly * height;
  const vStart = uStart + lu * Math.ceil(height / 2);
  const Y = data[y * ly + x] - 16;
  const U = data[uStart + (y >> 1) * lu + (x >> 1)] - 128;
  const V = data[vStart + (y >> 1) * lineSizes[2] + (x >> 1)] - 128;
  const clamp = (n: number) => Math.max(0, Math.min(255, Math.round(n)));
  return [clamp(1.164 * Y + 1.596 * V), clamp(1.164 * Y - 0.392 * U - 0.813 * V), clamp(1.164 * Y + 2.017 * U)];
}
