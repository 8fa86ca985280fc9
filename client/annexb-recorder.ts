/**
 * Records one monitor's packets as an Annex-B elementary stream (H.264/H.265)
 * that decodes from its first byte and across reconnects: the parameter sets
 * go before the first keyframe after each `codec` message, nothing is written
 * before a keyframe when a decoder would have to start afresh (new generation
 * or epoch), and no packet is written twice when a reconnect replays the GOP
 * that was already written.
 */
import type { Packet } from '../shared/packet.js';
import type { CodecReply } from '../shared/protocol.js';

interface Written {
  epoch: string | undefined;
  generation: number;
  sequence: number;
}

export class AnnexBRecorder {
  private extradata = Buffer.alloc(0);
  private extradataDue = false;
  private keyframeDue = true;
  private config: { generation: number; epoch: string | undefined } | null = null;
  private last: Written | null = null;

  /** `out` null: only decides what would be written (the counts stay true). */
  constructor(private readonly out: { write(chunk: Buffer): unknown } | null) {}

  codec(c: CodecReply): void {
    const config = { generation: c.generation, epoch: c.epoch || undefined }; // no epoch from an edge before them
    this.extradata = Buffer.from(c.extradata, 'base64');
    this.extradataDue = true;
    // Same generation and epoch (a reconnect): the decoder state carries on; otherwise it starts again.
    if (this.config?.generation !== config.generation || this.config.epoch !== config.epoch) this.keyframeDue = true;
    this.config = config;
  }

  /** Writes the packet unless it cannot be decoded here or is already written; true when written. */
  packet(p: Packet): boolean {
    const epoch = this.config?.epoch;
    const last = this.last;
    if (last && last.epoch === epoch && last.generation === p.generation && p.sequence <= last.sequence) return false;
    if (this.keyframeDue && !p.keyframe) return false;
    this.keyframeDue = false;
    if (p.keyframe && this.extradataDue) {
      if (this.extradata.length > 0) this.out?.write(this.extradata);
      this.extradataDue = false;
    }
    this.out?.write(p.data);
    this.last = { epoch, generation: p.generation, sequence: p.sequence };
    return true;
  }
}
