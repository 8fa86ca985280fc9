/**
 * Reads one stream's packets with av_read_frame, one at a time. Demuxer.packets()
 * runs its own read-ahead loop (up to 100 packets, not restartable); capture
 * wants a read only when it is ready for the packet, and a close that never
 * frees the input under a read still blocked in a worker thread.
 */
import '../../../shared/polyfills.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { AVERROR_EAGAIN, AVERROR_EOF, FFmpegError, Packet, type Demuxer, type Stream } from 'node-av';
import { SourceReadError } from './errors.js';

export class PacketReader {
  private readonly packet = new Packet();
  private reading: Promise<number> | null = null;
  private closed = false;

  constructor(private readonly demuxer: Demuxer, readonly stream: Stream) {
    this.packet.alloc();
  }

  /** The next packet of the stream, valid until the next call; null at end of input or once closed. */
  async next(): Promise<Packet | null> {
    const ctx = this.demuxer.getFormatContext();
    while (!this.closed) {
      this.packet.unref();
      this.reading = ctx.readFrame(this.packet);
      const ret = await this.reading;
      this.reading = null;
      if (this.closed || ret === AVERROR_EOF) return null;
      if (ret === AVERROR_EAGAIN) {
        await sleep(10);
        continue;
      }
      if (ret < 0) throw new SourceReadError(FFmpegError.strerror(ret));
      if (this.packet.streamIndex === this.stream.index) return this.packet;
    }
    return null;
  }

  /** Unblocks a read waiting for data; it then returns null. */
  interrupt(): void {
    this.closed = true;
    this.demuxer.interrupt();
  }

  /** Call once: frees the packet and closes the input after any read in flight has returned. */
  async close(): Promise<void> {
    this.interrupt();
    await this.reading;
    this.packet.free();
    await this.demuxer.close();
  }
}
