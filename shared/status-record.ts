/**
 * The status record capture keeps per monitor stream (main, and sub when the
 * monitor has one) in Redis (with a TTL) and edges
 * turn into status replies. Both sides read this one definition.
 */
export interface StatusRecord {
  monitor_id: number;
  monitor_name: string;
  /** The camera side: connecting, connected, failed, stopped. */
  state: 'connecting' | 'connected' | 'failed' | 'stopped';
  /** The Redis side: whether what the camera sends reaches Redis (see Publisher). */
  publishing: 'ok' | 'backlog' | 'redis_full' | 'redis_error' | 'fenced';
  /** Packets and kbit/s that Redis accepted over the last interval: what viewers can get. */
  fps: number;
  kbps: number;
  last_packet_time: number | null;
  capture_node: string;
  generation: number;
  /** The picture of the current (or last) connection; 0 before the first. */
  width: number;
  height: number;
  packets: number;
  startup_time: number;
  /** When this record was written, and how often capture writes it: an older record is stale. */
  updated: number;
  interval_ms: number;
}
