/**
 * The two BullMQ queues between picture clients (edges) and workers, and
 * what their jobs carry. Both use the hash-tagged prefix, so every queue key
 * shares one Redis Cluster slot.
 */
import type { PictureSpec } from './picture-spec.js';
import type { PictureSource } from './picture-source.js';

/** One-shot pictures: short jobs, any worker. */
export const SNAPSHOT_QUEUE = 'pictures';
/** Derived streams: one long-running job per stream, held by one worker; a dead worker's job stalls and moves on. */
export const DERIVED_QUEUE = 'derived-pictures';

export interface SnapshotJob {
  monitorId: number;
  /** As requested: names the variant's keys. */
  spec: PictureSpec;
  /** The stream to decode and the spec to encode, as pictureSource chose them; absent from jobs of older edges: main and `spec`. */
  source?: PictureSource;
  /** Stream id of the newest packet of that stream when the request came: the picture shows it or a newer frame. */
  frameId: string;
  /** When the first requester gave up (ms since epoch): a job still waiting then is dropped. */
  deadline: number;
}

/** What a finished snapshot job returns; the picture itself is in the variant's `latest` key. */
export interface SnapshotResult {
  generation: number;
  sequence: number;
}

export interface DerivedJob {
  monitorId: number;
  spec: PictureSpec;
  fps: number;
}

/** Highest rate of a derived stream: above it, viewers want video. */
export const MAX_DERIVED_FPS = 30;

/** The variant name of a derived stream (its keys and job id). */
export function derivedVariant(specVariant: string, fps: number): string {
  return `${specVariant}-${fps}fps`;
}
