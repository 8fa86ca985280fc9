/**
 * An RTSP camera, passed through: packets are demuxed and never decoded. The
 * URL may carry credentials; FFmpeg's messages do not repeat them.
 */
import '../../../shared/polyfills.js';
import { Demuxer, type IRational } from 'node-av';
import type { RtspTransport, SourceInfo, SourcePacket, VideoSource } from '../source.js';
import { SourceGuard, endIfClosed } from './guard.js';
import { PacketReader } from './packet-reader.js';
import { passthroughStream, streamInfo, toSourcePacket } from './stream-info.js';

export class RtspSource implements VideoSource {
  private readonly guard = new SourceGuard();
  private reader: PacketReader | null = null;
  private timeBase: IRational = { num: 1, den: 90_000 };

  constructor(
    private readonly url: string,
    private readonly timeoutMs: number,
    private readonly o: { transport?: RtspTransport; options?: Record<string, string> } = {},
  ) {}

  open(): Promise<SourceInfo> {
    return this.guard.run(async () => {
      // TCP by default: it survives NAT and lossy links where UDP drops
      // reference frames. A camera's own options (ZoneMinder's `Options`)
      // come on top and its `Method` wins, as in zm_ffmpeg_camera.cpp.
      // `timeout` bounds every socket wait: without it a camera that stops
      // sending blocks the read forever.
      const options: Record<string, string> = { timeout: String(this.timeoutMs * 1000), ...this.o.options };
      options.rtsp_transport = this.o.transport ?? this.o.options?.rtsp_transport ?? 'tcp';
      const demuxer = await Demuxer.open(this.url, { options });
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
