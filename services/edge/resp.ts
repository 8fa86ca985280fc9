/**
 * RESP2, the Redis wire format, for the edge's stream reads: commands out,
 * replies in. Bulk strings come back as Buffers (video is binary); a reply
 * split across socket reads is resumed where it stopped, and a bulk string
 * that spans reads is copied once into its own buffer, so a 10 MB backlog
 * read costs one copy, not one per chunk. The parser keeps no reference to
 * a chunk it was fed (what it returns or holds is copied), so the caller may
 * read every chunk into the same buffer.
 */

export type RespValue = Buffer | string | number | null | RespError | RespValue[];

/** An error reply (`-ERR …`): a value, not a thrown exception, until the caller decides. */
export class RespError extends Error {
  override readonly name = 'ReplyError';
}

/** A command as Redis reads it: an array of bulk strings. */
export function encodeCommand(args: readonly (string | number)[]): string {
  let out = `*${args.length}\r\n`;
  for (const arg of args) {
    const s = String(arg);
    out += `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
  }
  return out;
}

const CR = 13;

interface OpenArray {
  items: RespValue[];
  left: number;
}

export class RespParser {
  /** The start of a line whose end has not arrived yet. */
  private tail: Buffer | null = null;
  /** A bulk string being filled across reads, and the bytes of its CRLF still to skip. */
  private bulk: Buffer | null = null;
  private bulkFilled = 0;
  private crlfLeft = 0;
  private readonly open: OpenArray[] = [];

  /** `alloc` makes the buffer of a bulk string of `copyFrom` bytes or more (a video packet). */
  constructor(
    private readonly onReply: (reply: RespValue) => void,
    private readonly alloc: (len: number) => Buffer = Buffer.allocUnsafe,
    private readonly copyFrom = Infinity,
  ) {}

  /** Forgets a half-read reply (the connection it came from is gone). */
  reset(): void {
    this.tail = this.bulk = null;
    this.open.length = 0;
  }

  feed(chunk: Buffer): void {
    let pos = 0;
    if (this.bulk) {
      pos = this.fillBulk(chunk);
      if (this.bulk) return;
    }
    let buf = chunk;
    if (this.tail) {
      buf = Buffer.concat([this.tail, chunk.subarray(pos)]);
      this.tail = null;
      pos = 0;
    }
    while (pos < buf.length) {
      const eol = buf.indexOf(CR, pos + 1);
      if (eol === -1 || eol + 1 >= buf.length) {
        this.tail = Buffer.from(buf.subarray(pos));
        return;
      }
      const type = buf[pos];
      const next = eol + 2;
      switch (type) {
        case 0x24: { // '$' bulk string
          const len = readInt(buf, pos + 1, eol);
          if (len < 0) {
            pos = next;
            this.emit(null);
          } else if (len < this.copyFrom && next + len + 2 <= buf.length) {
            pos = next + len + 2;
            this.emit(Buffer.from(buf.subarray(next, next + len))); // small (ids, field names): Node's pool
          } else {
            this.bulk = len < this.copyFrom ? Buffer.allocUnsafe(len) : this.alloc(len);
            this.bulkFilled = 0;
            this.crlfLeft = 2;
            pos = this.fillBulk(buf.subarray(next)) + next;
            if (this.bulk) return;
          }
          continue;
        }
        case 0x2a: { // '*' array
          const n = readInt(buf, pos + 1, eol);
          pos = next;
          if (n < 0) this.emit(null);
          else if (n === 0) this.emit([]);
          else this.open.push({ items: [], left: n });
          continue;
        }
        case 0x3a: // ':' integer
          this.emit(readInt(buf, pos + 1, eol));
          break;
        case 0x2b: // '+' simple string
          this.emit(buf.toString('utf8', pos + 1, eol));
          break;
        case 0x2d: // '-' error
          this.emit(new RespError(buf.toString('utf8', pos + 1, eol)));
          break;
        default:
          throw new Error(`RESP: unexpected type byte ${type}`);
      }
      pos = next;
    }
  }

  /** Copies what `chunk` holds of the pending bulk string; returns the offset after what it used. */
  private fillBulk(chunk: Buffer): number {
    const bulk = this.bulk!;
    const n = Math.min(bulk.length - this.bulkFilled, chunk.length);
    chunk.copy(bulk, this.bulkFilled, 0, n);
    this.bulkFilled += n;
    let pos = n;
    if (this.bulkFilled < bulk.length) return pos;
    const skip = Math.min(this.crlfLeft, chunk.length - pos);
    this.crlfLeft -= skip;
    pos += skip;
    if (this.crlfLeft > 0) return pos;
    this.bulk = null;
    this.emit(bulk);
    return pos;
  }

  private emit(value: RespValue): void {
    for (;;) {
      const top = this.open[this.open.length - 1];
      if (!top) {
        this.onReply(value);
        return;
      }
      top.items.push(value);
      if (--top.left > 0) return;
      this.open.pop();
      value = top.items;
    }
  }
}

function readInt(buf: Buffer, start: number, end: number): number {
  let i = start;
  const negative = buf[i] === 0x2d;
  if (negative) i++;
  let n = 0;
  for (; i < end; i++) {
    const d = buf[i] - 0x30;
    if (d < 0 || d > 9) throw new Error('RESP: bad integer');
    n = n * 10 + d;
  }
  return negative ? -n : n;
}
