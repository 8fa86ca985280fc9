import '../../shared/polyfills.js';
import { setLogLevel } from '../../shared/log.js';

// Tests are about behaviour, not log lines: show warnings and errors only (ZMCAST_LOG_LEVEL overrides).
setLogLevel((process.env.ZMCAST_LOG_LEVEL as 'debug' | 'info' | 'warn' | 'error' | undefined) ?? 'warn');
