import { describe, expect, test } from 'vitest';
import { ConfigError, flagsToEnv, parseConfig } from './config.ts';

describe('config', () => {
  test('defaults make a bare start work', () => {
    const c = parseConfig({});
    expect(c).toMatchObject({ bind: '0.0.0.0', mqttPort: 1883, httpPort: 8080, retentionDays: 7, maxPayload: 65536, timezone: 'Asia/Shanghai' });
    expect(c.mqttsPort).toBeUndefined();
  });

  test('flags mirror env names and override env', () => {
    expect(parseConfig({ KF_MQTT_PORT: '1', ...flagsToEnv(['--mqtt-port=0']) }).mqttPort).toBe(0);
    expect(() => flagsToEnv(['--oops'])).toThrow(ConfigError);
  });

  test.each([
    [{ KF_MQTT_PORT: '-1' }, 'KF_MQTT_PORT'],
    [{ KF_MAX_PAYLOAD: '12' }, 'KF_MAX_PAYLOAD'],
    [{ KF_TLS_CERT: '/x.pem' }, 'KF_TLS_KEY'],
    [{ KF_MQTTS_PORT: '8883' }, 'KF_MQTTS_PORT'],
  ])('%o → error naming %s', (env, key) => {
    expect(() => parseConfig(env)).toThrow(new RegExp(`^${key}:`));
  });
});
