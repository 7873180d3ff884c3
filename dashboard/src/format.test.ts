import { describe, expect, it } from 'vitest';
import { setLanguage } from './i18n/index.ts';
import { formatDateTime, formatDuration } from './format.ts';

describe('times in the bureau’s zone', () => {
  it('shows a UTC instant on Asia/Shanghai’s clock (UTC+8), in either language', () => {
    setLanguage('en');
    expect(formatDateTime('2026-11-26T16:30:05Z')).toContain('00:30:05');
    expect(formatDateTime('2026-11-26T16:30:05Z')).toContain('27');
    setLanguage('zh-CN');
    expect(formatDateTime('2026-11-26T16:30:05Z')).toBe('2026/11/27 00:30:05');
  });

  it('shows a dash for a missing or broken time instead of "Invalid Date"', () => {
    expect(formatDateTime(null)).toBe('—');
    expect(formatDateTime('yesterday-ish')).toBe('—');
  });

  it('shortens durations to what a person reads', () => {
    expect(formatDuration(42_000)).toBe('42 s');
    expect(formatDuration(3 * 3600_000 + 12 * 60_000)).toBe('3 h 12 min');
    expect(formatDuration(3 * 86400_000 + 5 * 3600_000)).toBe('3 d 5 h');
  });
});
