/** Options shared by every scenario, from the command line. */
export interface BenchOptions {
  /** Measured seconds per load point. */
  seconds: number;
  /** Seconds of publishing before each window opens, so JIT warm-up and start-up GCs fall outside it (`--warmup`). */
  warmup: number;
  size: number;
  fps: number;
  gop: number;
  /** Viewer counts for one monitor. */
  viewers: number[];
  /** Fan-out's many-monitor point, monitors × viewers each (`--grid 20x50`, the default); null for none (`--grid none`). */
  grid: { monitors: number; viewersPerMonitor: number } | null;
  /** Viewer counts at which the baselines run beside zmcast. */
  baselineViewers: number[];
  /** Systems to measure: zmcast plus the baselines. */
  systems: ('zmcast' | 'sockwrite' | 'ref' | 'naive' | 'socketio' | 'floor' | 'nchan')[];
  /** Fan-out: times each load point runs, the systems interleaved (`--repeat`, default 1). */
  repeat: number;
  /** Connections for the idle scenario. */
  idleConnections: number;
  /**
   * Edge processes per fan-out point, one run per count (`--edges 1,2`): each its own
   * process and port on the same Redis, viewers round-robin over them. Default [1].
   */
  edges: number[];
  /** The soak (run only when named: `npm run bench -- soak`). */
  soak: SoakOptions;
  /** Profile the edge during each zmcast window. */
  profile: boolean;
  resultsDir: string;
  log: (line: string) => void;
}

export interface SoakOptions {
  minutes: number;
  /** Viewers connected at any time: half steady for the whole run, half churning. */
  viewers: number;
  /** Churning viewers that join, and as many that leave, each second. */
  churnPerSecond: number;
  monitors: number;
}
