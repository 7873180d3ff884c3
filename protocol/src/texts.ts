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

/** The agent's update error codes (protocol: update status `error.code`) and the hub's own. */
const UPDATE_ERRORS = {
  'health-check-failed': { en: 'the app was not healthy after the update', zh: '更新后应用未能正常运行' },
  'boot-loop': { en: 'restarted again and again after the update', zh: '更新后反复重启' },
  'install-failed': { en: 'installation failed', zh: '安装失败' },
  'manifest-mismatch': { en: 'the package does not match its manifest', zh: '安装包与清单不符' },
  'size-mismatch': { en: 'the download has the wrong size', zh: '下载文件大小不符' },
  'too-large': { en: 'the package is too large', zh: '安装包过大' },
  'not-found': { en: 'the release was not found', zh: '未找到该发布包' },
  unauthorized: { en: 'the download was refused', zh: '下载被拒绝' },
  'wrong-terminal-type': { en: 'not for this terminal type', zh: '不适用于此终端型号' },
  'agent-too-old': { en: 'the agent is too old for this release', zh: '终端代理版本过旧' },
  'outside-window': { en: 'outside the maintenance window', zh: '不在维护时段内' },
  'session-open': { en: 'a citizen was using the terminal', zh: '终端正在为市民服务' },
  'previously-failed': { en: 'this version failed here before', zh: '此版本曾在该终端失败' },
  'rolled-back': { en: 'rolled back', zh: '已回滚' },
  'step-error': { en: 'an update step failed', zh: '更新步骤出错' },
  failed: { en: 'update failed', zh: '更新失败' },
  offline: { en: 'offline after the update', zh: '更新后离线' },
  'peripheral-fault': { en: 'a peripheral failed after the update', zh: '更新后外设故障' },
  'app-heartbeat': { en: 'the app stopped answering after the update', zh: '更新后应用无响应' },
  'transaction-failures': { en: 'more transactions failed after the update', zh: '更新后交易失败增多' },
} as const;
/** Why a committed terminal failed its soak (rollouts engine `unhealthyReason`). */
const UNHEALTHY = {
  offline: { en: 'offline', zh: '离线' },
  'peripheral-fault': { en: 'peripheral-fault', zh: '外设故障' },
  'app-heartbeat': { en: 'app-heartbeat', zh: '应用无心跳' },
  'transaction-failures': { en: 'transaction-failures', zh: '交易失败率升高' },
} as const;
/** What a 404 names (HubError notFound's `what`). */
/** The rule a refused password broke (hub/src/auth/passwords.ts PasswordRule). */
const PASSWORD_RULES = {
  'too-short': { en: 'too short', zh: '太短' },
  'too-long': { en: 'too long', zh: '太长' },
  'control-characters': { en: 'it contains control characters', zh: '含有控制字符' },
  'only-spaces': { en: 'it is only spaces', zh: '只有空格' },
  'contains-username': { en: 'it contains the username', zh: '含有用户名' },
  'easy-to-guess': { en: 'too easy to guess', zh: '太容易被猜出' },
  unchanged: { en: 'it is the current password', zh: '与当前密码相同' },
} as const;

const THINGS = {
  node: { en: 'node', zh: '节点' },
  terminal: { en: 'terminal', zh: '终端' },
  user: { en: 'user', zh: '用户' },
  token: { en: 'token', zh: '令牌' },
  alert: { en: 'alert', zh: '告警' },
  maintenance: { en: 'maintenance', zh: '维护时段' },
  silence: { en: 'silence', zh: '静默规则' },
  webhook: { en: 'webhook', zh: '网络回调' },
  rollout: { en: 'rollout', zh: '发布' },
  release: { en: 'release', zh: '发布包' },
  config: { en: 'config version', zh: '配置版本' },
} as const;
/** The release upload's refusal codes (hub releases/artifact-store.ts RefusalCode). */
const RELEASE_REFUSALS = {
  'bad-request': { en: 'the upload is not a release package', zh: '上传的不是发布包' },
  'bad-signature': { en: 'the signature is not valid or not from a trusted key', zh: '签名无效或不是受信任的密钥' },
  'bad-manifest': { en: 'the manifest is not valid', zh: '清单无效' },
  'too-large': { en: 'the package is too large', zh: '发布包过大' },
  'size-mismatch': { en: 'the size does not match the manifest', zh: '大小与清单不符' },
  'sha256-mismatch': { en: 'the checksum does not match the manifest', zh: '校验和与清单不符' },
  'release-exists': { en: 'this release already exists', zh: '该发布包已存在' },
} as const;
const STATUSES = {
  '0': { en: 'the hub could not be reached', zh: '无法连接到管理中心' },
  '400': { en: 'the request was not accepted', zh: '请求未被接受' },
  '401': { en: 'please sign in again', zh: '请重新登录' },
  '403': { en: 'you may not do this', zh: '您无权执行此操作' },
  '404': { en: 'not found (or outside your area)', zh: '未找到（或不在您的管辖范围内）' },
  '409': { en: 'this conflicts with a change made meanwhile: reload and try again', zh: '与他人刚做的修改冲突：请刷新后重试' },
  '413': { en: 'too large', zh: '内容过大' },
  '415': { en: 'this kind of content is not accepted', zh: '不接受此类内容' },
  '429': { en: 'too many requests: wait a moment and try again', zh: '请求过于频繁，请稍后重试' },
  '500': { en: 'the hub had an internal error', zh: '管理中心内部错误' },
  '503': { en: 'the hub is busy or starting: try again shortly', zh: '管理中心繁忙或正在启动，请稍后重试' },
  other: { en: 'the request failed', zh: '请求失败' },
} as const;

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
  /** A terminal's own failure in a rollout: the agent's update error code, or the soak's health verdict. */
  'rollout.terminal-error': { params: { error: UPDATE_ERRORS }, en: '{error}', zh: '{error}' },
  'rollout.unhealthy': { params: { reason: UNHEALTHY }, en: 'unhealthy after the update: {reason}', zh: '更新后不健康：{reason}' },

  // ------------------------------------------------------------------ API errors (error.text beside error.message)
  'error.not-found': {
    params: { what: THINGS, id: 'id' },
    en: '{what} {id} not found (or outside your area)',
    zh: '未找到{what} {id}（或不在您的管辖范围内）',
  },
  'error.forbidden': { params: {}, en: 'your role may not do this', zh: '您的角色无权执行此操作' },
  'error.config-stale': {
    params: { version: 'number' },
    en: 'this config changed since you read it (now version {version}): reload it and make your change again',
    zh: '此配置在您读取后已被修改（当前为第 {version} 版）：请重新加载后再修改',
  },
  'error.invalid-config': { params: { fields: 'id' }, en: 'the config is not valid: check {fields}', zh: '配置无效：请检查 {fields}' },
  'error.invalid-fields': { params: { fields: 'id' }, en: 'the request is not valid: check {fields}', zh: '请求无效：请检查 {fields}' },
  'error.rollout-conflict': {
    params: { rollout: 'id', terminals: 'number' },
    en: '{terminals} of these terminals are already in rollout {rollout}: finish or abort it first',
    zh: '其中 {terminals} 台终端已在发布 {rollout} 中：请先完成或中止该发布',
  },
  'error.invalid-import': { params: { row: 'number' }, en: 'import rejected: row {row} is not valid', zh: '导入被拒绝：第 {row} 行无效' },
  'error.weak-password': {
    params: { rule: PASSWORD_RULES, min: 'number', max: 'number' },
    en: 'the password does not meet the rules ({min} to {max} characters, no control characters, not the username, not easy to guess): {rule}',
    zh: '密码不符合要求（{min} 至 {max} 个字符，不含控制字符，不含用户名，且不易被猜出）：{rule}',
  },
  'error.wrong-password': { params: {}, en: 'the current password is wrong', zh: '当前密码不正确' },
  'error.invalid-credentials': { params: {}, en: 'wrong username or password (or the account is disabled)', zh: '用户名或密码错误（或账号已停用）' },
  'error.too-many-attempts': { params: { seconds: 'number' }, en: 'too many failed attempts; try again in {seconds} s', zh: '失败次数过多，请在 {seconds} 秒后重试' },
  'error.username-taken': { params: { username: 'id' }, en: 'the username {username} is taken', zh: '用户名 {username} 已被占用' },
  'error.release-refused': { params: { reason: RELEASE_REFUSALS }, en: 'release refused: {reason}', zh: '发布包被拒绝：{reason}' },
  'error.terminal-decommissioned': { params: { terminal: 'id' }, en: 'terminal {terminal} is decommissioned', zh: '终端 {terminal} 已停用' },
  /** For an error without its own sentence: what kind of failure it was, by HTTP status (0: no answer at all). */
  'error.status': { params: { status: STATUSES }, en: '{status}', zh: '{status}' },
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

/** The generic sentence for an API error that carries no text of its own (an older hub, a proxy, no answer). */
export function statusText(status: number): Text {
  return { code: 'error.status', params: { status: Object.hasOwn(STATUSES, String(status)) ? String(status) : 'other' } };
}
