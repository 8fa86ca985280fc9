/**
 * Every Prometheus metric zmcast exports is declared here, so dashboards and
 * the test that checks them have one list to read. Services in one process
 * (the demo) share one registry.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
// The event-loop lag sampler wakes the loop every eventLoopMonitoringPrecision ms; 50 rather than prom-client's 10
// for fewer wake-ups of an idle edge (measured 2026-11-30: in the steady state either costs under 0.1 ms of CPU a second).
collectDefaultMetrics({ register: registry, prefix: 'zmcast_process_', eventLoopMonitoringPrecision: 50 });

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.1, 0.25, 0.5, 1, 2.5, 5];

function once<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

export const captureMetrics = once(() => ({
  packets: new Counter({ name: 'zmcast_capture_packets_total', help: 'Video packets read from cameras', labelNames: ['monitor'], registers: [registry] }),
  bytes: new Counter({ name: 'zmcast_capture_bytes_total', help: 'Video bytes read from cameras', labelNames: ['monitor'], registers: [registry] }),
  reconnects: new Counter({ name: 'zmcast_capture_reconnects_total', help: 'Camera reconnect attempts', labelNames: ['monitor'], registers: [registry] }),
  dropped: new Counter({
    name: 'zmcast_capture_dropped_packets_total',
    help: 'Packets not published: backlog (Redis slow or away), redis_full, redis_error, or no_keyframe (history lost, waiting for a keyframe)',
    labelNames: ['monitor', 'reason'],
    registers: [registry],
  }),
  publishErrors: new Counter({ name: 'zmcast_capture_publish_errors_total', help: 'Failed Redis writes, by reply code (OOM, FENCED, NOKEYFRAME, ERR, …)', labelNames: ['monitor', 'code'], registers: [registry] }),
  leasesOwned: new Gauge({ name: 'zmcast_capture_leases_owned', help: 'Monitors this capture process holds the lease of (captures)', registers: [registry] }),
  leaseLosses: new Counter({ name: 'zmcast_capture_lease_losses_total', help: 'Leases lost to another capture process (expired while paused, or taken)', labelNames: ['monitor'], registers: [registry] }),
  fencedWrites: new Counter({ name: 'zmcast_capture_fenced_writes_total', help: 'Writes Redis refused because another process holds the lease', labelNames: ['monitor'], registers: [registry] }),
  failovers: new Counter({ name: 'zmcast_capture_failovers_total', help: 'Monitors this process took over from another capture process', labelNames: ['monitor'], registers: [registry] }),
  redisFull: new Gauge({ name: 'zmcast_capture_redis_full', help: '1 while capture keeps one GOP per monitor because Redis refused writes for lack of memory (retention.fullHoldSeconds)', registers: [registry] }),
  publishLatency: new Histogram({ name: 'zmcast_capture_publish_seconds', help: 'Packet read to Redis acknowledgement', labelNames: ['monitor'], buckets: LATENCY_BUCKETS, registers: [registry] }),
  inFlight: new Gauge({ name: 'zmcast_capture_publish_in_flight', help: 'Packets sent to Redis and not yet acknowledged', labelNames: ['monitor'], registers: [registry] }),
  connected: new Gauge({ name: 'zmcast_capture_connected', help: '1 while the camera is delivering packets', labelNames: ['monitor'], registers: [registry] }),
  generation: new Gauge({ name: 'zmcast_capture_generation', help: 'Current generation per monitor', labelNames: ['monitor'], registers: [registry] }),
  events: new Counter({ name: 'zmcast_capture_events_total', help: 'Monitor events emitted', labelNames: ['monitor', 'event'], registers: [registry] }),
}));

export const edgeMetrics = once(() => ({
  clients: new Gauge({ name: 'zmcast_edge_clients', help: 'Connected WebSocket clients', registers: [registry] }),
  connections: new Counter({ name: 'zmcast_edge_connections_total', help: 'Accepted WebSocket connections', labelNames: ['endpoint'], registers: [registry] }),
  subscribers: new Gauge({ name: 'zmcast_edge_stream_subscribers', help: 'Local video subscribers per monitor and quality (main, sub)', labelNames: ['monitor', 'quality'], registers: [registry] }),
  droppedClients: new Counter({ name: 'zmcast_edge_dropped_clients_total', help: 'Clients closed by the edge', labelNames: ['reason'], registers: [registry] }),
  droppedFrames: new Counter({ name: 'zmcast_edge_dropped_frames_total', help: 'Video packets skipped for slow clients', labelNames: ['monitor'], registers: [registry] }),
  refused: new Counter({ name: 'zmcast_edge_refused_total', help: 'Requests or commands refused', labelNames: ['reason'], registers: [registry] }),
  commands: new Counter({ name: 'zmcast_edge_commands_total', help: 'Commands received', labelNames: ['command'], registers: [registry] }),
  errors: new Counter({ name: 'zmcast_edge_errors_total', help: 'Error replies sent', labelNames: ['code'], registers: [registry] }),
  packets: new Counter({ name: 'zmcast_edge_packets_total', help: 'Video packets read from Redis', labelNames: ['monitor'], registers: [registry] }),
  sentFrames: new Counter({ name: 'zmcast_edge_sent_frames_total', help: 'Video frames written to clients', registers: [registry] }),
  sentBytes: new Counter({ name: 'zmcast_edge_sent_bytes_total', help: 'Video bytes written to clients', registers: [registry] }),
  coalescedWrites: new Counter({ name: 'zmcast_edge_coalesced_writes_total', help: 'Socket writes that carried a montage socket\'s held frames (edge.coalesceMs)', registers: [registry] }),
  coalescedFrames: new Counter({ name: 'zmcast_edge_coalesced_frames_total', help: 'Frames written by those writes: frames ÷ writes is how many shared a write', registers: [registry] }),
  nativeWrites: new Counter({ name: 'zmcast_edge_native_writes_total', help: 'Frames given to the native fan-out writer (edge.nativeWrites)', registers: [registry] }),
  nativeLeftovers: new Counter({ name: 'zmcast_edge_native_write_leftovers_total', help: 'Of those, frames a socket did not take whole: the rest went through socket.write and its queue', registers: [registry] }),
  packetMemory: new Counter({
    name: 'zmcast_edge_packet_memory_total',
    help: 'Memory taken for packets read: reused (given back by a GOP) or new (allocated; V8 counts it towards its next full GC)',
    labelNames: ['source'],
    registers: [registry],
  }),
  packetMemoryIdle: new Gauge({ name: 'zmcast_edge_packet_memory_idle_bytes', help: 'Packet memory given back and kept for reuse', registers: [registry] }),
  streamLength: new Gauge({ name: 'zmcast_edge_stream_length', help: 'Entries in the monitor stream (queue depth)', labelNames: ['monitor'], registers: [registry] }),
  readerLag: new Gauge({ name: 'zmcast_edge_reader_lag_seconds', help: 'Age of the newest packet when the edge read it', labelNames: ['monitor'], registers: [registry] }),
  readerReconnects: new Counter({ name: 'zmcast_edge_reader_reconnects_total', help: 'Redis reader errors followed by a retry', registers: [registry] }),
  unpushedEntries: new Counter({
    name: 'zmcast_edge_unpushed_entries_total',
    help: 'Stream entries the push reader found in Redis that were never pushed to it (a capture older than the edge?), read instead',
    registers: [registry],
  }),
  upstreamDrops: new Counter({
    name: 'zmcast_edge_upstream_drops_total',
    help: 'Video viewers were told they missed, by reason: upstream (never reached Redis), stale (backlog skipped), history_lost',
    labelNames: ['monitor', 'reason'],
    registers: [registry],
  }),
  readerHealthy: new Gauge({ name: 'zmcast_edge_reader_healthy', help: '1 while every stream reader of this edge gets answers from Redis in time', registers: [registry] }),
  sendQueueBytes: new Histogram({
    name: 'zmcast_edge_client_send_queue_bytes',
    help: 'Bytes queued for a client when a packet is written to it',
    buckets: [0, 16e3, 64e3, 256e3, 1e6, 2e6, 4e6, 8e6, 16e6],
    registers: [registry],
  }),
  latency: new Histogram({ name: 'zmcast_edge_capture_to_send_seconds', help: 'Capture wall-clock to the write to clients', labelNames: ['monitor'], buckets: LATENCY_BUCKETS, registers: [registry] }),
  firstFrame: new Histogram({ name: 'zmcast_edge_first_frame_seconds', help: 'Subscribe to the first keyframe written', buckets: LATENCY_BUCKETS, registers: [registry] }),
}));

/** Redis connections, by role (main commands, blocking readers). */
export const redisMetrics = once(() => ({
  connected: new Gauge({ name: 'zmcast_redis_connected', help: '1 while the Redis connection can take commands', labelNames: ['role'], registers: [registry] }),
  reconnects: new Counter({ name: 'zmcast_redis_reconnects_total', help: 'Redis connections restored after a loss', labelNames: ['role'], registers: [registry] }),
}));

/** Authentication: labels are modes, methods and error codes, never user names. */
export const authMetrics = once(() => ({
  mode: new Gauge({ name: 'zmcast_auth_mode', help: '1 for the configured auth mode', labelNames: ['mode'], registers: [registry] }),
  attempts: new Counter({ name: 'zmcast_auth_attempts_total', help: 'Authentication attempts by method and result (ok or error code)', labelNames: ['method', 'result'], registers: [registry] }),
  duration: new Histogram({ name: 'zmcast_auth_seconds', help: 'Time to authenticate', labelNames: ['method'], buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] }),
  revalidations: new Counter({ name: 'zmcast_auth_revalidations_total', help: 'Principal revalidations by result (ok or error code)', labelNames: ['result'], registers: [registry] }),
  sourceErrors: new Counter({ name: 'zmcast_auth_source_errors_total', help: 'Failed reads of the identity source (ZoneMinder DB, JWKS)', labelNames: ['source'], registers: [registry] }),
  optionReloads: new Counter({ name: 'zmcast_auth_zm_option_reloads_total', help: 'Re-reads of the ZoneMinder Config table', labelNames: ['result'], registers: [registry] }),
  passwordChecks: new Gauge({ name: 'zmcast_auth_password_checks_pending', help: 'bcrypt checks running or queued', registers: [registry] }),
}));

const PICTURE_BUCKETS = [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.125, 0.25, 0.5, 1];

/** Picture workers: queues, decoders, encoders, derived streams. */
export const workerMetrics = once(() => ({
  queueJobs: new Gauge({ name: 'zmcast_worker_queue_jobs', help: 'Jobs per picture queue and state (waiting, active, failed, delayed)', labelNames: ['queue', 'state'], registers: [registry] }),
  decodeSeconds: new Histogram({ name: 'zmcast_worker_decode_seconds', help: 'Time to decode one video packet, by codec, mode and stream (main or sub)', labelNames: ['codec', 'mode', 'quality'], buckets: PICTURE_BUCKETS, registers: [registry] }),
  decodedFrames: new Counter({ name: 'zmcast_worker_decoded_frames_total', help: 'Video packets decoded, by mode: keyframe (keyframes only) or full (every packet, warm decoder), and stream (main or sub)', labelNames: ['mode', 'quality'], registers: [registry] }),
  encodeSeconds: new Histogram({ name: 'zmcast_worker_encode_seconds', help: 'Time to scale and encode one picture', labelNames: ['format'], buckets: PICTURE_BUCKETS, registers: [registry] }),
  pictures: new Counter({ name: 'zmcast_worker_pictures_total', help: 'Pictures made, for snapshots (one per coalesced request group) or derived streams, by the stream decoded (main or sub)', labelNames: ['source', 'quality'], registers: [registry] }),
  snapshotErrors: new Counter({ name: 'zmcast_worker_snapshot_errors_total', help: 'Snapshot jobs failed, by error code', labelNames: ['code'], registers: [registry] }),
  warmDecoders: new Gauge({ name: 'zmcast_worker_warm_decoders', help: 'Streams (main or sub) this worker keeps a decoder running for, by mode', labelNames: ['mode', 'quality'], registers: [registry] }),
  derivedStreams: new Gauge({ name: 'zmcast_worker_derived_streams', help: 'Derived picture streams this worker produces', registers: [registry] }),
}));

/** The picture client (in edges): requests and how many were served by another request's work. */
export const pictureClientMetrics = once(() => ({
  requests: new Counter({ name: 'zmcast_pictures_requests_total', help: 'Snapshot requests, by result (ok or error code)', labelNames: ['result'], registers: [registry] }),
  coalesced: new Counter({ name: 'zmcast_pictures_coalesced_total', help: 'Snapshot requests served without a job of their own: from the cache, or by joining a job in flight', labelNames: ['how'], registers: [registry] }),
  latency: new Histogram({ name: 'zmcast_pictures_snapshot_seconds', help: 'Snapshot request to picture', buckets: LATENCY_BUCKETS, registers: [registry] }),
}));
