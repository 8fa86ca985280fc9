import { describe, expect, it } from 'vitest';
import { encodeCommand, RespError, RespParser, type RespValue } from '../../services/edge/resp.js';
import { binaryFrame } from '../../services/edge/frame.js';
import { allocPacket } from '../../services/edge/packet-memory.js';

function parseChunks(chunks: Buffer[]): RespValue[] {
  const out: RespValue[] = [];
  const parser = new RespParser((v) => out.push(v));
  for (const c of chunks) parser.feed(c);
  return out;
}

const payload = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff)); // binary, CR and LF bytes included
// An XREAD reply with two streams, then an integer, a null read, an error and a status.
const wire = Buffer.concat([
  Buffer.from('*2\r\n*2\r\n$4\r\nm:1v\r\n*2\r\n*2\r\n$5\r\n1-0\r\n\r\n*2\r\n$1\r\np\r\n'),
  Buffer.from(`$${payload.length}\r\n`), payload, Buffer.from('\r\n'),
  Buffer.from('*2\r\n$3\r\n2-5\r\n*4\r\n$1\r\nc\r\n$0\r\n\r\n$1\r\ne\r\n$-1\r\n'),
  Buffer.from('*2\r\n$4\r\nm:2v\r\n*0\r\n'),
  Buffer.from(':-42\r\n*-1\r\n-ERR unknown command\r\n+OK\r\n'),
]);

function expectReplies(replies: RespValue[]): void {
  expect(replies).toHaveLength(5);
  const [xread, int, nil, err, ok] = replies;
  const streams = xread as [Buffer, [Buffer, RespValue[]][]][];
  expect(streams[0][0].toString()).toBe('m:1v');
  expect(streams[0][1][0][0].toString()).toBe('1-0\r\n');
  expect((streams[0][1][0][1][1] as Buffer).equals(payload)).toBe(true);
  expect(streams[0][1][1][1]).toEqual([Buffer.from('c'), Buffer.alloc(0), Buffer.from('e'), null]);
  expect(streams[1]).toEqual([Buffer.from('m:2v'), []]);
  expect(int).toBe(-42);
  expect(nil).toBeNull();
  expect(err).toBeInstanceOf(RespError);
  expect((err as RespError).message).toBe('ERR unknown command');
  expect(ok).toBe('OK');
}

describe('RESP', () => {
  it('encodes a command as an array of bulk strings, lengths in bytes', () => {
    expect(encodeCommand(['XREAD', 'COUNT', 500, 'STREAMS', 'é'])).toBe('*5\r\n$5\r\nXREAD\r\n$5\r\nCOUNT\r\n$3\r\n500\r\n$7\r\nSTREAMS\r\n$2\r\né\r\n');
  });

  it('parses nested replies with binary bulk strings, nulls, integers, errors and statuses', () => {
    expectReplies(parseChunks([wire]));
  });

  it('gives the same replies whichever byte a socket read ends on', () => {
    for (let cut = 1; cut < wire.length; cut++) {
      expectReplies(parseChunks([wire.subarray(0, cut), wire.subarray(cut)]));
    }
  });

  it('gives the same replies from one-byte reads and from random splits', () => {
    expectReplies(parseChunks([...wire].map((b) => Buffer.from([b]))));
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 200; round++) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < wire.length;) {
        const n = 1 + Math.floor(random() * 64);
        chunks.push(wire.subarray(at, at + n));
        at += n;
      }
      expectReplies(parseChunks(chunks));
    }
  });

  it('copies a bulk string that spans reads once, into a buffer of its own', () => {
    const big = Buffer.alloc(200_000, 0xab);
    const bytes = Buffer.concat([Buffer.from(`$${big.length}\r\n`), big, Buffer.from('\r\n')]);
    const chunks = [];
    for (let at = 0; at < bytes.length; at += 65_536) chunks.push(bytes.subarray(at, at + 65_536));
    const [reply] = parseChunks(chunks) as Buffer[];
    expect(reply.equals(big)).toBe(true);
    expect(reply.buffer.byteLength).toBeGreaterThanOrEqual(big.length);
  });

  it('refuses bytes that are not RESP', () => {
    const parser = new RespParser(() => undefined);
    expect(() => parser.feed(Buffer.from('HTTP/1.1 200 OK\r\n'))).toThrow(/unexpected type/);
  });
});

describe('packets read into framable buffers', () => {
  it('copies large bulk strings into the allocator\'s buffers, whole or split, and frames them without another copy', () => {
    const packet = Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 31) & 0xff));
    const bytes = Buffer.concat([Buffer.from('*2\r\n$1\r\np\r\n'), Buffer.from(`$${packet.length}\r\n`), packet, Buffer.from('\r\n')]);
    for (const chunks of [[bytes], [bytes.subarray(0, 5000), bytes.subarray(5000)]]) {
      const out: RespValue[] = [];
      const parser = new RespParser((v) => out.push(v), allocPacket, 1024);
      for (const c of chunks) parser.feed(c);
      const [field, raw] = out[0] as Buffer[];
      expect(field.toString()).toBe('p');
      expect(raw.equals(packet)).toBe(true);
      const f = binaryFrame(raw);
      expect(f.wire.buffer).toBe(raw.buffer); // built in the room in front of the payload
      expect([...f.wire.subarray(0, 4)]).toEqual([0x82, 126, packet.length >> 8, packet.length & 0xff]);
      expect(f.wire.subarray(4).equals(packet)).toBe(true);
      // Only once, and never for a slice of it: those are copied, the packet is left as it was.
      const again = binaryFrame(raw);
      const tail = binaryFrame(raw.subarray(44));
      expect(again.wire.buffer).not.toBe(raw.buffer);
      expect(tail.wire.buffer).not.toBe(raw.buffer);
      expect(raw.equals(packet)).toBe(true);
      expect(tail.wire.subarray(4).equals(packet.subarray(44))).toBe(true);
    }
  });
});
