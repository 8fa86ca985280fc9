/**
 * The real `zmcast` command (bin/zmcast.js) as a child process, started as
 * an operator starts it. The parent's ZMCAST_* settings are dropped, so each
 * process is configured by the test alone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const BIN = join(import.meta.dirname, '..', '..', 'bin', 'zmcast.js');

export interface ZmcastProcess {
  child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  stderr(): string;
  /** The JSON log lines on stderr so far. */
  logs(): Record<string, unknown>[];
  /** Sends `signal` (SIGKILL by default) and resolves with the exit code. */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export function spawnZmcast(args: string[], env: NodeJS.ProcessEnv): ZmcastProcess {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ZMCAST_')));
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.resume();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    stderr: () => stderr,
    logs: () => stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>),
    kill: (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
