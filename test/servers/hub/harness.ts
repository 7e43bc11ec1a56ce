/**
 * Starts the loopback Hub (server.ts) for a test and hands back what a test needs: the endpoint to
 * give HfHub, the pinned sha, fault injection, statistics, and stop().
 */
import type { Faults, HubServerOptions, HubStats } from './server.js';
import { HubServer, readTree } from './server.js';

export type { FaultRule, Faults, HubStats, RequestKind } from './server.js';

export interface HubServerHandle {
  /** Base URL to use as HF_ENDPOINT, e.g. `http://127.0.0.1:41234`. */
  endpoint: string;
  /** Base URL of the CDN the resolve endpoint redirects to (another port: another origin). */
  cdn: string;
  /** The commit `main` pointed at when the server started. */
  sha: string;
  /** The secret signature in CDN URLs (to check it never leaks into messages). */
  signature: string;
  /** Replaces the fault configuration (counters of `first` rules restart). */
  setFaults(f: Faults): void;
  /**
   * Commits a new file set (repo path → bytes, or a directory to read) and moves `main` to it;
   * earlier commits stay readable by sha. Returns the new sha.
   */
  setFiles(files: Map<string, Buffer> | string): Promise<string>;
  stats(): HubStats;
  resetStats(): void;
  stop(): Promise<void>;
}

export async function startHubServer(opts: HubServerOptions): Promise<HubServerHandle> {
  const server = new HubServer(opts);
  const sha = server.commit(await readTree(opts.root));
  const { endpoint, cdn } = await server.listen();
  return {
    endpoint,
    cdn,
    sha,
    signature: server.signature,
    setFaults: (f) => {
      server.setFaults(f);
    },
    setFiles: async (files) =>
      server.commit(typeof files === 'string' ? await readTree(files) : files),
    stats: () => server.stats(),
    resetStats: () => {
      server.resetStats();
    },
    stop: () => server.close(),
  };
}
