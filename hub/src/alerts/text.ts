/**
 * An alert's sentences as codes with parameters (protocol's TEXTS). Everything they need is in what the alert keeps
 * anyway (rule, subject, the rule's `details`; a history row's action and data), so they are derived when an alert is
 * read: no column to keep in step, and alerts stored before codes existed read in both languages too. The English
 * `title` the rules store is rendered from the same text (englishText), so the two never say different things.
 */
import { englishText, renderText, type RenderOptions, type Text } from '@kiosk-fleet/protocol';

type Details = Record<string, unknown>;

const str = (v: unknown): string | null => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null);

/** The title of an alert of `rule` about `subjectId` that saw `details`; null for a rule this hub has no code for. */
export function alertText(rule: string, subjectId: string, details: unknown): Text | null {
  const d: Details = details !== null && typeof details === 'object' ? (details as Details) : {};
  const terminal = subjectId;
  switch (rule) {
    case 'offline':
      return { code: 'alert.offline', params: { terminal, presence: d.presence ?? null, since: d.since ?? null } };
    case 'peripheral-fault':
      return {
        code: 'alert.peripheral-fault',
        params: { terminal, peripherals: Array.isArray(d.peripherals) ? d.peripherals.map((p: { id?: unknown }) => str(p?.id) ?? '?') : [] },
      };
    case 'disk-full':
      return { code: 'alert.disk-full', params: { terminal, percent: d.percent ?? null } };
    case 'temperature':
      return { code: 'alert.temperature', params: { terminal, tempC: d.tempC ?? null } };
    case 'config-drift':
      return { code: 'alert.config-drift', params: { terminal, applied: d.appliedVersion ?? null, desired: d.desiredVersion ?? null } };
    case 'update-failed':
      return str(d.version) ? { code: 'alert.update-failed-to', params: { terminal, version: d.version } } : { code: 'alert.update-failed', params: { terminal } };
    case 'flapping':
      return { code: 'alert.flapping', params: { terminal } };
    case 'terminal-flooding':
      return { code: 'alert.terminal-flooding', params: { terminal } };
    case 'credential-reuse': {
      const a = Array.isArray(d.addresses) ? d.addresses : [];
      return { code: 'alert.credential-reuse', params: { terminal, address1: a[0] ?? null, address2: a[1] ?? null } };
    }
    case 'station-service-lost':
      return { code: 'alert.station-service-lost', params: { station: subjectId, services: Array.isArray(d.services) ? d.services : [] } };
    default:
      return null;
  }
}

/** The stored English title of a condition: the text rendered with ids and ISO times as they are. */
export function alertTitle(rule: string, subjectId: string, details: unknown): string {
  const text = alertText(rule, subjectId, details);
  return text ? englishText(text) : `${subjectId}: ${rule}`;
}

/** What a history row says that the hub wrote itself (null for a person's action: the note is their words). */
export function historyText(action: string, data: unknown): Text | null {
  const d: Details = data !== null && typeof data === 'object' ? (data as Details) : {};
  switch (action) {
    case 'escalated':
      return typeof d.to === 'string' ? { code: 'alert.history.escalated', params: { district: d.to } } : null;
    case 'resolved':
      if (d.resolution !== 'recovery') return null;
      return { code: d.reason === 'decommissioned' ? 'alert.history.decommissioned' : 'alert.history.recovered', params: {} };
    case 'self-test-result': {
      if (d.status === 'expired') return { code: 'alert.history.self-test-expired', params: {} };
      const s = d.summary as { passed?: unknown; notOk?: { id?: unknown }[] } | null | undefined;
      if (d.status === 'ok' && s && typeof s.passed === 'boolean') {
        return s.passed
          ? { code: 'alert.history.self-test-passed', params: {} }
          : { code: 'alert.history.self-test-failed', params: { peripherals: (s.notOk ?? []).map((p) => str(p?.id) ?? '?') } };
      }
      return d.status === 'error' ? { code: 'alert.history.self-test-error', params: {} } : null;
    }
    default:
      return null;
  }
}

/** A text with both renderings, as webhooks carry it (a duty system shows it without a catalogue of its own). */
export function bothLanguages(text: Text | null, o: RenderOptions): (Text & { en: string; zh: string }) | null {
  if (!text) return null;
  return { ...text, en: renderText(text, 'en', o) ?? text.code, zh: renderText(text, 'zh', o) ?? text.code };
}
