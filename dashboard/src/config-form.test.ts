import { describe, expect, test } from 'vitest';
import { configDiff } from './config-diff.ts';
import { crossesMidnight, inheritedAt, rangeAt, setAt, validateLayer } from './config-form.ts';
import { setLanguage } from './i18n/index.ts';

describe('validateLayer (the protocol schema, in the browser, in the user’s words)', () => {
  test('a natural first try names the bad key and field in Chinese, not zod’s English', () => {
    setLanguage('zh-CN');
    expect(validateLayer({ 营业时间: '9-17' })).toEqual([{ path: '营业时间', message: '没有名为“营业时间”的设置项' }]);
    expect(validateLayer({ openingHours: '9-17' })).toEqual([{ path: 'openingHours', message: '应为一组设置 { … }' }]);
    expect(validateLayer({ telemetryInterval: 1, openingHours: { mon: [{ from: '8:00', to: '18:00' }] } })).toEqual([
      { path: 'telemetryInterval', message: '不能小于 5' },
      { path: 'openingHours.mon.0.from', message: '时间格式为 时:分，00:00 至 23:59' },
    ]);
    setLanguage('en');
    expect(validateLayer({ alerts: { thresholds: { diskPercent: 101 } } })).toEqual([{ path: 'alerts.thresholds.diskPercent', message: 'must be at most 100' }]);
  });

  test('a layer is partial at every depth and null removes an inherited value, as at the hub', () => {
    expect(validateLayer({ peripherals: { idCardReader: { timeoutMs: 500 } }, announcement: null, openingHours: { sat: [] } })).toEqual([]);
  });
});

test('ranges come from the schema', () => {
  expect(rangeAt(['telemetryInterval'])).toEqual({ min: 5, max: 3600, int: true });
  expect(rangeAt(['alerts', 'thresholds', 'diskPercent'])).toMatchObject({ min: 1, max: 100 });
});

test('setAt removes a key and the objects it leaves empty (reset to inherited)', () => {
  const d = setAt({}, ['openingHours', 'mon'], [{ from: '09:00', to: '17:00' }]);
  expect(d).toEqual({ openingHours: { mon: [{ from: '09:00', to: '17:00' }] } });
  expect(setAt(d, ['openingHours', 'mon'], undefined)).toEqual({});
});

test('what a field inherits and from which layer', () => {
  const inh = { config: { openingHours: { mon: [{ from: '08:00', to: '18:00' }] } }, sources: { 'openingHours.mon': { level: 'district', id: 'GZ-YX', version: 2 } } };
  expect(inheritedAt(inh, ['openingHours', 'mon'])).toEqual({ value: [{ from: '08:00', to: '18:00' }], source: { level: 'district', id: 'GZ-YX', version: 2 } });
  expect(inheritedAt(inh, ['openingHours', 'tue']).value).toBeUndefined();
  expect(crossesMidnight({ from: '22:00', to: '06:00' })).toBe(true);
});

test('the diff lists weekdays in week order, not alphabetically', () => {
  const spans = [{ from: '09:00', to: '17:00' }];
  const keys = configDiff({}, { openingHours: { sun: spans, fri: spans, mon: spans, sat: spans } }).map((d) => d.key);
  expect(keys).toEqual(['openingHours.mon', 'openingHours.fri', 'openingHours.sat', 'openingHours.sun']);
});
