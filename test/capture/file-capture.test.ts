import { describe, expect, it } from 'vitest';
import { pathToFileURL } from 'node:url';
import { NO_TIMESTAMP } from '../../shared/packet.js';
import { captureOnRedis } from '../fixtures/capture-on-redis.js';
import { configsOf, packetsOf, probeAnnexB, readVideoStream } from '../fixtures/capture-stream.js';
import { until } from '../helpers/wait.js';
import { makeVideoFile, type VideoFileOptions } from '../fixtures/media-files.js';

const ID = 31;
const captures = captureOnRedis();

/** Captures a file until `packetsWanted` packets are in Redis (the clips are 15 frames: that is a few loops). */
async function captureFile(source: string, packetsWanted: number) {
  const { capture, redis: r } = await captures.monitor({ id: ID, name: 'Clip', source });
  const started = Date.now();
  await capture.start();
  await until(async () => packetsOf(await readVideoStream(r, ID)).length >= packetsWanted, 15_000, `${packetsWanted} packets`);
  await capture.stop();
  const entries = await readVideoStream(r, ID);
  return { entries, packets: packetsOf(entries), config: configsOf(entries)[0], seconds: (Date.now() - started) / 1000 };
}

const cases: [string, VideoFileOptions][] = [
  ['MP4 with B-frames (length-prefixed, rewritten to Annex-B)', { ext: 'mp4', bframes: 2 }],
  ['MKV with B-frames', { ext: 'mkv', bframes: 2 }],
  ['MPEG-TS', { ext: 'ts' }],
  ['a raw H.264 stream without timestamps', { ext: 'h264' }],
  ['H.265 in MP4', { ext: 'mp4', codec: 'h265' }],
];

describe('file capture', () => {
  it.each(cases)('loops %s at real time as Annex-B that decodes', async (_, file) => {
    const path = makeVideoFile({ ...file, frames: 15, fps: 25, gop: 10 });
    const { packets, config, seconds } = await captureFile(path, 35);

    expect(config).toMatchObject({ codec: file.codec ?? 'h264', width: 320, height: 240 });
    expect(packets[0].keyframe).toBe(true);
    expect(packets.every((p) => p.data[0] === 0 && p.data[1] === 0)).toBe(true);
    // 35 frames of a 25 fps clip take 1.4 s when paced; a burst would take milliseconds.
    expect(seconds).toBeGreaterThan(1.2);
    const dts = packets.map((p) => p.dts).filter((t) => t !== NO_TIMESTAMP);
    if (file.ext !== 'h264') {
      // Timestamps keep rising across the loop instead of jumping back to the start.
      expect(dts.length).toBeGreaterThan(25);
      expect(dts.every((t, i) => i === 0 || t > dts[i - 1])).toBe(true);
      const pts = packets.map((p) => p.pts);
      expect(new Set(pts).size).toBe(pts.length);
    }
    const probe = probeAnnexB(config, packets);
    expect(probe).toMatchObject({ width: 320, height: 240, frames: packets.length, errors: '' });
  });

  it('takes a file: URL too', async () => {
    const path = makeVideoFile({ ext: 'ts' });
    const { packets } = await captureFile(pathToFileURL(path).href, 3);
    expect(packets[0].keyframe).toBe(true);
  });
});
