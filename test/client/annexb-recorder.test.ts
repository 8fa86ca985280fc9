/**
 * What `zmcast watch` writes across codec changes and reconnects: parameter
 * sets before keyframes, no undecodable head, no packet twice.
 */
import { describe, expect, it } from 'vitest';
import { AnnexBRecorder } from '../../client/annexb-recorder.js';
import type { Packet } from '../../shared/packet.js';
import type { CodecReply } from '../../shared/protocol.js';

const codec = (generation: number, epoch: string, sps: number): CodecReply => ({
  type: 'codec', monitor_id: 1, codec: 'h264', codec_string: 'avc1.42E01E', width: 320, height: 240,
  extradata: Buffer.from([0, 0, 0, 1, 0x67, sps]).toString('base64'), generation, epoch,
});

const packet = (generation: number, sequence: number, keyframe: boolean): Packet => ({
  kind: 1, keyframe, monitorId: 1, generation, sequence, captureTime: 0, pts: 0n, dts: 0n, duration: 40_000,
  data: Buffer.from([0, 0, 0, 1, keyframe ? 0x65 : 0x41, generation, sequence]),
});

function recorder() {
  const written: string[] = [];
  const r = new AnnexBRecorder({ write: (b: Buffer) => written.push(b[4] === 0x67 ? `sps${b[5]}` : `${b[4] === 0x65 ? 'K' : 'P'}${b[5]}.${b[6]}`) });
  return { r, written };
}

describe('AnnexBRecorder', () => {
  it('writes parameter sets before the first keyframe and nothing before it', () => {
    const { r, written } = recorder();
    r.codec(codec(1, 'a', 1));
    expect([r.packet(packet(1, 3, false)), r.packet(packet(1, 4, true)), r.packet(packet(1, 5, false))]).toEqual([false, true, true]);
    expect(written).toEqual(['sps1', 'K1.4', 'P1.5']);
  });

  it('after a reconnect skips the replayed GOP already written and carries on without a hole', () => {
    const { r, written } = recorder();
    r.codec(codec(1, 'a', 1));
    for (let s = 0; s <= 6; s++) r.packet(packet(1, s, s % 5 === 0));
    r.codec(codec(1, 'a', 1)); // the new edge restarts at the latest keyframe, 5
    for (let s = 5; s <= 11; s++) r.packet(packet(1, s, s % 5 === 0));
    expect(written).toEqual(['sps1', 'K1.0', 'P1.1', 'P1.2', 'P1.3', 'P1.4', 'K1.5', 'P1.6', 'P1.7', 'P1.8', 'P1.9', 'sps1', 'K1.10', 'P1.11']);
  });

  it('after a reconnect that missed packets starts again at the keyframe, parameter sets first', () => {
    const { r, written } = recorder();
    r.codec(codec(1, 'a', 1));
    for (let s = 0; s <= 2; s++) r.packet(packet(1, s, s === 0));
    r.codec(codec(1, 'a', 1));
    r.packet(packet(1, 25, true));
    expect(written).toEqual(['sps1', 'K1.0', 'P1.1', 'P1.2', 'sps1', 'K1.25']);
  });

  it('waits for a keyframe after a new generation or a new epoch, whose sequences start over', () => {
    const { r, written } = recorder();
    r.codec(codec(1, 'a', 1));
    r.packet(packet(1, 0, true));
    r.packet(packet(1, 1, false));
    r.codec(codec(2, 'a', 2));
    r.packet(packet(2, 1, false));
    r.packet(packet(2, 0, true));
    r.codec(codec(2, 'b', 3));
    r.packet(packet(2, 0, true));
    expect(written).toEqual(['sps1', 'K1.0', 'P1.1', 'sps2', 'K2.0', 'sps3', 'K2.0']);
  });
});
