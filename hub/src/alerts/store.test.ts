/**
 * The alert store's contract on both engines (SQLite file, PostgreSQL database): every method, with the answers the
 * engine, the routes and the dashboard rely on, the same on both. The engine's guarantee under concurrency (one
 * alert per fault, lifecycle events in order) is in engine-concurrency.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { transaction } from '../db/engine.ts';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { SecretBox } from '../secrets.ts';
import { createAlertStore, type AlertStore, type NewAlert } from './store.ts';
import { addTerminal, exec, T0 } from './test-fixtures.ts';

const MIN = 60_000;

function alertOf(subject: string, rule: NewAlert['rule'], over: Partial<NewAlert> = {}): NewAlert {
  const kind = subject.split('-').length === 4 ? 'terminal' : 'node';
  const nodeId = kind === 'terminal' ? subject.split('-').slice(0, 3).join('-') : subject;
  return { openKey: `${kind}:${subject}|${rule}`, subjectKind: kind, subjectId: subject, nodeId, rule, severity: 'major', title: `${rule} at ${subject}`, details: '{"n":1}', at: T0, dueAt: T0 + 30 * MIN, ...over };
}

describe.each(TEST_ENGINES)('alert store on %s', (kind) => {
  let t: TestEngine;
  let store: AlertStore;
  beforeEach(async () => {
    t = await openTestEngine(kind);
    store = createAlertStore(t.engine);
  });
  afterEach(async () => {
    await t.close();
  });

  it('opens one alert per open key, refreshes, acknowledges, assigns, notes, escalates once, resolves once, and a new one reopens the key', async () => {
    const id = (await store.insertAlert(alertOf('GZ-T-001-01', 'peripheral-fault')))!;
    expect(id).toBeGreaterThan(0);
    // the same fault again: nothing written
    expect(await store.insertAlert(alertOf('GZ-T-001-01', 'peripheral-fault', { title: 'again' }))).toBeNull();
    expect(await store.alert(id)).toEqual({
      id, openKey: 'terminal:GZ-T-001-01|peripheral-fault', subjectKind: 'terminal', subjectId: 'GZ-T-001-01', nodeId: 'GZ-T-001', rule: 'peripheral-fault',
      severity: 'major', state: 'open', title: 'peripheral-fault at GZ-T-001-01', details: '{"n":1}', openedAt: T0, lastSeenAt: T0, dueAt: T0 + 30 * MIN,
      acknowledgedAt: null, acknowledgedBy: null, assignedTo: null, assignedAt: null, escalatedAt: null, escalatedTo: null, resolvedAt: null, resolvedBy: null,
      resolution: null, resolutionNote: null, updatedAt: T0,
    });
    await store.appendHistory({ alertId: id, at: T0, actor: 'system', action: 'opened', note: null, data: '{"severity":"major"}' });
    await store.refresh(id, { severity: 'critical', title: 'worse', details: '{"n":2}' }, T0 + 1000);
    await store.markSeen(id, T0 + 2000);
    expect(await store.alert(id)).toMatchObject({ severity: 'critical', title: 'worse', details: '{"n":2}', lastSeenAt: T0 + 2000, updatedAt: T0 + 1000 });
    await store.markAllSeen(T0 + 5000, T0 + 2000);
    expect((await store.alert(id))!.lastSeenAt).toBe(T0 + 5000);

    expect(await store.overdue(T0 + 30 * MIN - 1)).toEqual([]);
    expect((await store.overdue(T0 + 30 * MIN)).map((a) => a.id)).toEqual([id]);
    expect(await store.escalate(id, T0 + 30 * MIN, 'GZ-T')).toBe(true);
    expect(await store.escalate(id, T0 + 31 * MIN, 'GZ-T')).toBe(false);
    expect(await store.overdue(T0 + 40 * MIN)).toEqual([]);

    await store.acknowledge(id, T0 + 41 * MIN, 'tech-li');
    expect(await store.alert(id)).toMatchObject({ state: 'acknowledged', acknowledgedAt: T0 + 41 * MIN, acknowledgedBy: 'tech-li', escalatedTo: 'GZ-T' });
    await store.assign(id, 'tech-wang', T0 + 42 * MIN, 'tech-zhao');
    // assigning keeps the first acknowledgement
    expect(await store.alert(id)).toMatchObject({ state: 'assigned', assignedTo: 'tech-wang', assignedAt: T0 + 42 * MIN, acknowledgedBy: 'tech-li' });
    await store.touch(id, T0 + 43 * MIN);
    await store.appendHistory({ alertId: id, at: T0 + 43 * MIN, actor: 'tech-wang', action: 'note', note: '线缆松了 cable loose', data: null });

    expect(await store.resolve(id, { at: T0 + 50 * MIN, by: 'tech-wang', resolution: 'manual', note: 'fixed' })).toBe(true);
    expect(await store.resolve(id, { at: T0 + 51 * MIN, by: 'system', resolution: 'recovery', note: null })).toBe(false);
    expect(await store.alert(id)).toMatchObject({ state: 'resolved', openKey: null, resolvedAt: T0 + 50 * MIN, resolvedBy: 'tech-wang', resolution: 'manual', resolutionNote: 'fixed', updatedAt: T0 + 50 * MIN });
    expect(await store.escalate(id, T0 + 52 * MIN, 'GZ-T')).toBe(false);

    // the fault persists: a new alert under the same key, the old one kept
    const again = (await store.insertAlert(alertOf('GZ-T-001-01', 'peripheral-fault', { at: T0 + 52 * MIN })))!;
    expect(again).toBeGreaterThan(id);
    expect((await store.openOf({ terminals: ['GZ-T-001-01'], nodes: [] })).map((a) => a.id)).toEqual([again]);

    expect(await store.history(id)).toEqual([
      { id: expect.any(Number), alertId: id, at: T0, actor: 'system', action: 'opened', note: null, data: '{"severity":"major"}' },
      { id: expect.any(Number), alertId: id, at: T0 + 43 * MIN, actor: 'tech-wang', action: 'note', note: '线缆松了 cable loose', data: null },
    ]);
  });

  it('finds open alerts by subject (terminals and stations apart), open subjects and counts', async () => {
    const a = (await store.insertAlert(alertOf('GZ-T-001-01', 'peripheral-fault', { severity: 'critical' })))!;
    const b = (await store.insertAlert(alertOf('GZ-T-001-01', 'disk-full', { severity: 'minor' })))!;
    const st = (await store.insertAlert(alertOf('GZ-T-001', 'station-service-lost', { severity: 'critical' })))!;
    const gone = (await store.insertAlert(alertOf('GZ-T-001-02', 'offline')))!;
    await store.resolve(gone, { at: T0, by: 'system', resolution: 'recovery', note: null });
    expect((await store.openOf({ terminals: ['GZ-T-001-01', 'GZ-T-001-02'], nodes: [] })).map((x) => x.id)).toEqual([a, b]);
    expect((await store.openOf({ terminals: [], nodes: ['GZ-T-001'] })).map((x) => x.id)).toEqual([st]);
    // a station id given as a terminal finds nothing: the kind is part of the subject
    expect(await store.openOf({ terminals: ['GZ-T-001'], nodes: [] })).toEqual([]);
    expect(await store.openOf({ terminals: [], nodes: [] })).toEqual([]);
    const subjects = await store.openSubjects();
    expect(subjects.sort((x, y) => x.subjectId.localeCompare(y.subjectId))).toEqual([
      { subjectKind: 'node', subjectId: 'GZ-T-001' },
      { subjectKind: 'terminal', subjectId: 'GZ-T-001-01' },
    ]);
    const counts = await store.openCounts();
    expect(counts.sort((x, y) => x.severity.localeCompare(y.severity))).toEqual([{ severity: 'critical', n: 2 }, { severity: 'minor', n: 1 }]);
  });

  it('lists with every filter and both orders, scoped by node prefix and paged', async () => {
    const ids: Record<string, number> = {};
    const put = async (name: string, subject: string, rule: NewAlert['rule'], severity: NewAlert['severity'], at: number, dueAt = at + 30 * MIN) => {
      ids[name] = (await store.insertAlert(alertOf(subject, rule, { severity, at, dueAt })))!;
    };
    await put('a', 'GZ-T-001-01', 'peripheral-fault', 'major', T0);
    await put('b', 'GZ-T-001-02', 'offline', 'critical', T0 + MIN);
    await put('c', 'GZ-T-002-01', 'disk-full', 'minor', T0 + 2 * MIN, T0 + 3 * MIN);
    await put('d', 'GZ-TX-001-01', 'offline', 'critical', T0 + 3 * MIN);
    await put('e', 'GZ-T-001', 'station-service-lost', 'critical', T0 + 4 * MIN);
    await store.acknowledge(ids.b!, T0 + 5 * MIN, 'tech-li');
    await store.resolve(ids.a!, { at: T0 + 6 * MIN, by: 'system', resolution: 'recovery', note: null });
    const list = async (f: Partial<Parameters<AlertStore['list']>[0]>) =>
      (await store.list({ scopes: [], sort: 'newest', offset: 0, limit: 100, ...f })).map((x) => Object.keys(ids).find((k) => ids[k] === x.id));

    expect(await list({})).toEqual(['e', 'd', 'c', 'b', 'a']);
    // queue: critical first, then major, then minor; oldest first within
    expect(await list({ sort: 'queue' })).toEqual(['b', 'd', 'e', 'a', 'c']);
    // GZ-T covers GZ-T-001 and GZ-T-002, not GZ-TX; two scopes narrow (caller's scope and ?node=)
    expect(await list({ scopes: ['GZ-T'] })).toEqual(['e', 'c', 'b', 'a']);
    expect(await list({ scopes: ['GZ-T', 'GZ-T-001'] })).toEqual(['e', 'b', 'a']);
    expect(await list({ scopes: ['GZ-T-001'] })).toEqual(['e', 'b', 'a']);
    // LIKE wildcards in a node id match nothing more
    expect(await list({ scopes: ['GZ-T_'] })).toEqual([]);
    expect(await list({ states: ['open', 'acknowledged'] })).toEqual(['e', 'd', 'c', 'b']);
    expect(await list({ states: ['resolved'] })).toEqual(['a']);
    expect(await list({ severities: ['critical'] })).toEqual(['e', 'd', 'b']);
    expect(await list({ severities: ['minor', 'major'] })).toEqual(['c', 'a']);
    expect(await list({ rule: 'offline' })).toEqual(['d', 'b']);
    expect(await list({ subject: 'GZ-T-001-02' })).toEqual(['b']);
    // overdue: open, not acknowledged, due
    expect(await list({ overdueAt: T0 + 3 * MIN })).toEqual(['c']);
    expect(await list({ overdueAt: T0 + 40 * MIN })).toEqual(['e', 'd', 'c']);
    expect(await list({ limit: 2 })).toEqual(['e', 'd']);
    expect(await list({ limit: 2, offset: 2 })).toEqual(['c', 'b']);
    expect(await list({ sort: 'queue', limit: 2, offset: 3 })).toEqual(['a', 'c']);
  });

  it('keeps maintenance: active at a time, listed under a node, ended now but never before it began', async () => {
    const m1 = await store.addMaintenance({ targetKind: 'terminal', targetId: 'GZ-T-001-01', nodeId: 'GZ-T-001', reason: '换屏 screen swap', startsAt: T0, endsAt: T0 + 60 * MIN, createdBy: 'tech-li', createdAt: T0 - MIN });
    expect(m1).toEqual({ id: m1.id, targetKind: 'terminal', targetId: 'GZ-T-001-01', nodeId: 'GZ-T-001', reason: '换屏 screen swap', startsAt: T0, endsAt: T0 + 60 * MIN, createdBy: 'tech-li', createdAt: T0 - MIN });
    const m2 = await store.addMaintenance({ targetKind: 'node', targetId: 'GZ-TX', nodeId: 'GZ-TX', reason: 'power', startsAt: T0 + 30 * MIN, endsAt: T0 + 90 * MIN, createdBy: 'admin', createdAt: T0 });
    expect(await store.maintenance(m1.id)).toEqual(m1);
    expect(await store.maintenance(m1.id + 1000)).toBeUndefined();
    expect((await store.activeMaintenance(T0 - 1)).map((m) => m.id)).toEqual([]);
    expect((await store.activeMaintenance(T0)).map((m) => m.id)).toEqual([m1.id]);
    expect((await store.activeMaintenance(T0 + 45 * MIN)).map((m) => m.id).sort()).toEqual([m1.id, m2.id].sort());
    expect((await store.maintenanceList(null, null, 10)).map((m) => m.id)).toEqual([m2.id, m1.id]);
    expect((await store.maintenanceList('GZ-T', null, 10)).map((m) => m.id)).toEqual([m1.id]);
    expect((await store.maintenanceList(null, T0 + 70 * MIN, 10)).map((m) => m.id)).toEqual([m2.id]);
    expect((await store.maintenanceList(null, null, 1)).map((m) => m.id)).toEqual([m2.id]);
    // ended before it began: it ends where it starts
    expect(await store.endMaintenance(m2.id, T0 + 10 * MIN)).toMatchObject({ id: m2.id, startsAt: T0 + 30 * MIN, endsAt: T0 + 30 * MIN });
    expect(await store.endMaintenance(m1.id, T0 + 20 * MIN)).toMatchObject({ endsAt: T0 + 20 * MIN });
    // a past end stays as it was
    expect(await store.endMaintenance(m1.id, T0 + 50 * MIN)).toMatchObject({ endsAt: T0 + 20 * MIN });
    expect(await store.endMaintenance(m1.id + 1000, T0)).toBeUndefined();
  });

  it('keeps silences: active until their time, listed under a node, ended now', async () => {
    const s1 = await store.addSilence({ nodeId: 'GZ-T', rule: 'peripheral-fault', until: T0 + 30 * MIN, reason: 'known batch', createdBy: 'admin', createdAt: T0 });
    expect(s1).toEqual({ id: s1.id, nodeId: 'GZ-T', rule: 'peripheral-fault', until: T0 + 30 * MIN, reason: 'known batch', createdBy: 'admin', createdAt: T0 });
    const s2 = await store.addSilence({ nodeId: 'GZ-TX-001', rule: '*', until: T0 + 60 * MIN, reason: null, createdBy: 'admin', createdAt: T0 + 1 });
    expect((await store.activeSilences(T0 + 30 * MIN)).map((s) => s.id)).toEqual([s2.id]);
    expect((await store.silenceList(null, null, 10)).map((s) => s.id)).toEqual([s2.id, s1.id]);
    expect((await store.silenceList('GZ-T', null, 10)).map((s) => s.id)).toEqual([s1.id]);
    expect((await store.silenceList('GZ-TX', T0 + 40 * MIN, 10)).map((s) => s.id)).toEqual([s2.id]);
    expect(await store.endSilence(s2.id, T0 + 10 * MIN)).toMatchObject({ until: T0 + 10 * MIN });
    expect(await store.endSilence(s2.id, T0 + 20 * MIN)).toMatchObject({ until: T0 + 10 * MIN });
    expect(await store.silence(s1.id)).toEqual(s1);
    expect(await store.endSilence(s1.id + 1000, T0)).toBeUndefined();
  });

  it('keeps webhooks with sealed secrets, queues deliveries in order, lets one dispatcher at a time claim each, records attempts, and drops them with their webhook', async () => {
    const w = await store.addWebhook({ url: 'https://duty.example/hook?token=x', secret: 'whsec-0123456789abcdef', createdBy: 'admin', createdAt: T0 });
    expect(w).toMatchObject({ url: 'https://duty.example/hook?token=x', enabled: 1, createdBy: 'admin', createdAt: T0 });
    expect(SecretBox.isSealed(w.secret)).toBe(true);
    expect(await store.openSecret(w.secret)).toBe('whsec-0123456789abcdef');
    const w2 = await store.addWebhook({ url: 'http://127.0.0.1:9/x', secret: 'another-secret-0123', createdBy: 'admin', createdAt: T0 + 1 });
    expect((await store.webhooks()).map((x) => x.id)).toEqual([w.id, w2.id]);
    expect(await store.webhook(w.id)).toEqual(w);

    expect(await store.nextDeliveryAt()).toBeNull();
    await store.queueDeliveries([]);
    await store.queueDeliveries([
      { webhookId: w.id, alertId: 7, event: 'opened', payload: '{"event":"alert.opened","n":"一"}', at: T0 + 10 },
      { webhookId: w2.id, alertId: 7, event: 'opened', payload: '{"event":"alert.opened"}', at: T0 + 10 },
      { webhookId: w.id, alertId: 7, event: 'resolved', payload: '{"event":"alert.resolved"}', at: T0 + 20 },
    ]);
    expect(await store.nextDeliveryAt()).toBe(T0 + 10);
    // two dispatchers (two hubs) claiming at once never take the same delivery
    const claims = await Promise.all([store.claimDue(T0 + 10, 1, T0 + 500), store.claimDue(T0 + 10, 1, T0 + 500)]);
    const due = claims.flat().sort((x, y) => x.id - y.id);
    expect(due.map((d) => [d.webhookId, d.event])).toEqual([[w.id, 'opened'], [w2.id, 'opened']]);
    // as it was due (the lease is not its due time)
    expect(due[0]).toEqual({ id: due[0]!.id, webhookId: w.id, alertId: 7, event: 'opened', payload: '{"event":"alert.opened","n":"一"}', status: 'pending', attempts: 0, nextAt: T0 + 10, lastStatus: null, lastError: null, createdAt: T0 + 10, deliveredAt: null });
    // claimed: not due again before the lease ends
    expect(await store.claimDue(T0 + 10, 10, T0 + 500)).toEqual([]);
    expect((await store.claimDue(T0 + 20, 10, T0 + 500)).map((d) => d.event)).toEqual(['resolved']);
    expect(await store.nextDeliveryAt()).toBe(T0 + 500);

    await store.recordAttempt(due[0]!.id, { status: 'pending', nextAt: T0 + 1000, lastStatus: 500, lastError: 'HTTP 500', deliveredAt: null });
    await store.recordAttempt(due[0]!.id, { status: 'delivered', nextAt: T0 + 1000, lastStatus: 200, lastError: null, deliveredAt: T0 + 1001 });
    await store.recordAttempt(due[1]!.id, { status: 'failed', nextAt: T0 + 10, lastStatus: null, lastError: 'TypeError: fetch failed', deliveredAt: null });
    const mine = await store.deliveries(w.id, 10);
    expect(mine.map((d) => [d.event, d.status, d.attempts])).toEqual([['resolved', 'pending', 0], ['opened', 'delivered', 2]]);
    expect(mine[1]).toMatchObject({ lastStatus: 200, lastError: null, deliveredAt: T0 + 1001 });
    expect(await store.deliveries(w.id, 1)).toHaveLength(1);
    const counts = async (id: number) => (await store.deliveryCounts(id)).sort((a, b) => a.status.localeCompare(b.status));
    expect(await counts(w.id)).toEqual([{ status: 'delivered', n: 1 }, { status: 'pending', n: 1 }]);
    expect(await counts(w2.id)).toEqual([{ status: 'failed', n: 1 }]);
    expect(await store.nextDeliveryAt()).toBe(T0 + 500);
    expect((await store.claimDue(T0 + 500, 10, T0 + 900)).map((d) => [d.event, d.nextAt])).toEqual([['resolved', T0 + 500]]);

    expect(await store.deleteWebhook(w.id)).toBe(true);
    expect(await store.deleteWebhook(w.id)).toBe(false);
    expect(await store.webhook(w.id)).toBeUndefined();
    expect(await store.deliveries(w.id, 10)).toEqual([]);
    expect(await store.deliveries(w2.id, 10)).toHaveLength(1);
    expect(await store.nextDeliveryAt()).toBeNull();
  });

  it('seals webhook secrets an older hub stored in plain text, once', async () => {
    await exec(t.engine, "INSERT INTO alert_webhooks (url, secret, enabled, created_by, created_at) VALUES ('http://x/', 'plain-secret-0123456', 1, 'admin', ?)", T0);
    expect(await store.sealPlainWebhookSecrets()).toBe(1);
    expect(await store.sealPlainWebhookSecrets()).toBe(0);
    const [w] = await store.webhooks();
    expect(w!.secret).not.toContain('plain-secret');
    expect(await store.openSecret(w!.secret)).toBe('plain-secret-0123456');
    // another store on the same database (a restarted hub, a second hub) opens it with the same key
    expect(await createAlertStore(t.engine).openSecret(w!.secret)).toBe('plain-secret-0123456');
  });

  it('reads what the rules judge: active terminals, their state, latest update, presence transitions, command outcomes, self-test alerts', async () => {
    await addTerminal(t.engine, 'GZ-T-001-01', 'GZ-T-001', { presence_reason: 'connected', presence_since: T0, flapping: 1, host: '{"diskUsed":1}', peripherals: '{"camera":{"status":"ok"}}', services: '["id-card-application"]', flooding: null, credential_conflict: '{"a":1}' });
    await addTerminal(t.engine, 'GZ-T-001-02', 'GZ-T-001');
    await addTerminal(t.engine, 'GZ-T-001-03', 'GZ-T-001', {}, false);
    expect((await store.members()).sort((a, b) => a.id.localeCompare(b.id))).toEqual([
      { id: 'GZ-T-001-01', type: 'kiosk-a', stationId: 'GZ-T-001', presence: 'online', services: '["id-card-application"]' },
      { id: 'GZ-T-001-02', type: 'kiosk-a', stationId: 'GZ-T-001', presence: 'online', services: null },
    ]);
    const snaps = await store.snapshots(['GZ-T-001-01', 'GZ-T-001-02', 'GZ-T-001-03', 'GZ-NOPE']);
    expect([...snaps.keys()].sort()).toEqual(['GZ-T-001-01', 'GZ-T-001-02']);
    expect(snaps.get('GZ-T-001-01')).toEqual({
      id: 'GZ-T-001-01', type: 'kiosk-a', stationId: 'GZ-T-001', presence: 'online', presenceReason: 'connected', presenceSince: T0, flapping: 1,
      host: '{"diskUsed":1}', peripherals: '{"camera":{"status":"ok"}}', services: '["id-card-application"]', flooding: null, credentialConflict: '{"a":1}',
    });
    expect((await store.snapshots([])).size).toBe(0);

    const upd = "INSERT INTO update_status (terminal_id, epoch, seq, ts, received_at, state, version, error) VALUES (?, 'e', ?, ?, ?, ?, ?, ?)";
    await exec(t.engine, upd, 'GZ-T-001-01', 1, T0, T0, 'downloading', '2.0.0', null);
    await exec(t.engine, upd, 'GZ-T-001-01', 2, T0 + 1, T0 + 1, 'failed', '2.0.0', 'sha256 mismatch');
    await exec(t.engine, upd, 'GZ-T-001-02', 1, T0, T0 + 2, 'installed', '2.0.0', null);
    const ups = await store.latestUpdates(['GZ-T-001-01', 'GZ-T-001-02', 'GZ-T-001-03']);
    expect(Object.fromEntries(ups)).toEqual({
      'GZ-T-001-01': { terminalId: 'GZ-T-001-01', at: T0 + 1, version: '2.0.0', error: 'sha256 mismatch', state: 'failed' },
      'GZ-T-001-02': { terminalId: 'GZ-T-001-02', at: T0 + 2, version: '2.0.0', error: null, state: 'installed' },
    });

    const tr = "INSERT INTO presence_transitions (terminal_id, at, from_state, to_state, reason) VALUES (?, ?, 'online', 'offline', 'lost')";
    for (const at of [T0 + 3, T0 + 1, T0 + 2]) await exec(t.engine, tr, 'GZ-T-001-01', at);
    expect(await store.transitionTimes('GZ-T-001-01', T0 + 1)).toEqual([T0 + 2, T0 + 3]);

    await exec(t.engine, "INSERT INTO commands (id, terminal_id, name, args, issued_at, expires_at, status, result, created_by) VALUES ('c1', 'GZ-T-001-01', 'self-test', '{}', ?, ?, 'ok', '{\"passed\":true}', 'tech')", T0, T0 + MIN);
    expect(await store.commandOutcome('c1')).toEqual({ result: '{"passed":true}', error: null });
    expect(await store.commandOutcome('c2')).toBeUndefined();
    const id = (await store.insertAlert(alertOf('GZ-T-001-01', 'peripheral-fault')))!;
    await store.appendHistory({ alertId: id, at: T0, actor: 'system', action: 'note', note: 'x', data: '{"commandId":"c1"}' });
    expect(await store.selfTestAlert('c1')).toBeUndefined();
    await store.appendHistory({ alertId: id, at: T0, actor: 'tech', action: 'self-test', note: null, data: '{"commandId":"c1"}' });
    expect(await store.selfTestAlert('c1')).toBe(id);
  });

  it.runIf(kind === 'postgres')('two runs holding their own open alerts sweep past each other’s rows instead of deadlocking', async () => {
    const x = (await store.insertAlert(alertOf('GZ-T-001-01', 'offline')))!;
    const y = (await store.insertAlert(alertOf('GZ-T-001-02', 'offline')))!;
    // both runs hold their subject's open alert before either sweeps, and until both swept
    const arrived = [0, 0];
    const barrier = async (n: 0 | 1) => {
      arrived[n]!++;
      while (arrived[n]! < 2) await new Promise((r) => setTimeout(r, 10));
    };
    const run = (terminal: string) =>
      transaction(t.engine, async (tx) => {
        await store.openOf({ terminals: [terminal], nodes: [] }, tx);
        await barrier(0);
        await store.markAllSeen(T0 + MIN, T0, tx);
        const overdue = (await store.overdue(T0 + 60 * MIN, tx)).map((a) => a.id);
        await barrier(1);
        return overdue;
      });
    const [mine1, mine2] = await Promise.all([run('GZ-T-001-01'), run('GZ-T-001-02')]);
    // each escalates only what it holds; each alert is marked seen by the run that holds it
    expect([mine1, mine2]).toEqual([[x], [y]]);
    expect((await store.alert(x))!.lastSeenAt).toBe(T0 + MIN);
    expect((await store.alert(y))!.lastSeenAt).toBe(T0 + MIN);
  });

  it('writes in the caller’s transaction: all of it, or none of it', async () => {
    const err = await transaction(t.engine, async (tx) => {
      const id = (await store.insertAlert(alertOf('GZ-T-001-01', 'offline'), tx))!;
      await store.appendHistory({ alertId: id, at: T0, actor: 'system', action: 'opened', note: null, data: null }, tx);
      await store.addMaintenance({ targetKind: 'node', targetId: 'GZ-T', nodeId: 'GZ-T', reason: 'x', startsAt: T0, endsAt: T0 + 1, createdBy: 'a', createdAt: T0 }, tx);
      expect((await store.openOf({ terminals: ['GZ-T-001-01'], nodes: [] }, tx)).map((a) => a.id)).toEqual([id]);
      throw new Error('refused halfway');
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('refused halfway');
    expect(await store.list({ scopes: [], sort: 'newest', offset: 0, limit: 10 })).toEqual([]);
    expect(await store.maintenanceList(null, null, 10)).toEqual([]);

    const w = await store.addWebhook({ url: 'http://x/', secret: 'whsec-0123456789abcdef', createdBy: 'a', createdAt: T0 });
    await store.queueDeliveries([{ webhookId: w.id, alertId: 1, event: 'opened', payload: '{}', at: T0 }]);
    await transaction(t.engine, async (tx) => {
      expect(await store.deleteWebhook(w.id, tx)).toBe(true);
      const id = (await store.insertAlert(alertOf('GZ-T-001-01', 'offline'), tx))!;
      expect(await store.lockAlert(id, tx)).toMatchObject({ id, state: 'open' });
    });
    expect(await store.webhooks()).toEqual([]);
    expect(await store.nextDeliveryAt()).toBeNull();
    expect(await store.list({ scopes: [], sort: 'newest', offset: 0, limit: 10 })).toHaveLength(1);
  });
});
