/**
 * The security store's contract on both engines: a flag set on a terminal without a state row yet makes the row,
 * clearing leaves it, `active` lists what a restart must carry on with; and the hub key is made once per database,
 * the same for every caller (two hubs starting at once agree on it).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { transaction } from '../db/engine.ts';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { newKey } from '../secrets.ts';
import { createSecurityStore, type SecurityStore } from './store.ts';

describe.each(TEST_ENGINES)('security store on %s', (kind) => {
  let t: TestEngine;
  let store: SecurityStore;
  beforeEach(async () => {
    t = await openTestEngine(kind);
    store = createSecurityStore(t.engine);
  });
  afterEach(async () => {
    await t.close();
  });

  it('sets and clears the flooding and credential-conflict flags; active lists the flagged terminals', async () => {
    expect(await store.active()).toEqual([]);
    await store.setFlag('GZ-YX-001-02', 'flooding', '{"since":1}');
    await store.setFlag('GZ-YX-001-01', 'credentialConflict', '{"addresses":["10.0.0.1","10.0.0.2"]}');
    await store.setFlag('GZ-YX-001-01', 'flooding', '{"since":2}');
    expect(await store.active()).toEqual([
      { terminalId: 'GZ-YX-001-01', flooding: '{"since":2}', credentialConflict: '{"addresses":["10.0.0.1","10.0.0.2"]}' },
      { terminalId: 'GZ-YX-001-02', flooding: '{"since":1}', credentialConflict: null },
    ]);
    await store.setFlag('GZ-YX-001-02', 'flooding', null);
    await store.setFlag('GZ-YX-001-01', 'credentialConflict', null);
    expect(await store.active()).toEqual([{ terminalId: 'GZ-YX-001-01', flooding: '{"since":2}', credentialConflict: null }]);
  });

  it('a flag set in a transaction that rolls back is not kept', async () => {
    await transaction(t.engine, async (tx) => {
      await store.setFlag('GZ-YX-001-03', 'flooding', '{}', tx);
      throw new Error('undone');
    }).catch(() => {});
    expect(await store.active()).toEqual([]);
  });

  it('makes the hub key once: every later caller, concurrent ones included, gets the first one', async () => {
    const keys = await Promise.all([newKey(), newKey(), newKey()].map((k) => store.hubKey(k)));
    expect(new Set(keys).size).toBe(1);
    expect(await store.hubKey(newKey())).toBe(keys[0]);
  });
});
