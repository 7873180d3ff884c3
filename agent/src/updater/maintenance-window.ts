/**
 * Is a moment inside a weekly schedule (the config's `maintenanceWindow` or `openingHours`)? Spans are local time
 * in the bureau's zone; a span whose `to` is before its `from` crosses midnight into the next day. An absent day
 * or an empty list means no window that day; an absent schedule means no window at all.
 */
import type { TerminalConfig } from '@kiosk-fleet/protocol';
import { WEEKDAYS } from '@kiosk-fleet/protocol';

type Weekly = NonNullable<TerminalConfig['maintenanceWindow']>;

function localParts(date: Date, timeZone: string): { day: number; minutes: number } {
  const f = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const parts = Object.fromEntries(f.formatToParts(date).map((p) => [p.type, p.value]));
  const day = WEEKDAYS.indexOf(String(parts.weekday).toLowerCase().slice(0, 3) as (typeof WEEKDAYS)[number]);
  return { day, minutes: Number(parts.hour) * 60 + Number(parts.minute) };
}

const toMin = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

export function isInWindow(schedule: Weekly | undefined, date: Date, timeZone: string): boolean {
  if (!schedule) return false;
  const { day, minutes } = localParts(date, timeZone);
  const today = schedule[WEEKDAYS[day]!] ?? [];
  const yesterday = schedule[WEEKDAYS[(day + 6) % 7]!] ?? [];
  for (const s of today) {
    const from = toMin(s.from);
    const to = toMin(s.to);
    if (to > from ? minutes >= from && minutes < to : minutes >= from) return true;
  }
  // The after-midnight part of yesterday's overnight spans.
  return yesterday.some((s) => toMin(s.to) < toMin(s.from) && minutes < toMin(s.to));
}
