/**
 * An RTSP camera, passed through: packets are demuxed and never decoded. The
 * URL may carry credentials; FFmpeg's messages do not repeat them.
 */
import '../../../shared/polyfills.js';
import { Demuxer, type IRational } from 'node-av';
import type { SourceInfo, SourcePacket, VideoSource } from '../source.js';
import { SourceGuard, endIfClosed } from './guard.js';
import { PacketReader } from './packet-reader.js';
import { passthroughStream, streamInfo, toSourcePacket } from './stream-info.js';

export class RtspSource implements VideoSource {
  private readonly guard = new SourceGuard();
  private reader: PacketReader | null = null;
  private timeBase: IRational = { num: 1, den: 90_000 };

  constructor(private readonly url: string, private readonly timeoutMs: number) {}

  open(): Promise<SourceInfo> {
    return this.guard.run(async () => {
      // TCP survives NAT and lossy links where UDP drops reference frames.
      // `timeout` bounds every socket wait: without it a camera that stops
      // sending blocks the read forever.
      const demuxer = await Demuxer.open(this.url, {
        options: { rtsp_transport: 'tcp', timeout: String(this.timeoutMs * 1000) },
      });
      try {
        const { stream, codec } = passthroughStream(demuxer);
        this.timeBase = stream.timeBase;
        this.reader = new PacketReader(demuxer, stream);
        return streamInfo(stream, codec);
      } catch (err) {
        await demuxer.close();
        throw err;
      }
    });
  }

  async *packets(): AsyncIterable<SourcePacket> {
    const reader = this.reader;
    if (!reader) throw new Error('packets() before open()');
    while (!this.guard.closed) {
      const packet = await this.guard.run(() => reader.next()).catch(endIfClosed);
      if (!packet) return;
      yield toSourcePacket(packet, this.timeBase);
    }
  }

  close(): Promise<void> {
    return this.guard.close(() => this.reader?.interrupt(), async () => {
      await this.reader?.close();
      this.reader = null;
    });
  }
}
