/**
 * The native fan-out writer on real sockets: every viewer gets every byte in
 * order, whether the kernel takes a frame whole, in part or not at all, and
 * whatever else the edge writes to the same socket meanwhile.
 */
import { describe, expect, it } from 'vitest';
import { beginFanout, endFanout, flushFanoutBefore, takeForFanout, useNativeWrites, writeNow } from '../../services/edge/fanout-batch.js';
import { binaryFrame, writeFrames } from '../../services/edge/frame.js';
import { until } from '../helpers/wait.js';
import { socketPairs, type Pair } from '../helpers/socket-pairs.js';
import { registry } from '../../shared/metrics.js';

async function counter(name: string): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  return metric?.values[0]?.value ?? 0;
}

const pair = socketPairs();

function packets(n: number, size: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => Buffer.alloc(size, i + 1));
}

describe('native fan-out writes', () => {
  it('are built and loaded (npm ci builds native/fanout.c; without it edges fall back to socket.write)', () => {
    expect(useNativeWrites(true), 'build/Release/fanout.node is missing: run `npm rebuild`').toBe(true);
  });

  it('write each packet to every socket in one call, bytes in order, JSON in between where it was written', async () => {
    useNativeWrites(true);
    const viewers: Pair[] = [];
    for (let i = 0; i < 20; i++) viewers.push(await pair()); // one at a time, so each knows its server side
    const sent = packets(10, 20_000).map((p) => binaryFrame(p));
    const expected: Buffer[] = [];
    for (const [i, f] of sent.entries()) {
      beginFanout();
      for (const v of viewers) writeFrames(v.server, [f]);
      // A reply to the first viewer mid-packet must follow the frame already taken for it.
      flushFanoutBefore(viewers[0].server);
      viewers[0].server.write(`{"n":${i}}`);
      endFanout();
      expected.push(f.wire);
    }
    const total = (v: Pair) => v.received.reduce((n, b) => n + b.length, 0);
    const want = expected.reduce((n, b) => n + b.length, 0);
    const replies = sent.reduce((n, _, j) => n + `{"n":${j}}`.length, 0);
    await until(() => viewers.every((v, i) => total(v) === want + (i === 0 ? replies : 0)), 5000, 'every byte');
    const first = Buffer.concat(viewers[0].received);
    expect(first.equals(Buffer.concat(expected.flatMap((w, i) => [w, Buffer.from(`{"n":${i}}`)])))).toBe(true);
    for (const v of viewers.slice(1)) expect(Buffer.concat(v.received).equals(Buffer.concat(expected))).toBe(true);
    for (const v of viewers) v.client.destroy();
  });

  it('leave what a full socket did not take to socket.write, which queues it, and deliver it all once read', async () => {
    useNativeWrites(true);
    const slow = await pair(false);
    const fast = await pair();
    const sent = packets(40, 500_000).map((p) => binaryFrame(p));
    const [written0, leftovers0] = [await counter('zmcast_edge_native_writes_total'), await counter('zmcast_edge_native_write_leftovers_total')];
    let queuedSeen = 0;
    for (const f of sent) {
      beginFanout();
      writeFrames(slow.server, [f]);
      writeFrames(fast.server, [f]);
      endFanout();
      queuedSeen = Math.max(queuedSeen, slow.server.writableLength);
    }
    // The kernel's buffers hold far less than 20 MB: Node has queued the rest, where the send budget sees it.
    expect(queuedSeen).toBeGreaterThan(1_000_000);
    // Counted: the frames the writer took (until each socket had a queue, after which Node writes), and those it took in part.
    expect(await counter('zmcast_edge_native_writes_total')).toBeGreaterThan(written0);
    expect(await counter('zmcast_edge_native_write_leftovers_total')).toBeGreaterThan(leftovers0);
    slow.client.on('data', (d) => slow.received.push(d));
    slow.client.resume();
    const want = sent.reduce((n, f) => n + f.size, 0);
    await until(() => [slow, fast].every((v) => v.received.reduce((n, b) => n + b.length, 0) === want), 20_000, 'both viewers to get every byte');
    for (const v of [slow, fast]) expect(Buffer.concat(v.received).equals(Buffer.concat(sent.map((f) => f.wire)))).toBe(true);
    slow.client.destroy();
    fast.client.destroy();
  });

  it('write one buffer at once with writeNow, after a frame of the open batch for that socket, and behind what Node has queued', async () => {
    useNativeWrites(true);
    const a = await pair();
    const f = binaryFrame(Buffer.alloc(3000, 9));
    beginFanout();
    writeFrames(a.server, [f]);
    writeNow(a.server, Buffer.from('after the frame'));
    endFanout();
    const full = await pair(false);
    const big = Buffer.alloc(8_000_000, 1);
    full.server.write(big); // more than the kernel holds: Node queues the rest
    expect(full.server.writableLength).toBeGreaterThan(0);
    writeNow(full.server, Buffer.from('behind the queue'));
    full.client.on('data', (d) => full.received.push(d));
    full.client.resume();
    const want = (p: Pair, n: number) => () => p.received.reduce((k, b) => k + b.length, 0) === n;
    await until(want(a, f.size + 15), 2000, 'the frame, then the write');
    await until(want(full, big.length + 16), 10_000, 'the queue, then the write');
    expect(Buffer.concat(a.received).equals(Buffer.concat([f.wire, Buffer.from('after the frame')]))).toBe(true);
    expect(Buffer.concat(full.received).subarray(big.length).toString()).toBe('behind the queue');
    a.client.destroy();
    full.client.destroy();
  });

  it('are not used for a socket closed before the batch is written, nor when turned off', async () => {
    useNativeWrites(true);
    const gone = await pair();
    const live = await pair();
    const f = binaryFrame(Buffer.alloc(1000, 7));
    beginFanout();
    expect(takeForFanout(gone.server, f)).toBe(true);
    expect(takeForFanout(live.server, f)).toBe(true);
    gone.server.destroy();
    endFanout();
    await until(() => live.received.reduce((n, b) => n + b.length, 0) === f.size, 2000, 'the live viewer\'s frame');
    useNativeWrites(false);
    beginFanout();
    expect(takeForFanout(live.server, f)).toBe(false);
    endFanout();
    live.client.destroy();
  });
});
