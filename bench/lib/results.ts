/** Where results go: one JSON file per scenario under bench/results/, with the machine and the command that made it. */
import { mkdirSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { describeMachine, type MachineInfo } from './proc.js';

export const RESULTS_DIR = fileURLToPath(new URL('../../../bench/results/', import.meta.url));

export interface ResultFile<T> {
  scenario: string;
  command: string;
  startedAt: string;
  durationSeconds: number;
  commit: string;
  machine: MachineInfo;
  options: Record<string, unknown>;
  results: T;
}

export function commit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'services', 'shared', 'bench'], { encoding: 'utf8' }).trim();
    return dirty ? `${sha}+dirty` : sha;
  } catch {
    return 'unknown';
  }
}

export function writeResult<T>(dir: string, scenario: string, command: string, startedAt: Date, options: Record<string, unknown>, results: T): string {
  mkdirSync(dir, { recursive: true });
  const file: ResultFile<T> = {
    scenario,
    command,
    startedAt: startedAt.toISOString(),
    durationSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    commit: commit(),
    machine: describeMachine(),
    options,
    results,
  };
  const path = join(dir, `${scenario}.json`);
  writeFileSync(path, JSON.stringify(file, null, 2) + '\n');
  return path;
}

export function readResult<T>(dir: string, scenario: string): ResultFile<T> | null {
  const path = join(dir, `${scenario}.json`);
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as ResultFile<T>) : null;
}
