/**
 * Packet memory reuse (packet-memory.ts): memory goes back only when nothing
 * can hold it, comes back poisoned, and every writer that may keep a frame
 * past its call pins it first. Real sockets: whether Node queues a write is
 * what decides.
 */
import { describe, expect, it } from 'vitest';
import type net from 'node:net';
import { allocPacket, giveBack, memoryOf, pin, POISON } from '../../services/edge/packet-memory.js';
import { binaryFrame, writeFrames } from '../../services/edge/frame.js';
import { beginFanout, endFanout, takeForFanout, useNativeWrites } from '../../services/edge/fanout-batch.js';
import { SocketWriter } from '../../services/edge/socket-writer.js';
import { CachedPacket, UseAfterRelease } from '../../services/edge/cached-packet.js';
import { decodePushedEntry } from '../../services/edge/push-reader.js';
import { decodeHeader, encodePacket, NO_TIMESTAMP } from '../../shared/packet.js';
import { metricValue } from '../helpers/metrics.js';
import { socketPairs } from '../helpers/socket-pairs.js';

/** A packet as the edge reads it: its bytes copied into packet memory. */
function readPacket(sequence: number, size = 20_000, keyframe = false): Buffer {
  const bytes = encodePacket({
    data: Buffer.alloc(size, sequence & 0xff), keyframe, monitorId: 1, generation: 1, sequence,
    captureTime: 1_700_000_000_000, pts: NO_TIMESTAMP, dts: NO_TIMESTAMP, duration: 40_000,
  });
  const raw = allocPacket(bytes.length);
  bytes.copy(raw);
  return raw;
}

const reused = () => metricValue('zmcast_edge_packet_memory_total', { source: 'reused' });
const isPoison = (b: Uint8Array) => b.every((x) => x === POISON);

describe('packet memory', () => {
  it('is reused by a later packet of about its size once given back, and poisoned meanwhile', async () => {
    const before = await reused();
    const a = readPacket(1);
    giveBack(a);
    expect(isPoison(a)).toBe(true);
    const b = allocPacket(17_000); // same size class (32 KB)
    expect(b.buffer).toBe(a.buffer);
    expect(allocPacket(20_000).buffer).not.toBe(a.buffer); // nothing else idle in that class
    expect(allocPacket(2_000_000).buffer).not.toBe(a.buffer);
    expect(await reused()).toBe(before + 1);
  });

  it('is never reused once pinned, nor when too large to pool, nor when given back twice', () => {
    const pinned = readPacket(2);
    pin(memoryOf(pinned));
    giveBack(pinned);
    expect(decodeHeader(pinned).sequence).toBe(2); // untouched
    expect(allocPacket(pinned.length).buffer).not.toBe(pinned.buffer);

    const huge = allocPacket(5_000_000);
    giveBack(huge);
    expect(allocPacket(5_000_000).buffer).not.toBe(huge.buffer);

    const twice = readPacket(3);
    giveBack(twice);
    giveBack(twice);
    const first = allocPacket(twice.length);
    expect(first.buffer).toBe(twice.buffer);
    expect(allocPacket(twice.length).buffer).not.toBe(twice.buffer); // listed once, taken once
    giveBack(first);
  });

  it('keeps at most 32 MB idle; the rest is left to the garbage collector', async () => {
    const idle0 = await metricValue('zmcast_edge_packet_memory_idle_bytes'); // what earlier tests gave back
    const held = Array.from({ length: 40 }, () => allocPacket(1_000_000)); // 1 MB class
    for (const b of held) giveBack(b);
    expect(await metricValue('zmcast_edge_packet_memory_idle_bytes')).toBeLessThanOrEqual(32 * 1024 * 1024);
    const again = Array.from({ length: 40 }, () => allocPacket(1_000_000));
    const mine = new Set(held.map((b) => b.buffer));
    expect(again.filter((b) => mine.has(b.buffer)).length).toBe(Math.floor((32 * 1024 * 1024 - idle0) / (1024 * 1024)));
    expect(await metricValue('zmcast_edge_packet_memory_idle_bytes')).toBe(idle0);
  });
});

describe('frames in packet memory', () => {
  it('are built in place once, for the payload the memory was read for, and nothing else', () => {
    const raw = readPacket(4);
    const original = Buffer.from(raw);
    const tail = binaryFrame(raw.subarray(44)); // a slice of it: copied, the packet untouched
    expect(tail.memory).toBeNull();
    expect(raw.equals(original)).toBe(true);
    const f = binaryFrame(raw);
    expect(f.wire.buffer).toBe(raw.buffer);
    expect(f.memory).toBe(memoryOf(raw));
    expect(f.wire.subarray(4).equals(original)).toBe(true);
    expect(binaryFrame(raw).memory).toBeNull(); // only once
  });

  it('leave a packet\'s header alone when ZoneMinder viewers get its codec bytes before /ws viewers get the packet', () => {
    const raw = readPacket(5);
    const original = Buffer.from(raw);
    const packet = new CachedPacket('1-1', raw, null);
    const [, bytes] = packet.zoneminder();
    expect(bytes.wire.subarray(4).equals(original.subarray(44))).toBe(true);
    expect(packet.zmcast().wire.subarray(4).equals(original)).toBe(true);
  });

  it('of a pushed entry are built in place over its id and fields, which were copied out', () => {
    const packetBytes = Buffer.from(readPacket(6));
    const message = Buffer.concat([Buffer.from(`3:1-1${'1:p'}${packetBytes.length}:`), packetBytes]);
    const read = allocPacket(message.length);
    message.copy(read);
    const [id, fields] = decodePushedEntry(read);
    const f = binaryFrame(fields[1]);
    expect(f.wire.buffer).toBe(read.buffer);
    expect(id.toString()).toBe('1-1');
    expect(fields[0].toString()).toBe('p');
    expect(f.wire.subarray(4).equals(packetBytes)).toBe(true);
  });
});

describe('a packet released by its channel', () => {
  it('gives its memory back and throws if used after that', () => {
    const packet = new CachedPacket('1-2', readPacket(7), null);
    packet.zmcast();
    packet.release();
    expect(isPoison(packet.raw)).toBe(true);
    expect(() => packet.zmcast()).toThrow(UseAfterRelease);
    expect(() => packet.zoneminder()).toThrow(UseAfterRelease);
  });

  it('keeps its memory when pinned (a one-shot) and stays usable', () => {
    const packet = new CachedPacket('1-3', readPacket(8), null);
    packet.pin();
    packet.release();
    expect(packet.zmcast().wire.subarray(4 + 44).every((x) => x === 8)).toBe(true);
  });
});

describe('writers pin what they may keep', () => {
  const pair = socketPairs();

  /** Writes frames until the socket queues: the kernel's buffers are full. */
  function fill(server: net.Socket): void {
    for (let i = 0; server.writableLength === 0 && i < 10_000; i++) server.write(Buffer.alloc(256 * 1024));
    expect(server.writableLength).toBeGreaterThan(0);
  }

  for (const native of [true, false]) {
    it(`pin nothing the kernel took at once, and a frame Node queued (${native ? 'native batch' : 'socket.write'})`, async () => {
      useNativeWrites(native);
      const open = await pair(true);
      const stuck = await pair(false);
      const taken = binaryFrame(readPacket(9));
      beginFanout();
      writeFrames(open.server, [taken]);
      endFanout();
      expect(taken.memory!.pinned).toBe(false);

      fill(stuck.server);
      const queued = binaryFrame(readPacket(10));
      beginFanout();
      writeFrames(stuck.server, [queued]);
      endFanout();
      expect(queued.memory!.pinned).toBe(true);
      open.client.destroy();
      stuck.client.destroy();
    });
  }

  it('pin a frame of the native batch a socket did not take whole', async () => {
    useNativeWrites(true);
    const open = await pair(true);
    const stuck = await pair(false);
    const small = binaryFrame(readPacket(11));
    beginFanout();
    expect(takeForFanout(open.server, small)).toBe(true);
    endFanout();
    expect(small.memory!.pinned).toBe(false);
    // Nothing queued in Node, so the batch takes it; more than the kernel holds, so write(2) takes part.
    const big = binaryFrame(readPacket(12, 32 * 1024 * 1024));
    beginFanout();
    expect(takeForFanout(open.server, big)).toBe(true);
    expect(takeForFanout(stuck.server, big)).toBe(true);
    endFanout();
    expect(stuck.server.writableLength).toBeGreaterThan(0);
    expect(big.memory!.pinned).toBe(true);
    open.client.destroy();
    stuck.client.destroy();
  });

  it('let a montage hold frames for its coalescing window: memory given back meanwhile goes back after the flush', async () => {
    const s = await pair(true);
    const writer = new SocketWriter(s.server, { coalesceMs: 1000 });
    writer.videoStreams = 2;
    const raw = readPacket(13);
    const f = binaryFrame(raw);
    const sent = Buffer.from(f.wire);
    writer.write([f]);
    giveBack(raw); // the packet left its GOP before the window ended
    expect(f.wire.equals(sent)).toBe(true);
    expect(allocPacket(raw.length).buffer).not.toBe(raw.buffer);
    writer.flush();
    expect(f.memory!.pinned).toBe(false);
    expect(isPoison(raw)).toBe(true);
    expect(allocPacket(raw.length).buffer).toBe(raw.buffer);

    const dropped = readPacket(14);
    const g = binaryFrame(dropped);
    writer.write([g]);
    giveBack(dropped);
    writer.discard(); // the connection closed: nothing held will be written
    expect(allocPacket(dropped.length).buffer).toBe(dropped.buffer);
    s.client.destroy();
  });
});
