/**
 * The PROXY protocol listener (KF_MQTT_PROXY_PORT) in-process: the terminal's address from the header reaches the
 * login throttle's log; the plain port never trusts a header; untrusted sources, garbage and silence are refused
 * and counted, and the hub keeps serving.
 */
import net from 'node:net';
import mqttPacket from 'mqtt-packet';
import {
  Command,
  IPv4Address,
  IPv4ProxyAddress,
  TransportProtocol,
  V2ProxyProtocol,
} from 'proxy-protocol-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, until, type TestHub } from '../test-support.ts';
import { HEADER_TIMEOUT_MS, parseTrustedSources } from './proxy-protocol.ts';

function header(source: [number, number, number, number]): Buffer {
  const h = new V2ProxyProtocol(
    Command.PROXY,
    TransportProtocol.STREAM,
    new IPv4ProxyAddress(IPv4Address.createFrom(source), 40000, IPv4Address.createFrom([127, 0, 0, 1]), 1883),
  ).build();
  return Buffer.from(h);
}

function connectPacket(clientId: string, password: string): Buffer {
  return mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 30, username: clientId, password: Buffer.from(password) });
}

/** Sends bytes, resolves with what came back before the connection closed (or after ms). */
function exchange(port: number, bytes: Buffer, opts: { localAddress?: string; ms?: number } = {}): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) }, () => s.write(bytes));
    const chunks: Buffer[] = [];
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => undefined);
    const t = setTimeout(() => {
      s.destroy();
      resolve({ data: Buffer.concat(chunks), closed: false });
    }, opts.ms ?? 3000);
    s.on('close', () => {
      clearTimeout(t);
      resolve({ data: Buffer.concat(chunks), closed: true });
    });
  });
}

describe('PROXY protocol v2 listener', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub({ mqttProxy: { port: 0, from: '127.0.0.1' } });
  });
  afterAll(async () => {
    await hub?.stop();
  });

  it('takes the terminal address from the header: one address failing logins is slowed down, another is not', async () => {
    const { id } = await hub.terminal('GZ-T-001-01');
    // Five bad logins "from 10.9.8.7" through the balancer (the TCP peer is always 127.0.0.1 here).
    for (let i = 0; i < 5; i++) {
      const r = await exchange(hub.mqttProxyPort!, Buffer.concat([header([10, 9, 8, 7]), connectPacket(id, 'wrong-secret')]), { ms: 8000 });
      // CONNACK 5 (not authorized): the MQTT after the header reached the broker
      expect([...r.data.subarray(0, 4)]).toEqual([0x20, 0x02, 0x00, 0x05]);
    }
    const delayed = await hub.metric('kf_auth_delayed_total');
    expect(delayed).toBeGreaterThanOrEqual(1);
    // A terminal behind the same balancer but at another address logs in at once: the throttle keyed the failures
    // by 10.9.8.7, not by the balancer's 127.0.0.1.
    const { secret } = await hub.terminal('GZ-T-001-02');
    const ok = await exchange(hub.mqttProxyPort!, Buffer.concat([header([10, 9, 8, 6]), connectPacket('GZ-T-001-02', secret)]), { ms: 1500 });
    expect([...ok.data.subarray(0, 4)]).toEqual([0x20, 0x02, 0x00, 0x00]);
    expect(await hub.metric('kf_auth_delayed_total')).toBe(delayed);
  }, 60_000);

  it('the plain MQTT port never reads a PROXY header: the connection is closed without a CONNACK', async () => {
    const { secret } = await hub.terminal('GZ-T-001-03');
    const r = await exchange(hub.mqttPort, Buffer.concat([header([10, 9, 8, 5]), connectPacket('GZ-T-001-03', secret)]));
    expect(r.closed).toBe(true);
    expect(r.data.length).toBe(0);
  });

  it('refuses and counts a source outside KF_MQTT_PROXY_FROM, a bad header and silence; the hub keeps serving', async () => {
    const { secret } = await hub.terminal('GZ-T-001-04');
    const untrusted = await exchange(hub.mqttProxyPort!, Buffer.concat([header([10, 9, 8, 4]), connectPacket('GZ-T-001-04', secret)]), { localAddress: '127.0.0.5' });
    expect(untrusted.closed).toBe(true);
    expect(untrusted.data.length).toBe(0);
    expect(await hub.metric('kf_mqtt_proxy_refused_total', { reason: 'untrusted-source' })).toBe(1);

    const garbage = await exchange(hub.mqttProxyPort!, connectPacket('GZ-T-001-04', secret));
    expect(garbage.closed).toBe(true);
    expect(await hub.metric('kf_mqtt_proxy_refused_total', { reason: 'bad-header' })).toBe(1);

    const silent = await exchange(hub.mqttProxyPort!, Buffer.alloc(0), { ms: HEADER_TIMEOUT_MS + 3000 });
    expect(silent.closed).toBe(true);
    await until(async () => (await hub.metric('kf_mqtt_proxy_refused_total', { reason: 'timeout' })) === 1);

    const c = await hub.connect('GZ-T-001-04', secret);
    expect(c.connected).toBe(true);
  }, 20_000);

  it('KF_MQTT_PROXY_FROM takes addresses and subnets and refuses anything else', () => {
    const list = parseTrustedSources('10.0.0.5, 10.0.1.0/24,::1');
    expect(list.check('10.0.1.77', 'ipv4')).toBe(true);
    expect(list.check('10.0.0.6', 'ipv4')).toBe(false);
    expect(list.check('::1', 'ipv6')).toBe(true);
    expect(() => parseTrustedSources('balancer.local')).toThrow(/not an IP address/);
    expect(() => parseTrustedSources('10.0.0.0/40')).toThrow(/bad prefix length/);
  });
});
