import os from 'node:os';
import { describe, expect, test } from 'vitest';
import { ConfigError, flagsToEnv, parseConfig } from './config.ts';

describe('config', () => {
  test('defaults make a bare start work', () => {
    const c = parseConfig({});
    expect(c).toMatchObject({ bind: '0.0.0.0', mqttPort: 1883, httpPort: 8080, retentionDays: 7, maxPayload: 65536, timezone: 'Asia/Shanghai' });
    expect(c.mqttsPort).toBeUndefined();
  });

  test('quotas and the takeover hold-off come from KF_QUOTA_* and KF_TAKEOVER_HOLD_OFF_S', () => {
    const c = parseConfig({
      KF_QUOTA_TELEMETRY_RATE: '2',
      KF_QUOTA_TELEMETRY_BURST: '100',
      KF_QUOTA_RESULTS_RATE: '0',
      KF_QUOTA_EVENTS_PER_DAY: '250',
      KF_TAKEOVER_HOLD_OFF_S: '30',
    });
    expect(c.quota.streams.telemetry).toEqual({ rate: 2, burst: 100 });
    expect(c.quota.streams['commands/result'].rate).toBe(0);
    expect(c.quota.streams.events).toEqual({ rate: 1, burst: 5000 });
    expect(c.quota.eventsPerDay).toBe(250);
    expect(c.takeover.holdOffMs).toBe(30_000);
  });

  test('KF_DEMO: off unless the demo says 1 (or true); anything else is an error naming it', () => {
    expect(parseConfig({}).demo).toBe(false);
    expect(parseConfig({ KF_DEMO: '1' }).demo).toBe(true);
    expect(parseConfig({ KF_DEMO: 'true' }).demo).toBe(true);
    expect(() => parseConfig({ KF_DEMO: 'yes' })).toThrow(/^KF_DEMO:/);
  });

  test('KF_HUB_ID names the hub (default host name and MQTT port), KF_HUB_LEASE_MS its lease; bad values name the key', () => {
    expect(parseConfig({}).hubId).toBe(`${os.hostname()}:1883`);
    expect(parseConfig({ KF_MQTT_PORT: '1884' }).hubId).toBe(`${os.hostname()}:1884`);
    expect(parseConfig({ KF_HUB_ID: 'hub-2' }).hubId).toBe('hub-2');
    expect(parseConfig({ KF_HUB_ID: '  ' }).hubId).toBe(`${os.hostname()}:1883`);
    expect(parseConfig({}).hubs.leaseMs).toBe(10_000);
    expect(parseConfig({ KF_HUB_LEASE_MS: '4000' }).hubs.leaseMs).toBe(4000);
    expect(() => parseConfig({ KF_HUB_ID: 'a b' })).toThrow(/^KF_HUB_ID:/);
    expect(() => parseConfig({ KF_HUB_ID: 'x'.repeat(129) })).toThrow(/^KF_HUB_ID: at most 128/);
    expect(() => parseConfig({ KF_HUB_LEASE_MS: '10' })).toThrow(/^KF_HUB_LEASE_MS:/);
  });

  test('flags mirror env names and override env', () => {
    expect(parseConfig({ KF_MQTT_PORT: '1', ...flagsToEnv(['--mqtt-port=0']) }).mqttPort).toBe(0);
    expect(() => flagsToEnv(['--oops'])).toThrow(ConfigError);
  });

  test('KF_MQTT_PORT=off turns the plain listener off, only beside TLS; 0 stays an ephemeral port', () => {
    expect(parseConfig({ KF_MQTT_PORT: 'off', KF_TLS_CERT: '/c.pem', KF_TLS_KEY: '/k.pem' }).mqttPort).toBeNull();
    expect(parseConfig({ ...flagsToEnv(['--mqtt-port=off', '--tls-cert=/c.pem', '--tls-key=/k.pem']) }).mqttPort).toBeNull();
    expect(parseConfig({ KF_MQTT_PORT: '0' }).mqttPort).toBe(0);
    expect(() => parseConfig({ KF_MQTT_PORT: 'off' })).toThrow(/^KF_MQTT_PORT: off needs KF_TLS_CERT and KF_TLS_KEY/);
    expect(() => parseConfig({ KF_MQTT_PORT: 'of' })).toThrow(/^KF_MQTT_PORT:/);
  });

  test.each([
    [{ KF_MQTT_PORT: '-1' }, 'KF_MQTT_PORT'],
    [{ KF_MAX_PAYLOAD: '12' }, 'KF_MAX_PAYLOAD'],
    [{ KF_TLS_CERT: '/x.pem' }, 'KF_TLS_KEY'],
    [{ KF_MQTTS_PORT: '8883' }, 'KF_MQTTS_PORT'],
    [{ KF_QUOTA_TELEMETRY_RATE: 'fast' }, 'KF_QUOTA_TELEMETRY_RATE'],
    [{ KF_QUOTA_EVENTS_BURST: '0' }, 'KF_QUOTA_EVENTS_BURST'],
    [{ KF_QUOTA_EVENTS_PER_DAY: '-5' }, 'KF_QUOTA_EVENTS_PER_DAY'],
  ])('%o → error naming %s', (env, key) => {
    expect(() => parseConfig(env)).toThrow(new RegExp(`^${key}:`));
  });
});
