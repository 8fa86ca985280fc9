import { describe, expect, it } from 'vitest';
import { codecString, extradataToAnnexB, parameterSetsOf, splitAnnexB } from '../../shared/codec.js';

const sps = Buffer.from([0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9]);
const pps = Buffer.from([0x68, 0xeb, 0xe3, 0xcb]);
const idr = Buffer.from([0x65, 0x88, 0x84, 0x00]);
const annexB = Buffer.concat([Buffer.from([0, 0, 0, 1]), sps, Buffer.from([0, 0, 1]), pps, Buffer.from([0, 0, 0, 1]), idr]);

describe('codec helpers', () => {
  it('splits Annex-B with 3- and 4-byte start codes', () => {
    expect(splitAnnexB(annexB)).toEqual([sps, pps, idr]);
  });

  it('finds the parameter sets of an H.264 keyframe', () => {
    expect(splitAnnexB(parameterSetsOf('h264', annexB))).toEqual([sps, pps]);
  });

  it('derives the WebCodecs codec string from the SPS', () => {
    expect(codecString('h264', parameterSetsOf('h264', annexB))).toBe('avc1.64001F');
  });

  it('turns avcC extradata (MP4) into Annex-B', () => {
    const avcc = Buffer.concat([
      Buffer.from([1, 0x64, 0x00, 0x1f, 0xff, 0xe1]), Buffer.from([0, sps.length]), sps,
      Buffer.from([1]), Buffer.from([0, pps.length]), pps,
    ]);
    expect(splitAnnexB(extradataToAnnexB('h264', avcc))).toEqual([sps, pps]);
    expect(extradataToAnnexB('h264', annexB)).toBe(annexB);
  });
});
