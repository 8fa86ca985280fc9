/** What /proc says about a process and the machine, for processes the bench does not run itself. */
import { readFileSync, readdirSync } from 'node:fs';
import { cpus, totalmem, freemem, platform, release } from 'node:os';
import { execFileSync } from 'node:child_process';

const TICKS = 100; // USER_HZ on Linux

/** utime + stime of a process, in seconds. */
export function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return NaN;
  }
}

/** Resident memory of a process in bytes (VmRSS in /proc/<pid>/status), NaN when gone. */
export function procRssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Open file descriptors of a process (entries of /proc/<pid>/fd), NaN when gone. */
export function procOpenFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/** Busy and total jiffies of the whole machine, to tell a saturated run from a clean one. */
export function machineCpu(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = v[3] + (v[4] ?? 0);
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: NaN, total: NaN };
  }
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memory: string;
  memoryBytes: number;
  node: string;
  os: string;
  openFiles: string;
  redis: string;
  /** nginx and the nchan package, for the nchan baseline. */
  nchan: string;
}

export function describeMachine(): MachineInfo {
  const sh = (cmd: string) => {
    try {
      return execFileSync('/bin/sh', ['-c', cmd], { encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  };
  return {
    cpus: Number(sh('nproc')) || cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memory: sh('free -h | sed -n 2p'),
    memoryBytes: totalmem(),
    node: process.version,
    os: `${platform()} ${release()}`,
    openFiles: `${sh('ulimit -n')} soft / ${sh('ulimit -Hn')} hard`,
    redis: sh('redis-server --version'),
    nchan: sh("/usr/sbin/nginx -v 2>&1 && dpkg-query -W -f 'libnginx-mod-nchan ${Version}' libnginx-mod-nchan"),
  };
}

export const freeMemory = freemem;
