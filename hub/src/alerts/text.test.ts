/**
 * Every sentence the hub writes reaches a reader in Chinese as well as in English: each rule's title, each history
 * text and each rollout pause reason is a code of the protocol's catalogue, rendered here in both languages from
 * what the hub really produced (the rules, the rollout engine), with its parameters filled.
 */
import { describe, expect, it } from 'vitest';
import { renderText, TEXT_CODES, type Text } from '@kiosk-fleet/protocol';
import { RULES, RULE_IDS, DEFAULT_THRESHOLDS, type Condition, type Snapshot, type TerminalView } from './rules/index.ts';
import { stationServiceRule } from './rules/station-service.ts';
import { alertText, historyText } from './text.ts';
import { summarize } from './service.ts';
import { createRollout, pause, tick, type HealthSample, type RolloutSpec } from '../rollouts/engine.ts';

const NOW = Date.parse('2026-05-01T10:00:00Z');
const MIN = 60_000;
const NAMES: Record<string, { zh: string; en: string }> = {
  'GZ-T-001': { zh: '洪桥派出所', en: 'Hongqiao Police Station' },
  'GZ-T': { zh: '越秀区分局', en: 'Yuexiu District Branch' },
};
const opts = { node: (id: string) => NAMES[id], time: (iso: string) => `<${iso}>` };

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

const fault = { status: 'fault' as const, since: NOW - 10 * MIN, code: 'E_NO_RESPONSE' };
const snapshot: Snapshot = {
  now: NOW,
  terminals: [
    term({ id: 'T-OFF', presence: 'offline', presenceSince: NOW - 20 * MIN }),
    term({ id: 'T-PER', peripherals: { idCardReader: fault, camera: fault } }),
    term({ id: 'T-DISK', host: { diskUsed: 95, diskTotal: 100, tempC: 80 } }),
    term({ id: 'T-FLAP', flapping: true }),
    term({ id: 'T-FLOOD', flooding: { since: NOW - MIN, dropped: { telemetry: 9 } } }),
    term({ id: 'T-CRED', credentialConflict: { since: NOW - MIN, addresses: ['10.0.0.5', '203.0.113.9'], takeovers: 2, refused: 1, heldOff: null } }),
    term({ id: 'T-DRIFT' }),
    term({ id: 'T-UPD' }),
    term({ id: 'T-UPD2' }),
  ],
  drift: [{ terminalId: 'T-DRIFT', since: NOW - 60 * MIN, desiredVersion: 4, appliedVersion: 3, status: 'rejected' }],
  failedUpdates: [
    { terminalId: 'T-UPD', at: NOW, version: '3.4.0', error: 'boot loop' },
    { terminalId: 'T-UPD2', at: NOW, version: null, error: null },
  ],
};

/** What each language's rendering may contain: Chinese renders carry no English words but ids and the names given. */
function expectRendered(text: Text): { zh: string; en: string } {
  const zh = renderText(text, 'zh', opts);
  const en = renderText(text, 'en', opts);
  expect(zh, text.code).not.toBeNull();
  expect(en, text.code).not.toBeNull();
  for (const s of [zh!, en!]) expect(s, text.code).not.toMatch(/\{\w+\}|undefined|\[object/);
  // ids (GZ-T-001-01, 3.4.0, 10.0.0.5), ISO times in <>, units: nothing else in Latin letters in the Chinese text
  const latin = zh!.replace(/<[^>]*>/g, '').replace(/[A-Z0-9][A-Z0-9.\-_]*/g, '').replace(/°C|v(?=\d)/g, '');
  expect(latin, `${text.code}: ${zh}`).not.toMatch(/[a-z]{2,}/i);
  expect(en, text.code).not.toMatch(/[\u4e00-\u9fff]/);
  return { zh: zh!, en: en! };
}

describe('hub sentences as codes', () => {
  const produced = new Set<string>();
  const seen = (text: Text | null | undefined) => {
    expect(text).toBeTruthy();
    produced.add(text!.code);
    return expectRendered(text!);
  };

  it('every rule gives its alert a title code whose English rendering is the stored title', () => {
    const conditions: Condition[] = [...RULE_IDS.filter((r) => r !== 'station-service-lost').flatMap((r) => RULES[r](snapshot))];
    conditions.push(...stationServiceRule({ now: NOW, terminals: [{ ...term(), presence: 'offline' }] }));
    expect(new Set(conditions.map((c) => c.rule))).toEqual(new Set(RULE_IDS));
    for (const c of conditions) {
      const text = alertText(c.rule, c.subjectId, c.details);
      seen(text);
      // the stored English title and the code say the same (ids and ISO times as they are)
      expect(renderText(text, 'en'), c.rule).toBe(c.title);
    }
    const byRule = (rule: string) => conditions.find((c) => c.rule === rule)!;
    const station = byRule('station-service-lost');
    expect(renderText(alertText(station.rule, station.subjectId, station.details), 'zh', opts)).toBe('洪桥派出所无法提供：居民身份证申领、身份证领取、办证进度查询');
    expect(renderText(alertText(station.rule, station.subjectId, station.details), 'en', opts)).toBe(
      'Hongqiao Police Station cannot offer: ID card application, ID card collection, Application progress inquiry',
    );
    const per = byRule('peripheral-fault');
    expect(renderText(alertText(per.rule, per.subjectId, per.details), 'zh', opts)).toBe('T-PER：身份证读卡器、摄像头故障');
    const off = byRule('offline');
    expect(renderText(alertText(off.rule, off.subjectId, off.details), 'zh', opts)).toBe(`T-OFF 自 <${new Date(NOW - 20 * MIN).toISOString()}> 起离线`);
  });

  it('an alert stored before codes existed (details without the figures) still renders, with dashes', () => {
    expect(renderText(alertText('station-service-lost', 'GZ-T-001', {}), 'zh', opts)).toBe('洪桥派出所无法提供：');
    expect(renderText(alertText('disk-full', 'T1', {}), 'en')).toBe('T1: disk — % used');
    expect(alertText('a-rule-of-a-newer-hub', 'T1', {})).toBeNull();
  });

  it('history rows the hub writes itself (escalation, recovery, self-test results) have texts; a person’s have none', () => {
    seen(historyText('escalated', { to: 'GZ-T', admins: [], dueAt: 'x' }));
    expect(renderText(historyText('escalated', { to: 'GZ-T' }), 'zh', opts)).toBe('未及时确认，已升级至越秀区分局管理员');
    seen(historyText('resolved', { resolution: 'recovery' }));
    seen(historyText('resolved', { resolution: 'recovery', reason: 'decommissioned' }));
    expect(historyText('resolved', { resolution: 'manual' })).toBeNull();
    expect(historyText('note', null)).toBeNull();
    const passed = summarize(JSON.stringify({ passed: true, failing: [], peripherals: { idCardReader: { status: 'ok' } } }));
    seen(historyText('self-test-result', { commandId: 'c-1', status: 'ok', summary: passed }));
    const failed = summarize(JSON.stringify({ passed: false, failing: ['idCardReader'], peripherals: { idCardReader: { status: 'fault', code: 'E_NO_RESPONSE' } } }));
    expect(seen(historyText('self-test-result', { commandId: 'c-2', status: 'ok', summary: failed })).zh).toBe('自检未通过：身份证读卡器');
    seen(historyText('self-test-result', { commandId: 'c-3', status: 'expired', summary: null }));
    seen(historyText('self-test-result', { commandId: 'c-4', status: 'error', summary: 'no such command' }));
  });

  it('a rollout pauses with a reason whose message is the English rendering of its code', () => {
    const spec: RolloutSpec = {
      id: 'r-1',
      release: { id: 'app-3.4.0', version: '3.4.0', terminalTypes: ['id-card'] },
      scope: { nodeIds: ['GZ'] },
      waves: [{ kind: 'pilot', name: 'pilot', stations: ['S1'] }, { kind: 'rest', name: 'rest' }],
      gate: { successRatio: 1, soakMs: 10 * MIN, failureRateTolerance: 0.05 },
      maxInFlight: 10,
      inFlightTimeoutMs: 30 * MIN,
      waveTimeoutMs: 60 * MIN,
      urgent: false,
    };
    const healthy = (): HealthSample => ({ online: true, appAlive: true, newPeripheralFault: false, failureRate: null, baselineFailureRate: null });
    const fleet = [['A', 'S1'], ['B', 'S1'], ['C', 'S2']].map(([id, st]) => ({ id: id!, type: 'id-card', ancestors: [st!, 'GZ'] }));
    const start = createRollout(spec, fleet, NOW);
    // a wave that never passes within its timeout
    const late = tick(spec, start.state, NOW + 61 * MIN, healthy).state;
    expect(late.pauseReason?.code).toBe('wave-timeout');
    expect(late.pauseReason?.message).toBe(renderText(late.pauseReason!.text, 'en'));
    expect(seen(late.pauseReason!.text).zh).toBe('第 1 批未在 60 分钟内通过（需 2 台，仅 0 台达标）');
    // a terminal failing its update: the gate allows none
    const failed = { ...start.state, terminals: { ...start.state.terminals, A: { ...start.state.terminals.A!, phase: 'failed' as const, error: { code: 'boot-loop', message: 'x' } } } };
    const gate = tick(spec, failed, NOW + MIN, healthy).state;
    expect(gate.pauseReason?.code).toBe('wave-gate-failed');
    expect(gate.pauseReason?.message).toBe('wave 1 (pilot): 1 of 2 terminals failed or became unhealthy (at most 0 allowed)');
    expect(seen(gate.pauseReason!.text).zh).toBe('第 1 批（试点）：2 台终端中 1 台失败或不健康（最多允许 0 台）');
    const manual = pause(start.state, NOW).state.pauseReason!;
    expect(manual.message).toBe('paused by an operator');
    seen(manual.text);
    const noted = pause(start.state, NOW, '等投诉核实').state.pauseReason!;
    // an operator's own words are shown as written, in either language
    expect(noted.message).toBe('等投诉核实');
    expect(noted.text).toEqual({ code: 'rollout.manual-note', params: { note: '等投诉核实' } });
    expect(renderText(noted.text, 'zh')).toBe('等投诉核实');
    produced.add(noted.text!.code);
    // a committed terminal that turns unhealthy: the hub's verdict is a text, its message the English rendering
    const committed = { ...start.state, terminals: { ...start.state.terminals, A: { ...start.state.terminals.A!, phase: 'committed' as const, committedAt: NOW } } };
    const sick = tick(spec, committed, NOW + MIN, () => ({ ...healthy(), appAlive: false })).state.terminals.A!;
    expect(sick.error?.message).toBe('unhealthy after the update: app-heartbeat');
    expect(seen(sick.error!.text!).zh).toBe('更新后不健康：应用无心跳');
    // an agent's own failure is kept as its code; the dashboard names it through the catalogue
    expect(seen({ code: 'rollout.terminal-error', params: { error: gate.terminals.A!.error!.code } }).zh).toBe('更新后反复重启');
  });

  it('covers every code of the catalogue', () => {
    // API errors (`error.*`) come from routes: hub/src/api/error-text.test.ts produces each of them
    expect(TEXT_CODES.filter((c) => !c.startsWith('error.') && !produced.has(c))).toEqual([]);
  });
});
