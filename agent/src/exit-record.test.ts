import { describe, expect, it } from 'vitest';
import { FileExitRecorder } from './exit-record.ts';
import { tempDir } from './test-support/agent.ts';

describe('last-exit record', () => {
  it('first start, then clean, then crash (host still up) or power loss (host booted since)', () => {
    const t = tempDir();
    try {
      let hostBoot = Date.parse('2026-11-01T00:00:00Z');
      const rec = () => new FileExitRecorder(t.dir, () => hostBoot);
      const t0 = new Date('2026-11-26T01:00:00Z');
      expect(rec().start('boot1', t0).cause).toBe('first-start');
      const r1 = rec();
      r1.start('boot1', t0);
      r1.stopped('clean', new Date('2026-11-26T01:05:00Z'));
      const r2 = rec();
      expect(r2.start('boot2', new Date('2026-11-26T01:06:00Z'))).toEqual({ cause: 'clean', at: '2026-11-26T01:05:00.000Z' });
      r2.alive(new Date('2026-11-26T01:10:00Z'));
      // no stop recorded, host not rebooted: the process died
      const r3 = rec();
      expect(r3.start('boot3', new Date('2026-11-26T01:11:00Z'))).toEqual({ cause: 'crash', at: '2026-11-26T01:10:00.000Z' });
      r3.alive(new Date('2026-11-26T02:00:00Z'));
      // no stop recorded and the host booted after we were last alive: power loss
      hostBoot = Date.parse('2026-11-26T03:00:00Z');
      expect(rec().start('boot4', new Date('2026-11-26T03:01:00Z'))).toMatchObject({ cause: 'power-loss', at: '2026-11-26T02:00:00.000Z' });
    } finally {
      t.cleanup();
    }
  });
});
