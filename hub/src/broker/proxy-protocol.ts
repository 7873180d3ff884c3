/**
 * The PROXY protocol v2 listener (KF_MQTT_PROXY_PORT): MQTT behind a TCP load balancer (deploy/haproxy.cfg,
 * `send-proxy-v2`) that tells the hub each terminal's own address, so that the per-address login throttle, the
 * refusal log and the credential-reuse check see the terminal and not the balancer.
 *
 * Trust: only this listener reads a PROXY header, and only from the addresses in KF_MQTT_PROXY_FROM (the balancers;
 * loopback by default). The plain MQTT port never does: there a PROXY header is a malformed MQTT packet and the
 * connection is closed. A connection here that does not start with a complete, valid v2 header within
 * HEADER_TIMEOUT_MS is closed, counted and logged; the hub serves everyone else meanwhile.
 */
import net from 'node:net';
import { Command, IPv4ProxyAddress, IPv6ProxyAddress, V2ProxyProtocol } from 'proxy-protocol-js';

/** The v2 signature [PROXY protocol spec, 2.2]. */
const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const FIXED = 16;
/** A header carries addresses and TLVs; haproxy's are well under this. */
const MAX_HEADER = 1024;
export const HEADER_TIMEOUT_MS = 5_000;

export type ProxyRefusal = 'untrusted-source' | 'bad-header' | 'timeout';

/** KF_MQTT_PROXY_FROM: addresses and subnets (`10.0.0.5`, `10.0.1.0/24`, `::1`), comma-separated. */
export function parseTrustedSources(value: string): net.BlockList {
  const list = new net.BlockList();
  for (const raw of value.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const [addr, bits] = entry.split('/');
    const family = net.isIP(addr ?? '');
    if (family === 0) throw new Error(`"${entry}" is not an IP address or subnet`);
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr!, type);
    else {
      const prefix = Number(bits);
      if (!/^\d+$/.test(bits) || prefix > (family === 6 ? 128 : 32)) throw new Error(`"${entry}": bad prefix length`);
      list.addSubnet(addr!, prefix, type);
    }
  }
  return list;
}

function sourceOf(socket: net.Socket, header: V2ProxyProtocol): string {
  const a = header.proxyAddress;
  // LOCAL: the balancer speaking for itself (a health check), no client behind it.
  if (header.command === Command.LOCAL) return socket.remoteAddress ?? 'unknown';
  if (a instanceof IPv4ProxyAddress) return a.sourceAddress.address.join('.');
  if (a instanceof IPv6ProxyAddress) {
    const b = a.sourceAddress.address;
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
    return groups.join(':');
  }
  return socket.remoteAddress ?? 'unknown';
}

/**
 * Reads the PROXY v2 header off `socket`, then hands the socket (the bytes after the header put back) and the
 * terminal's address to `accept`; or closes it and calls `refuse`.
 */
export function acceptProxied(
  socket: net.Socket,
  trusted: net.BlockList,
  accept: (socket: net.Socket, address: string) => void,
  refuse: (reason: ProxyRefusal, detail: string) => void,
): void {
  const peer = socket.remoteAddress ?? '';
  const family = net.isIPv6(peer) ? 'ipv6' : 'ipv4';
  if (!peer || !trusted.check(peer, family)) {
    socket.destroy();
    refuse('untrusted-source', `${peer || 'unknown'} is not in KF_MQTT_PROXY_FROM`);
    return;
  }
  let buf: Buffer = Buffer.alloc(0);
  let done = false;
  const finish = (): void => {
    done = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('error', onError);
  };
  const fail = (reason: ProxyRefusal, detail: string): void => {
    finish();
    socket.destroy();
    refuse(reason, detail);
  };
  const timer = setTimeout(() => fail('timeout', `no PROXY header within ${HEADER_TIMEOUT_MS} ms`), HEADER_TIMEOUT_MS);
  const onError = (): void => {
    // a reset before the header: nothing was said, nothing to count (haproxy's plain TCP health checks do this)
    if (!done) finish();
  };
  const onData = (chunk: Buffer): void => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    const n = Math.min(buf.length, SIGNATURE.length);
    if (!buf.subarray(0, n).equals(SIGNATURE.subarray(0, n))) return fail('bad-header', 'not a PROXY protocol v2 header');
    if (buf.length < FIXED) return;
    const total = FIXED + buf.readUInt16BE(14);
    if (total > MAX_HEADER) return fail('bad-header', `header of ${total} bytes`);
    if (buf.length < total) return;
    let header: V2ProxyProtocol;
    try {
      header = V2ProxyProtocol.parse(new Uint8Array(buf.subarray(0, total)));
    } catch (err) {
      return fail('bad-header', (err as Error).message ?? 'unparsable header');
    }
    finish();
    socket.pause();
    if (buf.length > total) socket.unshift(buf.subarray(total));
    accept(socket, sourceOf(socket, header));
  };
  socket.on('error', onError);
  socket.on('data', onData);
  socket.once('close', () => {
    if (!done) finish();
  });
}
