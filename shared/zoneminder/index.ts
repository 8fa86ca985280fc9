/**
 * ZoneMinder's own things, as zmcast reads them: zm.conf, its database
 * (Monitors, Servers, Users, permissions, Config), its tokens and auth hashes,
 * and its permission rules. Capture (which monitors to run) and the edge's
 * zoneminder auth mode both use this folder; neither writes to ZoneMinder.
 */
export { ZmDatabase, type ZmMonitorRow } from './database.js';
export { DEFAULT_ZM_CONF, readZmConf, zmDbSettings, zmServerIdentity, zmVariables, type ZmDbSettings } from './conf.js';
export { toCaptureSpec, type ZmCaptureSpec } from './monitors.js';
