/** A camera-like clip made with Debian's ffmpeg (no media is checked in), cached per run. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Clip {
  path: string;
  width: number;
  height: number;
  fps: number;
  gop: number;
  kbps: number;
}

export function makeClip(opts: { width: number; height: number; fps: number; gop: number; kbps: number; seconds: number }): Clip {
  const dir = join(tmpdir(), 'zmcast-bench-media');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `clip-${opts.width}x${opts.height}-${opts.fps}fps-g${opts.gop}-${opts.kbps}k-${opts.seconds}s.ts`);
  if (!existsSync(path)) {
    const run = spawnSync('ffmpeg', [
      '-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${opts.width}x${opts.height}:rate=${opts.fps}`,
      '-t', String(opts.seconds), '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency',
      '-g', String(opts.gop), '-keyint_min', String(opts.gop), '-bf', '0',
      '-b:v', `${opts.kbps}k`, '-maxrate', `${opts.kbps}k`, '-bufsize', `${2 * opts.kbps}k`, path,
    ], { encoding: 'utf8' });
    if (run.error || run.status !== 0) throw new Error(`capture-density needs Debian's ffmpeg with libx264: ${run.error?.message ?? run.stderr}`);
  }
  return { path, ...opts };
}
