/** Builds an in-process Agent with test-friendly timings. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Agent, type AgentOptions } from '../agent.ts';
import { MemoryConfigStore } from '../config-reconciler.ts';
import { MemoryExitRecorder } from '../exit-record.ts';
import { SimulatedHostProbe } from '../host/simulated.ts';
import { createLogger, LogRing } from '../log.ts';
import { MemoryOutbox } from '../outbox/memory.ts';

export const quiet = new Writable({ write: (_c, _e, cb) => cb() });

export function testAgent(over: Partial<AgentOptions> & { hubUrl: string; terminalId?: string }): Agent {
  const ring = new LogRing();
  return new Agent({
    terminalId: 'GZ-YX-001-01',
    keepalive: 10,
    reconnectMinMs: 50,
    reconnectMaxMs: 400,
    authRetryMs: 2000,
    defaults: { telemetryInterval: 0.2, logLevel: 'info', peripherals: {} },
    appHeartbeatTimeout: 30,
    monitorApp: false,
    outbox: new MemoryOutbox({ maxBytes: 10 * 1024 * 1024, maxAgeMs: 86400_000 }),
    host: new SimulatedHostProbe(),
    exitRecorder: new MemoryExitRecorder(),
    configStore: new MemoryConfigStore(),
    logger: createLogger({ level: 'info', ring, destination: quiet }),
    logRing: ring,
    ...over,
  });
}

export function tempDir(prefix = 'kf-agent-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
