/**
 * The systems under test, each started as its own process on the server core: bare Aedes, Mosquitto, the hub.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BENCH_DIR, SERVER_CORE, spawnNodeTs, spawnPinned, stopChild, waitForLine, sleep } from './proc.ts';

export const MOSQUITTO = '/usr/sbin/mosquitto';

export interface Server {
  name: string;
  proc: ChildProcess;
  mqttPort: number;
  httpPort?: number;
  dataDir?: string;
  stop(): Promise<void>;
}

const tmpDirs: string[] = [];
let cleanupHooked = false;

/** A temporary directory, removed when the scenario process exits, however it exits (bar SIGKILL). */
export function tmpDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `kf-bench-${prefix}-`));
  tmpDirs.push(dir);
  if (!cleanupHooked) {
    cleanupHooked = true;
    process.on('exit', () => {
      for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
    });
  }
  return dir;
}

export function hasMosquitto(): boolean {
  return fs.existsSync(MOSQUITTO);
}

/** `ackBatch`: hold acks and release them in batches like the hub's writer ([size, ms]); see aedes-bare.ts. */
export async function startAedesBare(ackBatch?: [number, number]): Promise<Server & { count(): Promise<number> }> {
  const proc = spawnNodeTs(path.join(BENCH_DIR, 'servers/aedes-bare.ts'), [], {
    core: SERVER_CORE,
    ipc: true,
    ...(ackBatch ? { env: { BENCH_ACK_BATCH: ackBatch.join(',') } } : {}),
  });
  const port = await waitForLine(proc, (_l, j) => (j as { msg?: string; mqttPort?: number })?.msg === 'ready' ? (j as { mqttPort: number }).mqttPort : undefined, 20000, 'aedes');
  return {
    name: 'aedes',
    proc,
    mqttPort: port,
    stop: () => stopChild(proc),
    count: () =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('aedes: no count reply')), 5000);
        const on = (m: { type: string; n: number }) => {
          if (m.type !== 'count') return;
          clearTimeout(t);
          proc.off('message', on);
          resolve(m.n);
        };
        proc.on('message', on);
        proc.send({ type: 'count' });
      }),
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitPort(port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`port ${port} not listening within ${ms} ms`);
}

/**
 * Mosquitto 2.0 as packaged by Debian, in memory, anonymous, on 127.0.0.1. In-flight and queue limits are lifted
 * so that it never drops a QoS 1 message to the counting subscriber (its defaults would, under a flood).
 */
export async function startMosquitto(): Promise<Server> {
  const dir = tmpDir('mosquitto');
  const port = await freePort();
  const conf = path.join(dir, 'mosquitto.conf');
  fs.writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'max_inflight_messages 0',
      'max_queued_messages 0',
      'max_connections -1',
      'log_dest none',
      '',
    ].join('\n'),
  );
  const proc = spawnPinned(MOSQUITTO, ['-c', conf], { core: SERVER_CORE, stderr: 'pipe' });
  await waitPort(port, 10000);
  return {
    name: 'mosquitto',
    proc,
    mqttPort: port,
    dataDir: dir,
    stop: async () => {
      await stopChild(proc);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
