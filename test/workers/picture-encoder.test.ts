/**
 * The worker's decoder and encoder on real H.264 from a synthetic camera:
 * frames handed out while a decode is still running are complete, and one
 * bad frame does not leave the encoder refusing every later picture.
 */
import { describe, expect, it } from 'vitest';
import { Rational } from 'node-av';
import type { Redis } from 'ioredis';
import { FrameDecoder, type DecodedFrame } from '../../services/workers/frame-decoder.js';
import { PictureEncoder } from '../../services/workers/picture-encoder.js';
import { parsePictureSpec } from '../../shared/pictures/picture-spec.js';
import { configsOf, packetsOf, readVideoStream } from '../fixtures/capture-stream.js';
import { pictureRig } from './picture-rig.js';

const start = pictureRig();

async function cameraPackets() {
  const rig = await start([{ id: 1, name: 'Camera', source: 'synthetic:?size=320x180&fps=25&gop=10' }]);
  await rig.packets(1, 30);
  const entries = await readVideoStream(rig.redis as Redis, 1);
  const [config] = configsOf(entries);
  const packets = packetsOf(entries);
  return { config, packets: packets.slice(packets.findIndex((p) => p.keyframe)) };
}

const infoOf = (p: { generation: number; sequence: number; captureTime: number }) => ({ generation: p.generation, sequence: p.sequence, captureTime: p.captureTime });

describe('picture worker', () => {
  it('hands out only frames ready to encode, even while a decode is still receiving frames', async () => {
    const { config, packets } = await cameraPackets();
    const decoder = await FrameDecoder.open(config);
    const taken: DecodedFrame[] = [];
    try {
      for (const p of packets) {
        let decoding = true;
        const done = decoder.decode(p.data, infoOf(p), p.keyframe).finally(() => (decoding = false));
        // As the derived-stream loop does, at any moment: here between every step of the decode.
        while (decoding) {
          const frame = decoder.takeLatest();
          if (frame) taken.push(frame);
          await new Promise((r) => setImmediate(r));
        }
        await done;
      }
      expect(taken.length).toBeGreaterThan(packets.length);
      for (const t of taken) {
        expect([t.frame.timeBase.num, t.frame.timeBase.den]).toEqual([1, 1_000_000]);
        expect(t.frame.sampleAspectRatio.num).toBeGreaterThan(0);
      }
      // The newest frame and what it says it is travel together.
      expect(taken.at(-1)!.sequence).toBe(packets.at(-1)!.sequence);
    } finally {
      for (const t of taken) t.frame.free();
      decoder.close();
    }
  });

  it('makes JPEGs again after a frame it could not encode', async () => {
    const { config, packets } = await cameraPackets();
    const decoder = await FrameDecoder.open(config);
    const encoder = new PictureEncoder();
    const spec = parsePictureSpec({ format: 'jpeg', width: 160 });
    try {
      const p = packets[0];
      expect(await decoder.decode(p.data, infoOf(p), true)).toBe(true);
      const bad = decoder.takeLatest()!;
      bad.frame.timeBase = new Rational(0, 1); // what a raw frame carries: FFmpeg's buffer source refuses it
      await expect(encoder.encode(1, 'main', bad, spec)).rejects.toThrow();
      bad.frame.free();

      const good = decoder.takeLatest()!;
      const picture = await encoder.encode(1, 'main', good, spec).finally(() => good.frame.free());
      expect(picture).toMatchObject({ format: 'jpeg', width: 160, height: 90 });
      expect(picture.data.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    } finally {
      encoder.close();
      decoder.close();
    }
  });
});
