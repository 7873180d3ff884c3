import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, readSecret } from './config.ts';
import { tempDir } from './test-support/agent.ts';

const t = tempDir('kf-cfg-');
afterAll(() => t.cleanup());

describe('agent config', () => {
  it('reads a file and env, env winning, with defaults for the rest', () => {
    const file = path.join(t.dir, 'agent.json');
    writeFileSync(file, JSON.stringify({ terminalId: 'GZ-YX-001-01', telemetryInterval: 60, hubUrl: 'mqtts://hub.example:8883' }));
    const cfg = loadConfig({ file, env: { KF_TELEMETRY_INTERVAL: '15', KF_PERIPHERALS: '{"idCardReader":{"driver":"usb-presence","usbId":"0400:c35a"}}' } });
    expect(cfg).toMatchObject({ terminalId: 'GZ-YX-001-01', telemetryInterval: 15, hubUrl: 'mqtts://hub.example:8883', localApiPort: 7070 });
    expect(cfg.peripherals.idCardReader).toEqual({ driver: 'usb-presence', usbId: '0400:c35a' });
  });

  it('names the wrong key, with its env var', () => {
    const bad = (env: NodeJS.ProcessEnv): string => {
      try {
        loadConfig({ env: { KF_TERMINAL_ID: 'T1', ...env } });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad({ KF_LOCAL_API_PORT: '70000' })).toContain('KF_LOCAL_API_PORT');
    expect(bad({ KF_HUB_URL: 'http://hub' })).toContain('KF_HUB_URL');
    expect(bad({ KF_HUB_URL: 'mqtt://hub-a:1883,http://hub-b' })).toMatch(/KF_HUB_URL.*comma-separated list/);
    expect(bad({ KF_HUB_URL: ' , ' })).toMatch(/KF_HUB_URL.*at least one hub/);
    expect(loadConfig({ env: { KF_TERMINAL_ID: 'T1', KF_HUB_URL: 'mqtt://hub-a:1883, mqtts://hub-b:8883' } }).hubUrl).toBe('mqtt://hub-a:1883, mqtts://hub-b:8883');
    expect(bad({ KF_TELEMETRY_INTERVAL: 'often' })).toContain('KF_TELEMETRY_INTERVAL');
    expect(bad({ KF_TERMINAL_ID: 'a/b' })).toContain('KF_TERMINAL_ID');
    expect(bad({ KF_PERIPHERALS: '{"idCardReader":{"driver":"usb-presence"}}' })).toContain('peripherals.idCardReader');
    // a program belongs in the probe catalog, even locally: one place says what a terminal may run
    expect(bad({ KF_PERIPHERALS: '{"idCardReader":{"driver":"command","command":["/opt/diag"]}}' })).toMatch(/peripherals\.idCardReader\.command\): config may name a probe/);
    expect(bad({ KF_PERIPHERALS: '{not json' })).toContain('KF_PERIPHERALS');
    expect(() => loadConfig({ env: {} })).toThrow(/terminalId/);
  });

  it('refuses unknown keys in the file', () => {
    const file = path.join(t.dir, 'typo.json');
    writeFileSync(file, JSON.stringify({ terminalId: 'T1', telemetryIntreval: 5 }));
    expect(() => loadConfig({ file, env: {} })).toThrow(/telemetryIntreval: unknown key/);
  });

  it('reads the secret from its file and says which file is missing or empty', () => {
    const file = path.join(t.dir, 'secret');
    writeFileSync(file, '  s3cret\n');
    expect(readSecret(file)).toBe('s3cret');
    expect(() => readSecret(path.join(t.dir, 'missing'))).toThrow(/KF_SECRET_FILE/);
    writeFileSync(file, '\n');
    expect(() => readSecret(file)).toThrow(/empty/);
  });
});
