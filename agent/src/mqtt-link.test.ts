import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { Aedes } from 'aedes';
import { afterEach, describe, expect, it } from 'vitest';
import { Backoff, HANDSHAKE_TIMEOUT_MS } from './backoff.ts';
import { createLogger, LogRing } from './log.ts';
import { quiet, testAgent, tempDir } from './test-support/agent.ts';
import { MqttLink, splitHubUrls } from './mqtt-link.ts';
import { startBroker, waitFor } from './test-support/broker.ts';

const teardown: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const t of teardown.splice(0).reverse()) await t();
});

describe('backoff', () => {
  it('doubles from min to a cap, jittered within the upper half of each step, and resets', () => {
    const lows = new Backoff({ minMs: 100, maxMs: 1000, random: () => 0 });
    expect([1, 2, 3, 4, 5, 6].map(() => lows.next())).toEqual([50, 100, 200, 400, 500, 500]);
    const highs = new Backoff({ minMs: 100, maxMs: 1000, random: () => 0.999999 });
    expect([1, 2, 3, 4, 5].map(() => highs.next())).toEqual([100, 200, 400, 800, 1000]);
    highs.reset();
    expect(highs.next()).toBe(100);
  });

  it('a stable connection lost starts a new outage: from the first step, capped for the outage window, then doubling again', () => {
    let now = 0;
    const b = new Backoff({ minMs: 1000, maxMs: 60_000, random: () => 0.999999, now: () => now });
    // start-up with the hub unreachable: plain doubling to the cap
    expect([1, 2, 3, 4, 5, 6, 7].map(() => b.next())).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000]);
    b.connected();
    now += 3_600_000;
    b.lost();
    // the hub restarts: 0.5-1 s, then doubling only up to 8 s (4-8 s waits) ...
    const steps = [1, 2, 3, 4, 5, 6, 7].map(() => b.next());
    expect(steps).toEqual([1000, 2000, 4000, 8000, 8000, 8000, 8000]);
    // ... jittered within the upper half of each step, as always
    const lows = new Backoff({ minMs: 1000, maxMs: 60_000, random: () => 0, now: () => now });
    lows.connected();
    now += 10_000;
    lows.lost();
    expect([1, 2, 3, 4, 5].map(() => lows.next())).toEqual([500, 1000, 2000, 4000, 4000]);
    // after two minutes of the outage it is a long one: the doubling resumes up to maxMs
    now += 120_000;
    expect([1, 2].map(() => b.next())).toEqual([60_000, 60_000]);
    expect(lows.next()).toBe(16_000);
  });

  it('a connection lost within stableMs does not reset the step (no tight loop for a flapping connection)', () => {
    let now = 0;
    const b = new Backoff({ minMs: 1000, maxMs: 60_000, random: () => 0.999999, now: () => now });
    expect([1, 2, 3].map(() => b.next())).toEqual([1000, 2000, 4000]);
    // connected, then kicked after 1 s, again and again: the step keeps doubling
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      b.connected();
      now += 1000;
      b.lost();
      waits.push(b.next());
    }
    expect(waits).toEqual([8000, 16_000, 32_000, 60_000]);
    // lost() without a connection (a failed attempt) changes nothing
    b.lost();
    expect(b.next()).toBe(60_000);
    // stableMs and the cap are options
    const c = new Backoff({ minMs: 100, maxMs: 10_000, random: () => 0.999999, now: () => now, stableMs: 50, outageCapMs: 300 });
    c.connected();
    now += 60;
    c.lost();
    expect([1, 2, 3].map(() => c.next())).toEqual([100, 200, 300]);
  });

  it('the cap never exceeds maxMs', () => {
    let now = 0;
    const b = new Backoff({ minMs: 1000, maxMs: 3000, random: () => 0.999999, now: () => now });
    b.connected();
    now += 60_000;
    b.lost();
    expect([1, 2, 3].map(() => b.next())).toEqual([1000, 2000, 3000]);
  });
});

describe('mqtts://', () => {
  it('connects over TLS to a broker whose certificate the configured CA signed, and not without it', async () => {
    // a real self-signed certificate for 127.0.0.1, made with openssl
    const d = tempDir('kf-tls-');
    teardown.push(d.cleanup);
    const key = path.join(d.dir, 'key.pem');
    const cert = path.join(d.dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const broker = await Aedes.createBroker();
    const server = tls.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, broker.handle);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    teardown.push(() => new Promise<void>((r) => broker.close(() => server.close(() => r()))));
    const port = (server.address() as { port: number }).port;

    const trusted = testAgent({ hubUrl: `mqtts://127.0.0.1:${port}`, ca: readFileSync(cert) });
    teardown.push(() => trusted.stop());
    await trusted.start();
    await waitFor(() => trusted.link.connected, 10_000, 'TLS connect');

    const ring = new LogRing();
    const untrusted = testAgent({
      hubUrl: `mqtts://127.0.0.1:${port}`,
      terminalId: 'GZ-YX-001-02',
      reconnectMinMs: 100,
      reconnectMaxMs: 200,
      logger: createLogger({ level: 'info', ring, destination: quiet }),
    });
    teardown.push(() => untrusted.stop());
    await untrusted.start();
    await new Promise((r) => setTimeout(r, 800));
    expect(untrusted.link.connected).toBe(false);
    expect(untrusted.link.stats.attempts).toBeGreaterThanOrEqual(2);
    // said plainly at error level, once, not once per retry
    const said = ring.tail(500).map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.msg.includes('certificate is not trusted'));
    expect(said).toHaveLength(1);
    expect(said[0]!.level).toBe(50);
  });
});

describe('an unanswered TCP handshake', () => {
  it('is given up after HANDSHAKE_TIMEOUT_MS and retried on the backoff schedule, then connects once the hub answers', async () => {
    // A real broker in its own process with an accept queue of two, stopped (SIGSTOP): its kernel completes two
    // handshakes into the queue and drops every later SYN, as a hub's does when a reconnect storm fills its queue.
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const { Aedes } = await import('aedes'); const net = await import('node:net'); const b = await Aedes.createBroker(); const s = net.createServer(b.handle); s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => console.log(s.address().port));",
      ],
      { cwd: path.join(import.meta.dirname, '..'), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    teardown.push(() => {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    });
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      child.once('exit', (code) => reject(new Error(`broker process exited (${code})`)));
    });
    child.kill('SIGSTOP');
    const fillers: net.Socket[] = [];
    teardown.push(() => fillers.forEach((f) => f.destroy()));
    for (let i = 0; i < 2; i++) {
      const f = net.connect({ port, host: '127.0.0.1' });
      f.on('error', () => undefined);
      fillers.push(f);
      await new Promise((r) => f.once('connect', r));
    }

    const ring = new LogRing();
    const agent = testAgent({ hubUrl: `mqtt://127.0.0.1:${port}`, reconnectMinMs: 100, reconnectMaxMs: 200, logger: createLogger({ level: 'info', ring, destination: quiet }) });
    teardown.push(() => agent.stop());
    await agent.start();
    // the kernel alone would keep the first attempt waiting (SYN retransmitted after 1, 3, 7, 15 s)
    await waitFor(() => agent.link.stats.handshakeTimeouts >= 2, 4 * HANDSHAKE_TIMEOUT_MS + 2000, 'two handshakes given up');
    expect(agent.link.connected).toBe(false);
    const retries = ring.tail(500).map((l) => JSON.parse(l) as { msg: string; error?: string }).filter((l) => l.msg === 'disconnected from hub, will retry');
    expect(retries[0]?.error).toMatch(/no TCP handshake within 2000 ms/);

    child.kill('SIGCONT');
    await waitFor(() => agent.link.connected, 15_000, 'connected once the broker accepts');
    expect(agent.link.stats.connects).toBe(1);
  }, 40_000);
});

describe('a list of hubs (KF_HUB_URL=url1,url2,…)', () => {
  async function deadPort(): Promise<number> {
    return new Promise((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
  }

  function link(url: string, over: Partial<ConstructorParameters<typeof MqttLink>[0]> = {}): MqttLink {
    const l = new MqttLink({
      url,
      clientId: 'GZ-YX-001-01',
      password: 'pw',
      keepalive: 10,
      // A backoff step of 30-60 s: a test that connects well within its timeout took no step between the hubs.
      reconnectMinMs: 60_000,
      reconnectMaxMs: 120_000,
      authRetryMs: 300_000,
      will: () => ({ topic: 'kf/v1/t/GZ-YX-001-01/presence', payload: '{}' }),
      logger: createLogger({ level: 'silent', destination: quiet }),
      // keeps the written order (each Fisher-Yates draw picks the last place)
      random: () => 0.999999,
      ...over,
    });
    teardown.push(() => l.stop());
    return l;
  }

  it('moves past unreachable hubs at once (the backoff spans the list) and stays with the one it reached', async () => {
    const live = await startBroker();
    teardown.push(() => live.close());
    const list = `mqtt://127.0.0.1:${await deadPort()},mqtt://127.0.0.1:${await deadPort()},${live.url}`;
    const l = link(list);
    l.start();
    await waitFor(() => l.connected, 20_000, 'connected to the third hub');
    expect(l.stats.attempts).toBe(3);
    expect(l.url).toBe(live.url);
    // The hub drops the connection (a network blip): the terminal comes back to the same hub, not to the dead ones.
    const reconnect = link(list, { reconnectMinMs: 50, reconnectMaxMs: 100 });
    reconnect.start();
    await waitFor(() => reconnect.connected, 20_000, 'second link connected');
    const before = reconnect.stats.attempts;
    for (const c of Object.values((live.broker as unknown as { clients: Record<string, { close(): void }> }).clients)) c.close();
    await waitFor(() => reconnect.stats.connects === 2, 20_000, 'reconnected');
    expect(reconnect.stats.attempts).toBe(before + 1);
    expect(reconnect.url).toBe(live.url);
  }, 40_000);

  it('moves on when a hub refuses the connection', async () => {
    const refusing = await startBroker({ passwords: { 'GZ-YX-001-01': 'another-secret' } });
    const accepting = await startBroker({ passwords: { 'GZ-YX-001-01': 'pw' } });
    teardown.push(() => refusing.close(), () => accepting.close());
    const l = link(`${refusing.url},${accepting.url}`);
    l.start();
    // authRetryMs is 5 min: connecting at all shows the refusal moved the link on instead of waiting it out
    await waitFor(() => l.connected, 20_000, 'connected to the accepting hub');
    expect(refusing.refusals.get('GZ-YX-001-01')).toBe(1);
    expect(l.url).toBe(accepting.url);
  }, 40_000);

  it('each terminal shuffles the list, so a fleet spreads over the hubs', () => {
    const urls = ['mqtt://a:1883', 'mqtt://b:1883', 'mqtt://c:1883'];
    const firsts = new Set<string>();
    let seed = 1;
    for (let i = 0; i < 30; i++) {
      // a small deterministic generator per terminal
      let x = seed++ * 7919;
      const random = () => ((x = (x * 48271) % 2147483647) / 2147483647);
      firsts.add(link(urls.join(', '), { random }).url);
    }
    expect([...firsts].sort()).toEqual(urls);
    expect(() => splitHubUrls(' , ')).toThrow(/no hub URL/);
  });
});
