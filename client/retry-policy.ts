/**
 * When a lost or refused connection is worth another attempt
 * (docs/protocol.md, "Reconnecting"); shared by every zmcast client.
 */
import { CloseCode } from '../shared/protocol.js';

/** Close codes after which another attempt can succeed; any other code is final. */
export const RETRY_CLOSE: ReadonlySet<number> = new Set<number>([
  CloseCode.GoingAway,
  1006, // connection lost (no close frame; never sent by an edge)
  CloseCode.InternalError,
  CloseCode.ServiceRestart, // the edge drains: another one serves at once
  CloseCode.TryAgainLater,
  CloseCode.SlowConsumer, // a new connection restarts at the latest keyframe
  CloseCode.RateLimited, // with the longer delay
]);

/** Upgrade statuses worth retrying: a connection cap, overload, a restarting edge or proxy. */
export const retryStatus = (status: number): boolean => status === 408 || status === 429 || status >= 500;
