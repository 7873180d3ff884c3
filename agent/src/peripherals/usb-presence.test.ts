import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test-support/agent.ts';
import { UsbPresenceDriver } from './usb-presence.ts';

describe('usb-presence driver', () => {
  it('ok when the vendor:product id is on the bus, absent when not, unknown without a bus', async () => {
    // a sysfs-shaped tree: devices have idVendor/idProduct, interfaces do not
    const t = tempDir('kf-usb-');
    try {
      mkdirSync(path.join(t.dir, '1-1'));
      writeFileSync(path.join(t.dir, '1-1', 'idVendor'), '0400\n');
      writeFileSync(path.join(t.dir, '1-1', 'idProduct'), 'C35A\n');
      mkdirSync(path.join(t.dir, '1-1:1.0'));
      expect(await new UsbPresenceDriver('0400:c35a', t.dir).probe()).toEqual({ status: 'ok' });
      expect(await new UsbPresenceDriver('1234:5678', t.dir).probe()).toMatchObject({ status: 'absent', code: 'E_NOT_ON_BUS' });
      expect(await new UsbPresenceDriver('0400:c35a', path.join(t.dir, 'nope')).probe()).toMatchObject({ status: 'unknown' });
    } finally {
      t.cleanup();
    }
  });

  it('reads the real bus of this machine without failing', async () => {
    const s = await new UsbPresenceDriver('ffff:ffff').probe();
    expect(['absent', 'unknown']).toContain(s.status);
  });
});
