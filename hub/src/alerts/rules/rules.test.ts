import { describe, expect, it } from 'vitest';
import { RULES, DEFAULT_THRESHOLDS, type Snapshot, type TerminalView } from './index.ts';

const NOW = Date.parse('2026-05-01T10:00:00Z');
const MIN = 60_000;

function term(over: Partial<TerminalView> = {}): TerminalView {
  return {
    id: 'GZ-T-001-01',
    type: 'id-card',
    stationId: 'GZ-T-001',
    presence: 'online',
    presenceReason: 'connected',
    presenceSince: NOW - 60 * MIN,
    flapping: false,
    host: { diskUsed: 10, diskTotal: 100, tempC: 40 },
    peripherals: { idCardReader: { status: 'ok', since: NOW - 60 * MIN } },
    services: ['id-card-application', 'id-card-collection', 'progress-inquiry'],
    thresholds: { ...DEFAULT_THRESHOLDS },
    inMaintenance: false,
    ...over,
  };
}

const snap = (terminals: TerminalView[], over: Partial<Snapshot> = {}): Snapshot => ({ now: NOW, terminals, drift: [], failedUpdates: [], ...over });

describe('alert rules', () => {
  it('terminal-flooding and credential-reuse: while the state the broker stored is there, one condition per terminal', () => {
    expect(RULES['terminal-flooding'](snap([term(), term({ flooding: null })]))).toHaveLength(0);
    const [f] = RULES['terminal-flooding'](snap([term({ flooding: { since: NOW - MIN, dropped: { telemetry: 900, events: 3 } } })]));
    expect(f).toMatchObject({ rule: 'terminal-flooding', severity: 'major', subjectId: 'GZ-T-001-01', details: { dropped: { telemetry: 900, events: 3 } } });
    expect(RULES['credential-reuse'](snap([term()]))).toHaveLength(0);
    const conflict = { since: NOW - MIN, addresses: ['10.0.0.5', '203.0.113.9'] as [string, string], takeovers: 2, refused: 1, heldOff: { address: '203.0.113.9', until: NOW + 10 * MIN } };
    const [c] = RULES['credential-reuse'](snap([term({ credentialConflict: conflict })]));
    expect(c).toMatchObject({ rule: 'credential-reuse', severity: 'critical', details: { addresses: ['10.0.0.5', '203.0.113.9'], heldOff: { address: '203.0.113.9' } } });
    expect(c!.title).toContain('10.0.0.5');
  });

  it('offline: only after offlineMinutes, stale counts, an online terminal never', () => {
    expect(RULES.offline(snap([term({ presence: 'offline', presenceSince: NOW - 9 * MIN })]))).toHaveLength(0);
    const [c] = RULES.offline(snap([term({ presence: 'offline', presenceReason: 'power-loss', presenceSince: NOW - 10 * MIN })]));
    expect(c).toMatchObject({ rule: 'offline', severity: 'major', subjectKind: 'terminal', subjectId: 'GZ-T-001-01', nodeId: 'GZ-T-001', details: { reason: 'power-loss' } });
    expect(RULES.offline(snap([term({ presence: 'stale', presenceSince: NOW - 11 * MIN })]))).toHaveLength(1);
    expect(RULES.offline(snap([term({ presence: 'online', presenceSince: NOW - 100 * MIN })]))).toHaveLength(0);
    // per-terminal threshold from its config
    expect(RULES.offline(snap([term({ presence: 'offline', presenceSince: NOW - 2 * MIN, thresholds: { ...DEFAULT_THRESHOLDS, offlineMinutes: 1 } })]))).toHaveLength(1);
  });

  it('peripheral: a card reader in fault past the threshold is critical; another peripheral is major; one alert lists all', () => {
    const fault = (since: number) => ({ status: 'fault' as const, since, code: 'E_NO_RESPONSE' });
    expect(RULES['peripheral-fault'](snap([term({ peripherals: { idCardReader: fault(NOW - 4 * MIN) } })]))).toHaveLength(0);
    const [c] = RULES['peripheral-fault'](snap([term({ peripherals: { camera: fault(NOW - 6 * MIN), idCardReader: fault(NOW - 5 * MIN) } })]));
    expect(c?.severity).toBe('critical');
    expect((c?.details.peripherals as { id: string }[]).map((p) => p.id)).toEqual(['idCardReader', 'camera']);
    expect(RULES['peripheral-fault'](snap([term({ peripherals: { camera: fault(NOW - 6 * MIN) } })]))[0]?.severity).toBe('major');
    // degraded is usable: no alert; an offline terminal's old report is the offline rule's business
    expect(RULES['peripheral-fault'](snap([term({ peripherals: { idCardReader: { status: 'degraded', since: NOW - 60 * MIN } } })]))).toHaveLength(0);
    expect(RULES['peripheral-fault'](snap([term({ presence: 'offline', peripherals: { idCardReader: fault(NOW - 60 * MIN) } })]))).toHaveLength(0);
  });

  it('disk: above 90 % (not at), per-terminal limit', () => {
    expect(RULES['disk-full'](snap([term({ host: { diskUsed: 90, diskTotal: 100, tempC: null } })]))).toHaveLength(0);
    expect(RULES['disk-full'](snap([term({ host: { diskUsed: 91, diskTotal: 100, tempC: null } })]))[0]).toMatchObject({ rule: 'disk-full', details: { percent: 91 } });
    expect(RULES['disk-full'](snap([term({ host: { diskUsed: 81, diskTotal: 100, tempC: null }, thresholds: { ...DEFAULT_THRESHOLDS, diskPercent: 80 } })]))).toHaveLength(1);
  });

  it('temperature: above the limit', () => {
    expect(RULES.temperature(snap([term({ host: { diskUsed: 1, diskTotal: 100, tempC: 70 } })]))).toHaveLength(0);
    expect(RULES.temperature(snap([term({ host: { diskUsed: 1, diskTotal: 100, tempC: 71.5 } })]))[0]).toMatchObject({ details: { tempC: 71.5, limit: 70 } });
    expect(RULES.temperature(snap([term({ host: { diskUsed: 1, diskTotal: 100, tempC: null } })]))).toHaveLength(0);
  });

  it('config drift: after driftMinutes; rejected is major', () => {
    const d = { terminalId: 'GZ-T-001-01', desiredVersion: 3, appliedVersion: 2, status: 'pending' };
    expect(RULES['config-drift'](snap([term()], { drift: [{ ...d, since: NOW - 29 * MIN }] }))).toHaveLength(0);
    expect(RULES['config-drift'](snap([term()], { drift: [{ ...d, since: NOW - 30 * MIN }] }))[0]?.severity).toBe('minor');
    expect(RULES['config-drift'](snap([term()], { drift: [{ ...d, status: 'rejected', since: NOW - 31 * MIN }] }))[0]?.severity).toBe('major');
  });

  it('update failed and flapping', () => {
    expect(RULES['update-failed'](snap([term()], { failedUpdates: [{ terminalId: 'GZ-T-001-01', at: NOW, version: '2.1.0', error: 'health check failed' }] }))[0]).toMatchObject({
      rule: 'update-failed',
      details: { version: '2.1.0', error: 'health check failed' },
    });
    expect(RULES['update-failed'](snap([term()], { failedUpdates: [{ terminalId: 'GZ-OTHER-001-01', at: NOW, version: null, error: null }] }))).toHaveLength(0);
    expect(RULES.flapping(snap([term({ flapping: true }), term({ id: 'GZ-T-001-02' })])).map((c) => c.subjectId)).toEqual(['GZ-T-001-01']);
  });

  it('station: alert only when no terminal there can offer an ID card service any more', () => {
    const a = term({ id: 'GZ-T-001-01' });
    const b = term({ id: 'GZ-T-001-02' });
    const multi = term({ id: 'GZ-T-001-03', type: 'police-multi', services: ['household-certificate', 'traffic-fine-payment', 'document-submission', 'progress-inquiry'] });
    const none = { services: ['progress-inquiry'] };
    expect(RULES['station-service-lost'](snap([a, b, multi]))).toHaveLength(0);
    // one of two ID-card machines down: the station still issues ID cards
    expect(RULES['station-service-lost'](snap([term({ ...a, services: [] }), b, multi]))).toHaveLength(0);
    const [c] = RULES['station-service-lost'](snap([term({ ...a, services: [] }), term({ ...b, presence: 'offline' }), multi]));
    expect(c).toMatchObject({ subjectKind: 'node', subjectId: 'GZ-T-001', rule: 'station-service-lost', severity: 'critical' });
    expect(c?.details.services).toEqual(['id-card-application', 'id-card-collection']);
    expect(c?.details.terminals).toEqual(['GZ-T-001-01', 'GZ-T-001-02']);
    // the same details whatever order the members come in (a full pass reads them from the database, in its row order)
    expect(RULES['station-service-lost'](snap([multi, term({ ...b, presence: 'offline' }), term({ ...a, services: [] })]))[0]?.details).toEqual(c?.details);
    // a lost service that is not an ID card one: major
    expect(RULES['station-service-lost'](snap([a, term({ ...multi, services: ['progress-inquiry'] })]))[0]?.severity).toBe('major');
    // terminals in maintenance and terminals that never reported neither offer nor lack anything
    expect(RULES['station-service-lost'](snap([term({ ...a, ...none, inMaintenance: true }), term({ ...b, services: null })]))).toHaveLength(0);
  });
});
