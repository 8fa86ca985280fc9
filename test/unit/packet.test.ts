import { describe, expect, it } from 'vitest';
import { decodePacket, encodePacket, decodeHeader, HEADER_BYTES, NO_TIMESTAMP, PacketFormatError, isKeyframe } from '../../shared/packet.js';

describe('packet format', () => {
  const sample = {
    data: Buffer.from([0, 0, 0, 1, 0x65, 1, 2, 3]),
    keyframe: true,
    monitorId: 4_000_000_000,
    generation: 7,
    sequence: 123456,
    captureTime: 1_764_000_000_123.5,
    pts: 40_000n,
    dts: NO_TIMESTAMP,
    duration: 40_000,
  };

  it('round-trips every header field and the payload', () => {
    const buf = encodePacket(sample);
    expect(buf.length).toBe(HEADER_BYTES + sample.data.length);
    const p = decodePacket(buf);
    expect(p).toMatchObject({ ...sample, kind: 1 });
    expect(p.data.equals(sample.data)).toBe(true);
    expect(isKeyframe(buf)).toBe(true);
    expect(isKeyframe(encodePacket({ ...sample, keyframe: false }))).toBe(false);
  });

  it('marks sub-stream packets with flag bit 1, beside the keyframe bit', () => {
    expect(decodeHeader(encodePacket(sample))).toMatchObject({ sub: false, keyframe: true });
    const sub = encodePacket({ ...sample, sub: true });
    expect(sub[3]).toBe(0b11);
    expect(decodeHeader(sub)).toMatchObject({ sub: true, keyframe: true });
  });

  it('rejects bytes that are not a zmcast packet', () => {
    expect(() => decodeHeader(Buffer.alloc(10))).toThrow(PacketFormatError);
    const wrongVersion = encodePacket(sample);
    wrongVersion[1] = 9;
    expect(() => decodeHeader(wrongVersion)).toThrow(/version 9/);
  });
});
