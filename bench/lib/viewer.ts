/**
 * One synthetic viewer: a bare WebSocket client on a raw TCP socket. It reads
 * every byte the edge sends (so the edge does all its real work) but looks at
 * only the 44-byte zmcast packet header of each binary message and never
 * copies a payload, so a load-generator core can stand in for thousands of
 * browsers. It speaks the zmcast `/ws` protocol (also spoken by the naive
 * baseline) and, for the Socket.IO baseline, the few engine.io/socket.io v4
 * messages a subscriber needs, and nchan's WebSocket subscriber (the monitor
 * is in the URL, `/sub/m<id>`; no hello, no commands).
 */
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { HEADER_BYTES, MAGIC } from '../../shared/packet.js';

export type Protocol = 'zmcast' | 'socketio' | 'nchan';
export type Slowness = 'none' | 'paused' | 'throttled';

/** Called for each complete binary message whose first bytes are a zmcast packet header. */
export type PacketHandler = (v: Viewer, monitorId: number, sequence: number, captureTime: number, keyframe: boolean, bytes: number, generation: number) => void;

/** Runs `jobs` with at most `concurrency` in flight (handshakes, so the edge's accept queue is not flooded). */
export async function inBatches(jobs: (() => Promise<void>)[], concurrency: number): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, async () => {
    while (next < jobs.length) await jobs[next++]();
  }));
}

/** One read buffer for every socket of the process: reads are handled synchronously, so they never overlap. */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

const OP_CONT = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;

export interface ViewerOptions {
  port: number;
  protocol: Protocol;
  slow: Slowness;
  /** Bytes per second a throttled viewer reads. */
  throttleBytesPerSecond: number;
  onPacket: PacketHandler;
  /** nchan only: the monitor whose channel the socket subscribes to on connect. */
  monitorId?: number;
}

export class Viewer {
  socket!: Socket;
  /** Set once the handshake is done (and, for Socket.IO, the namespace joined). */
  open = false;
  closedByServer: number | null = null;
  codecSeen = false;
  acks = 0;
  droppedNotices = 0;
  droppedPackets = 0;
  /** Monitor events received (topic `events`). */
  events = 0;
  readonly errors: string[] = [];
  /** Per-viewer counters the load generator keeps for the measurement window. */
  received = 0;
  bytes = 0;
  lastSeq = -1;
  /** A montage viewer (several monitors on this socket): the last sequence per monitor. */
  readonly lastSeqByMonitor = new Map<number, number>();
  /** Monitors this socket subscribed to. */
  monitors = 0;
  outOfOrder = 0;
  firstPacketAt = 0;
  subscribedAt = 0;
  firstKeyframeAt = 0;
  codecBeforeKeyframe = false;

  private handshake = '';
  private upgraded = false;
  // Frame parser state.
  private hdr = Buffer.allocUnsafe(14);
  private hdrHave = 0;
  private hdrNeed = 2;
  private remaining = -1; // payload bytes left in the current frame, -1 = reading a header
  private opcode = 0; // opcode of the message being assembled (continuations keep it)
  private fin = false;
  private head = Buffer.allocUnsafe(HEADER_BYTES);
  private headHave = 0;
  private msgBytes = 0;
  private text: Buffer[] = [];
  private control: Buffer[] = [];
  private controlOp = 0;
  // Throttling.
  private readStartedAt = 0;
  private readBytes = 0;
  private resumeTimer: NodeJS.Timeout | null = null;
  private onOpen: (() => void) | null = null;
  private onAck: (() => void) | null = null;
  private onNextPacket: (() => void) | null = null;
  private onErrorReply: ((text: string) => void) | null = null;

  constructor(readonly opts: ViewerOptions) {}

  /** Connects and upgrades; resolves once the server's hello (or Socket.IO connect) arrived. */
  connect(timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('handshake timed out')); this.socket?.destroy(); }, timeoutMs);
      this.onOpen = () => { clearTimeout(timer); resolve(); };
      const path = this.opts.protocol === 'socketio' ? '/socket.io/?EIO=4&transport=websocket'
        : this.opts.protocol === 'nchan' ? `/sub/m${this.opts.monitorId}` : '/ws';
      this.socket = connect({
        host: '127.0.0.1',
        port: this.opts.port,
        noDelay: true,
        onread: { buffer: READ_BUFFER, callback: (n: number, buf: Uint8Array) => { this.onRead(buf as Buffer, n); return true; } },
      });
      this.socket.once('connect', () => {
        this.socket.write(
          `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${this.opts.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
      this.socket.on('error', (err) => { clearTimeout(timer); reject(err); });
      this.socket.on('close', () => {
        this.open = false;
        if (this.resumeTimer) clearTimeout(this.resumeTimer);
        clearTimeout(timer);
        reject(new Error('connection closed before the handshake')); // no-op once connected
      });
    });
  }

  /** Subscribes to the monitor's video; resolves on the server's ack. */
  subscribe(monitorId: number, timeoutMs = 30_000): Promise<void> {
    this.subscribedAt = performance.now();
    this.monitors++;
    if (this.opts.protocol === 'nchan') {
      // The upgrade subscribed (the channel is in the URL); nothing to ack.
      if (monitorId !== this.opts.monitorId) return Promise.reject(new Error(`an nchan viewer of monitor ${this.opts.monitorId} cannot subscribe to ${monitorId}`));
      this.acked();
      return Promise.resolve();
    }
    if (this.opts.protocol === 'socketio') return this.request(`42${JSON.stringify(['subscribe', monitorId])}`, 'ack', 'subscribe', timeoutMs);
    return this.command({ command: 'subscribe', topic: 'stream', monitor_id: monitorId, codec: 'auto' }, timeoutMs);
  }

  /** Sends a zmcast command that the server acks (`subscribe`, `unsubscribe`); resolves on the ack. */
  command(cmd: { command: string; topic: string; monitor_id: number; codec?: string }, timeoutMs = 30_000): Promise<void> {
    return this.request(JSON.stringify(cmd), 'ack', `${cmd.command} ${cmd.topic}`, timeoutMs);
  }

  /** A one-shot `stream` request (no subscription): resolves when its keyframe arrives. */
  oneShot(monitorId: number, timeoutMs = 30_000): Promise<void> {
    return this.request(JSON.stringify({ command: 'stream', monitor_id: monitorId, codec: 'auto' }), 'packet', 'one-shot stream', timeoutMs);
  }

  /** Leaves as a browser does: a close frame (1000), then waits for the server's close (at most `timeoutMs`). */
  async closeGracefully(timeoutMs = 2000): Promise<void> {
    if (this.socket.destroyed) return;
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    const code = Buffer.allocUnsafe(2);
    code.writeUInt16BE(1000, 0);
    this.sendControl(OP_CLOSE, code);
    const timer = setTimeout(() => this.close(), timeoutMs);
    await closed;
    clearTimeout(timer);
  }

  /** Sends `text` and resolves on the server's next ack (or binary packet); an error reply or the timeout rejects. */
  private request(text: string, until: 'ack' | 'packet', what: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const closed = () => done(new Error(`connection closed before the ${until} to ${what}`));
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.socket.off('close', closed);
        this.onAck = this.onNextPacket = this.onErrorReply = null;
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => done(new Error(`no ${until} to ${what}`)), timeoutMs);
      this.socket.once('close', closed);
      if (until === 'ack') this.onAck = () => done();
      else this.onNextPacket = () => done();
      this.onErrorReply = (reply) => done(new Error(`${what} refused: ${reply}`));
      this.sendText(text);
    });
  }

  /** Starts reading slowly (or not at all), as a viewer on a bad link would. */
  startSlowness(): void {
    if (this.opts.slow === 'paused') this.socket.pause();
    this.readStartedAt = performance.now();
    this.readBytes = 0;
  }

  close(): void {
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    this.socket?.destroy();
  }

  resetCounters(): void {
    this.received = 0;
    this.bytes = 0;
    this.outOfOrder = 0;
    this.droppedNotices = 0;
    this.droppedPackets = 0;
  }

  private sendText(text: string): void {
    const payload = Buffer.from(text);
    const len = payload.length;
    const hdrLen = len < 126 ? 2 : 4;
    const out = Buffer.allocUnsafe(hdrLen + 4 + len);
    out[0] = 0x80 | OP_TEXT;
    if (len < 126) out[1] = 0x80 | len;
    else { out[1] = 0x80 | 126; out.writeUInt16BE(len, 2); }
    const mask = randomBytes(4);
    mask.copy(out, hdrLen);
    for (let i = 0; i < len; i++) out[hdrLen + 4 + i] = payload[i] ^ mask[i & 3];
    this.socket.write(out);
  }

  private sendControl(opcode: number, payload: Buffer): void {
    const out = Buffer.allocUnsafe(6 + payload.length);
    out[0] = 0x80 | opcode;
    out[1] = 0x80 | payload.length;
    out.writeUInt32BE(0, 2); // a zero mask leaves the payload as is
    payload.copy(out, 6);
    this.socket.write(out);
  }

  private onRead(buf: Buffer, n: number): void {
    let i = 0;
    if (!this.upgraded) {
      const text = buf.toString('latin1', 0, n);
      this.handshake += text;
      const end = this.handshake.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!this.handshake.startsWith('HTTP/1.1 101')) {
        this.socket.destroy(new Error(`upgrade refused: ${this.handshake.split('\r\n')[0]}`));
        return;
      }
      this.upgraded = true;
      i = n - (this.handshake.length - end - 4);
      this.handshake = '';
      if (this.opts.protocol === 'nchan') this.opened();
    }
    this.parse(buf, i, n);
    if (this.opts.slow === 'throttled' && this.readStartedAt > 0) this.throttle(n);
  }

  private throttle(n: number): void {
    this.readBytes += n;
    const allowedAt = this.readStartedAt + (this.readBytes / this.opts.throttleBytesPerSecond) * 1000;
    const wait = allowedAt - performance.now();
    if (wait > 1 && !this.resumeTimer) {
      this.socket.pause();
      this.resumeTimer = setTimeout(() => { this.resumeTimer = null; this.socket.resume(); }, wait);
    }
  }

  private parse(buf: Buffer, start: number, end: number): void {
    let i = start;
    while (i < end) {
      if (this.remaining < 0) {
        // Frame header: 2 bytes, then 2 or 8 bytes of length (servers never mask).
        while (this.hdrHave < this.hdrNeed && i < end) this.hdr[this.hdrHave++] = buf[i++];
        if (this.hdrHave < this.hdrNeed) return;
        const len7 = this.hdr[1] & 0x7f;
        if (this.hdrNeed === 2 && len7 >= 126) {
          this.hdrNeed = len7 === 126 ? 4 : 10;
          continue;
        }
        const len = len7 < 126 ? len7 : len7 === 126 ? this.hdr.readUInt16BE(2) : this.hdr.readUInt32BE(2) * 2 ** 32 + this.hdr.readUInt32BE(6);
        const op = this.hdr[0] & 0x0f;
        const fin = (this.hdr[0] & 0x80) !== 0;
        this.hdrHave = 0;
        this.hdrNeed = 2;
        this.remaining = len;
        if (op >= 0x8) {
          this.controlOp = op;
          this.control = [];
        } else {
          if (op !== OP_CONT) {
            this.opcode = op;
            this.headHave = 0;
            this.msgBytes = 0;
            this.text = [];
          }
          this.fin = fin;
        }
        if (len === 0) this.endFrame(op >= 0x8);
        continue;
      }
      const take = Math.min(this.remaining, end - i);
      if (this.controlOpActive()) {
        this.control.push(Buffer.from(buf.subarray(i, i + take)));
      } else if (this.opcode === OP_BINARY) {
        if (this.headHave < HEADER_BYTES) {
          const n = Math.min(HEADER_BYTES - this.headHave, take);
          buf.copy(this.head, this.headHave, i, i + n);
          this.headHave += n;
        }
        this.msgBytes += take;
      } else {
        this.text.push(Buffer.from(buf.subarray(i, i + take)));
      }
      i += take;
      this.remaining -= take;
      if (this.remaining === 0) this.endFrame(this.controlOpActive());
    }
  }

  private controlOpActive(): boolean {
    return this.controlOp !== 0;
  }

  private endFrame(control: boolean): void {
    this.remaining = -1;
    if (control) {
      const op = this.controlOp;
      const body = Buffer.concat(this.control);
      this.controlOp = 0;
      this.control = [];
      if (op === OP_PING) this.sendControl(0xa, body);
      else if (op === OP_CLOSE) {
        this.closedByServer = body.length >= 2 ? body.readUInt16BE(0) : 1005;
        this.socket.destroy();
      }
      return;
    }
    if (!this.fin) return;
    if (this.opcode === OP_BINARY) this.onBinary();
    else if (this.opcode === OP_TEXT) this.onText(Buffer.concat(this.text).toString());
  }

  private onBinary(): void {
    if (this.headHave < HEADER_BYTES || this.head[0] !== MAGIC) return;
    const h = this.head;
    const keyframe = (h[3] & 1) !== 0;
    if (this.firstKeyframeAt === 0) {
      const now = performance.now();
      if (this.firstPacketAt === 0) this.firstPacketAt = now;
      if (keyframe) this.firstKeyframeAt = now;
      this.codecBeforeKeyframe = this.codecSeen;
    }
    this.opts.onPacket(this, h.readUInt32LE(4), h.readUInt32LE(12), h.readDoubleLE(16), keyframe, this.msgBytes, h.readUInt32LE(8));
    if (this.onNextPacket) this.onNextPacket();
  }

  private onText(text: string): void {
    if (this.opts.protocol === 'nchan') return; // nchan sends nothing but the channel's messages
    if (this.opts.protocol === 'socketio') return this.onEngineIo(text);
    const msg = JSON.parse(text) as { type?: string; count?: number };
    switch (msg.type) {
      case 'hello': this.opened(); break;
      case 'ack': this.acked(); break;
      case 'codec': this.codecSeen = true; break;
      case 'dropped': this.droppedNotices++; this.droppedPackets += msg.count ?? 0; break;
      case 'event': this.events++; break;
      case 'error': this.errors.push(text); this.onErrorReply?.(text); break;
    }
  }

  /** engine.io v4: 0 open, 2 ping, 4 message; socket.io v5 inside 4: 0 connect, 2 event, 5 binary event. */
  private onEngineIo(text: string): void {
    const type = text[0];
    if (type === '0') this.sendText('40');
    else if (type === '2') this.sendText('3');
    else if (type === '4') {
      if (text[1] === '0') this.opened();
      else if (text[1] === '2' && text.startsWith('42["ack"')) this.acked();
    }
  }

  private opened(): void {
    this.open = true;
    this.onOpen?.();
    this.onOpen = null;
  }

  private acked(): void {
    this.acks++;
    this.onAck?.();
    this.onAck = null;
  }
}
