/**
 * Every sentence the hub writes for a person (alert titles, alert history, rollout pause reasons) as a code with
 * parameters, and its template in Chinese and English: the one catalogue the hub (English fallback fields, webhook
 * `text.en` / `text.zh`) and the dashboard (the user's language) render from. A sentence is sent as
 * `{ code, params }` beside the English field it replaces for readers, which stays (API contract, older clients).
 *
 * Parameters are data, never words: ids, numbers, ISO times, protocol ids (services, peripherals). Each template's
 * `{name}` is declared in `params` with its kind, so the renderer puts names in the reader's language (a node id
 * becomes the station's name, a service id its catalog name) and the parity tests can check every code.
 */
import { PERIPHERALS, SERVICES } from './catalog.ts';

type Names = { zh: string; en: string };

/**
 * What a parameter is, and so how it is shown: `id` as it is (a terminal id, a version, an address, an operator's
 * note); `node` a node id shown as the node's name; `services` / `peripherals` lists of catalog ids shown by name;
 * `number` a figure; `time` an ISO 8601 instant; an object: a closed set of values with their names (an unknown value
 * is shown as it is).
 */
export type TextParamKind = 'id' | 'node' | 'services' | 'peripherals' | 'number' | 'time' | Readonly<Record<string, Names>>;

export interface TextSpec {
  params: Readonly<Record<string, TextParamKind>>;
  en: string;
  zh: string;
}

const PRESENCE = { offline: { en: 'offline', zh: '离线' }, stale: { en: 'stale', zh: '失联' } } as const;
/** Wave names the dashboard gives; a rollout made through the API may name its waves anything (shown as given). */
const WAVE_NAMES = { pilot: { en: 'pilot', zh: '试点' }, rest: { en: 'rest', zh: '其余' }, share: { en: 'share', zh: '按比例' } } as const;

export const TEXTS = {
  // ------------------------------------------------------------------ alert titles (one per rule)
  'alert.offline': {
    params: { terminal: 'id', presence: PRESENCE, since: 'time' },
    en: '{terminal} {presence} since {since}',
    zh: '{terminal} 自 {since} 起{presence}',
  },
  'alert.peripheral-fault': {
    params: { terminal: 'id', peripherals: 'peripherals' },
    en: '{terminal}: {peripherals} in fault',
    zh: '{terminal}：{peripherals}故障',
  },
  'alert.disk-full': {
    params: { terminal: 'id', percent: 'number' },
    en: '{terminal}: disk {percent} % used',
    zh: '{terminal}：磁盘已用 {percent}%',
  },
  'alert.temperature': {
    params: { terminal: 'id', tempC: 'number' },
    en: '{terminal}: {tempC} °C',
    zh: '{terminal}：温度 {tempC} °C',
  },
  'alert.config-drift': {
    params: { terminal: 'id', applied: 'id', desired: 'id' },
    en: '{terminal}: config v{applied} applied, v{desired} desired',
    zh: '{terminal}：已应用配置 v{applied}，应为 v{desired}',
  },
  'alert.update-failed': {
    params: { terminal: 'id' },
    en: '{terminal}: update failed',
    zh: '{terminal}：更新失败',
  },
  'alert.update-failed-to': {
    params: { terminal: 'id', version: 'id' },
    en: '{terminal}: update to {version} failed',
    zh: '{terminal}：更新到 {version} 失败',
  },
  'alert.flapping': {
    params: { terminal: 'id' },
    en: '{terminal}: connection flapping',
    zh: '{terminal}：连接频繁断开又恢复',
  },
  'alert.terminal-flooding': {
    params: { terminal: 'id' },
    en: '{terminal}: terminal flooding (messages over its quota dropped)',
    zh: '{terminal}：消息量超出配额（超出部分已丢弃）',
  },
  'alert.credential-reuse': {
    params: { terminal: 'id', address1: 'id', address2: 'id' },
    en: '{terminal}: credentials in use from two addresses ({address1}, {address2})',
    zh: '{terminal}：凭据同时在两个地址使用（{address1}、{address2}）',
  },
  'alert.station-service-lost': {
    params: { station: 'node', services: 'services' },
    en: '{station} cannot offer: {services}',
    zh: '{station}无法提供：{services}',
  },

  // ------------------------------------------------------------------ alert history (what the hub itself did)
  'alert.history.self-test-passed': { params: {}, en: 'self-test passed', zh: '自检通过' },
  'alert.history.self-test-failed': {
    params: { peripherals: 'peripherals' },
    en: 'self-test failed: {peripherals}',
    zh: '自检未通过：{peripherals}',
  },
  'alert.history.self-test-expired': { params: {}, en: 'the terminal did not answer the self-test in time', zh: '终端未及时响应自检' },
  'alert.history.self-test-error': { params: {}, en: 'the self-test could not run', zh: '自检未能执行' },
  'alert.history.escalated': {
    params: { district: 'node' },
    en: 'not acknowledged in time: escalated to the admins of {district}',
    zh: '未及时确认，已升级至{district}管理员',
  },
  'alert.history.recovered': { params: {}, en: 'the condition cleared by itself', zh: '故障已自行恢复' },
  'alert.history.decommissioned': { params: {}, en: 'the terminal was decommissioned', zh: '终端已停用' },

  // ------------------------------------------------------------------ rollout pause reasons
  'rollout.wave-gate-failed': {
    params: { wave: 'number', name: WAVE_NAMES, failed: 'number', size: 'number', allowed: 'number' },
    en: 'wave {wave} ({name}): {failed} of {size} terminals failed or became unhealthy (at most {allowed} allowed)',
    zh: '第 {wave} 批（{name}）：{size} 台终端中 {failed} 台失败或不健康（最多允许 {allowed} 台）',
  },
  'rollout.wave-timeout': {
    params: { wave: 'number', minutes: 'number', soaked: 'number', needed: 'number' },
    en: 'wave {wave} did not pass within {minutes} min ({soaked} of {needed} needed)',
    zh: '第 {wave} 批未在 {minutes} 分钟内通过（需 {needed} 台，仅 {soaked} 台达标）',
  },
  'rollout.manual': { params: {}, en: 'paused by an operator', zh: '由操作员暂停' },
  /** An operator's own words: shown as written, in whatever language they were written. */
  'rollout.manual-note': { params: { note: 'id' }, en: '{note}', zh: '{note}' },
} as const satisfies Record<string, TextSpec>;

export type TextCode = keyof typeof TEXTS;
export const TEXT_CODES = Object.keys(TEXTS) as TextCode[];

/** A hub-written sentence as data: what the API sends beside the English text. */
export interface Text {
  code: string;
  params: Record<string, unknown>;
}

export type TextLanguage = 'zh' | 'en';

export interface RenderOptions {
  /** A node's names (station, district); unknown nodes show their id. */
  node?: (id: string) => Names | undefined;
  /** Default: the ISO string as it is (what the hub's English fallback fields carry). */
  time?: (iso: string) => string;
  /** Default: String(n). */
  number?: (n: number) => string;
}

export function isTextCode(code: string): code is TextCode {
  return Object.hasOwn(TEXTS, code);
}

const LIST_SEPARATOR: Record<TextLanguage, string> = { zh: '、', en: ', ' };

function paramText(kind: TextParamKind, v: unknown, lang: TextLanguage, o: RenderOptions): string {
  if (v === null || v === undefined) return '—';
  if (typeof kind === 'object') return (kind as Record<string, Names>)[String(v)]?.[lang] ?? String(v);
  switch (kind) {
    case 'node':
      return o.node?.(String(v))?.[lang] ?? String(v);
    case 'services':
    case 'peripherals': {
      const names = (kind === 'services' ? Object.fromEntries(Object.entries(SERVICES).map(([id, s]) => [id, s.name])) : PERIPHERALS) as Record<string, Names>;
      return (Array.isArray(v) ? v : [v]).map((id) => names[String(id)]?.[lang] ?? String(id)).join(LIST_SEPARATOR[lang]);
    }
    case 'number':
      return typeof v === 'number' ? (o.number ?? String)(v) : String(v);
    case 'time':
      return typeof v === 'string' && o.time ? o.time(v) : String(v);
    case 'id':
      return String(v);
  }
}

/**
 * The sentence in `lang`, or null for a code this build does not know (a newer hub): the caller shows the English
 * text the API sent beside it.
 */
export function renderText(text: Text | null | undefined, lang: TextLanguage, o: RenderOptions = {}): string | null {
  if (!text || !isTextCode(text.code)) return null;
  const spec: TextSpec = TEXTS[text.code];
  return spec[lang].replace(/\{(\w+)\}/g, (m, name: string) => {
    const kind = spec.params[name];
    return kind === undefined ? m : paramText(kind, text.params[name], lang, o);
  });
}

/** The English fallback field's text (ids and ISO times as they are): what `title` / `message` carry. */
export function englishText(text: Text): string {
  return renderText(text, 'en') ?? text.code;
}
