/**
 * Times are stored and sent in UTC; people read them in the bureau's time zone (the hub's KF_TIMEZONE, which it
 * tells in /api/v1/health; main.tsx sets it before the first render), whatever the browser's zone is — a technician
 * on a laptop set to UTC must see the same clock as the duty room.
 */
import { getLanguage } from './i18n/index.ts';

/** Until the hub has said otherwise: the hub's own default. */
let bureauZone = 'Asia/Shanghai';

export function bureauTimeZone(): string {
  return bureauZone;
}

/** Ignores a zone this browser does not know (the formatters would throw on every call). */
export function setBureauTimeZone(tz: string): void {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
  } catch {
    return;
  }
  bureauZone = tz;
  cache.clear();
}

const cache = new Map<string, Intl.DateTimeFormat>();
function fmt(kind: 'datetime' | 'time' | 'short'): Intl.DateTimeFormat {
  const lang = getLanguage();
  const key = `${lang}:${kind}`;
  let f = cache.get(key);
  if (!f) {
    const base: Intl.DateTimeFormatOptions = { timeZone: bureauZone, hourCycle: 'h23' };
    const opts: Intl.DateTimeFormatOptions =
      kind === 'datetime'
        ? { ...base, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }
        : kind === 'short'
          ? { ...base, month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }
          : { ...base, hour: '2-digit', minute: '2-digit', second: '2-digit' };
    f = new Intl.DateTimeFormat(lang, opts);
    cache.set(key, f);
  }
  return f;
}

function toDate(v: string | number | Date): Date {
  return v instanceof Date ? v : new Date(v);
}

export function formatDateTime(v: string | number | Date | null | undefined): string {
  if (v === null || v === undefined) return '—';
  const d = toDate(v);
  return Number.isNaN(d.getTime()) ? '—' : fmt('datetime').format(d);
}

export function formatShort(v: string | number | Date | null | undefined): string {
  if (v === null || v === undefined) return '—';
  const d = toDate(v);
  return Number.isNaN(d.getTime()) ? '—' : fmt('short').format(d);
}

export function formatTime(v: string | number | Date): string {
  return fmt('time').format(toDate(v));
}

/** "3 h 12 min" style, language-neutral units. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 10 || i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatPercent(v: number | null | undefined, digits = 0): string {
  return v === null || v === undefined || Number.isNaN(v) ? '—' : `${v.toFixed(digits)} %`;
}
