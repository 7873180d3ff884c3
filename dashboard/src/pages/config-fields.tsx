/**
 * The config form's fields, each bound to one path of the layer: the value set here, what it inherits and from
 * which layer (as its placeholder or hint), "reset to inherited", and the browser's validation error next to it.
 */
import type { ComponentChildren } from 'preact';
import { PERIPHERAL_PROBES, PERIPHERALS, SERVICES, SERVICE_IDS, type PeripheralId } from '@kiosk-fleet/protocol';
import type { Inherited } from '../api.ts';
import { choicesAt, crossesMidnight, getAt, inheritedAt, rangeAt, WEEK, type Obj, type Path, type Span } from '../config-form.ts';
import { pickName, t, type MessageKey } from '../i18n/index.ts';

export interface FormCtx {
  draft: Obj;
  set: (path: Path, value: unknown) => void;
  inherited: Inherited | null;
  errors: Map<string, string>;
  /** The name of a layer's node or terminal, for "inherited from …". */
  layerName: (level: string, id: string) => string;
}

const fid = (path: Path) => `cf-${path.join('-')}`;

function show(v: unknown): string {
  if (v === undefined) return '';
  if (Array.isArray(v)) return v.map(show).join(', ');
  if (typeof v === 'boolean') return v ? t('common.yes') : t('common.no');
  if (v !== null && typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** "Inherited: 09:00–17:00 · District 越秀区分局", or "not set" when no layer above sets it. */
export function InheritHint(props: { ctx: FormCtx; path: Path; text?: string }) {
  const inh = inheritedAt(props.ctx.inherited, props.path);
  const text = props.text ?? show(inh.value);
  return (
    <span class="hint" data-inherited={props.path.join('.')} data-layer={inh.source?.level ?? ''}>
      {inh.value === undefined || !inh.source
        ? t('cfgform.notSet')
        : t('cfgform.inherits', { value: text, layer: props.ctx.layerName(inh.source.level, inh.source.id) })}
    </span>
  );
}

function ResetButton(props: { ctx: FormCtx; path: Path }) {
  if (getAt(props.ctx.draft, props.path) === undefined) return null;
  return (
    <button type="button" class="link reset" data-reset={props.path.join('.')} onClick={() => props.ctx.set(props.path, undefined)}>
      {t('cfgform.reset')}
    </button>
  );
}

export function FieldError(props: { ctx: FormCtx; path: Path }) {
  const prefix = props.path.join('.');
  const msgs = [...props.ctx.errors].filter(([p]) => p === prefix || p.startsWith(`${prefix}.`));
  if (msgs.length === 0) return null;
  return (
    <span class="field-error" role="alert" data-error={prefix}>
      {msgs.map(([, m]) => m).join('; ')}
    </span>
  );
}

/** A field row: label, control, inherited hint, reset, error. */
function Row(props: { ctx: FormCtx; path: Path; label: string; children: ComponentChildren; hint?: ComponentChildren }) {
  const bad = props.ctx.errors.has(props.path.join('.'));
  return (
    <div class={bad ? 'cf-field bad' : 'cf-field'} data-field={props.path.join('.')}>
      <label for={fid(props.path)}>{props.label}</label>
      <div class="cf-control">
        {props.children}
        <ResetButton ctx={props.ctx} path={props.path} />
      </div>
      {props.hint ?? <InheritHint ctx={props.ctx} path={props.path} />}
      <FieldError ctx={props.ctx} path={props.path} />
    </div>
  );
}

type Unit = 's' | 'min' | 'ms' | 'pct' | 'c' | 'times';

/** A number with its unit and the schema's range in the label; empty = inherit. */
export function NumberField(props: { ctx: FormCtx; path: Path; label: MessageKey; unit: Unit }) {
  const { ctx, path } = props;
  const r = rangeAt(path);
  const own = getAt(ctx.draft, path);
  const inh = inheritedAt(ctx.inherited, path).value;
  const unit = t(`cfgform.unit.${props.unit}`);
  const label = r.min !== undefined && r.max !== undefined ? t('cfgform.withRange', { label: t(props.label), unit, min: r.min, max: r.max }) : `${t(props.label)} (${unit})`;
  return (
    <Row ctx={ctx} path={path} label={label}>
      <input
        id={fid(path)}
        type="number"
        inputMode="numeric"
        min={r.min}
        max={r.max}
        step={r.int ? 1 : 'any'}
        value={typeof own === 'number' ? String(own) : ''}
        placeholder={inh === undefined ? '' : String(inh)}
        aria-invalid={ctx.errors.has(path.join('.'))}
        onInput={(e) => {
          const v = (e.currentTarget as HTMLInputElement).value.trim();
          ctx.set(path, v === '' ? undefined : Number(v));
        }}
      />
    </Row>
  );
}

/** An enum or a yes/no as a select whose first option is "inherit". */
export function SelectField(props: { ctx: FormCtx; path: Path; label: MessageKey; options: { value: string; label: string }[]; boolean?: boolean }) {
  const { ctx, path } = props;
  const own = getAt(ctx.draft, path);
  return (
    <Row ctx={ctx} path={path} label={t(props.label)}>
      <select
        id={fid(path)}
        value={own === undefined ? '' : String(own)}
        onChange={(e) => {
          const v = (e.currentTarget as HTMLSelectElement).value;
          ctx.set(path, v === '' ? undefined : props.boolean ? v === 'true' : v);
        }}
      >
        <option value="">{t('cfgform.inherit')}</option>
        {props.options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </Row>
  );
}

export const logLevelOptions = () => choicesAt(['logLevel']).map((v) => ({ value: v, label: t(`cfgform.log.${v}` as MessageKey) }));
export const yesNo = () => [
  { value: 'true', label: t('common.yes') },
  { value: 'false', label: t('common.no') },
];

const spanText = (s: Span) => (crossesMidnight(s) ? t('cfgform.overnight', { from: s.from, to: s.to }) : `${s.from}–${s.to}`);
const daySpansText = (v: unknown) => (Array.isArray(v) ? (v.length === 0 ? t('cfgform.closed') : (v as Span[]).map(spanText).join(', ')) : '');

/**
 * Spans per weekday, Monday first. A day not set here inherits (its hint says what and from where); "closed" is an
 * empty list; a span ending before it starts is shown as running into the next day.
 */
export function WeekGrid(props: { ctx: FormCtx; path: 'openingHours' | 'maintenanceWindow'; fallback: Span }) {
  const { ctx } = props;
  return (
    <div class="week" data-week={props.path}>
      {WEEK.map((day) => {
        const path = [props.path, day];
        const key = path.join('.');
        const own = getAt(ctx.draft, path) as Span[] | undefined;
        const inh = inheritedAt(ctx.inherited, path).value as Span[] | undefined;
        const setSpans = (spans: Span[] | undefined) => ctx.set(path, spans);
        const bad = [...ctx.errors.keys()].some((p) => p === key || p.startsWith(`${key}.`));
        return (
          <div key={day} class={bad ? 'week-day bad' : 'week-day'} data-day={day}>
            <div class="week-name">{t(`cfgform.day.${day}`)}</div>
            <div class="week-spans">
              {own === undefined ? (
                <InheritHint ctx={ctx} path={path} text={daySpansText(inh)} />
              ) : own.length === 0 ? (
                <span class="closed">{t('cfgform.closed')}</span>
              ) : (
                own.map((s, i) => (
                  <div class="span" key={i} data-span={i}>
                    <input
                      type="time"
                      aria-label={`${t(`cfgform.day.${day}`)} ${t('cfgform.from')}`}
                      value={s.from}
                      onInput={(e) => setSpans(own.map((x, j) => (j === i ? { ...x, from: (e.currentTarget as HTMLInputElement).value } : x)))}
                    />
                    <span aria-hidden="true">–</span>
                    <input
                      type="time"
                      aria-label={`${t(`cfgform.day.${day}`)} ${t('cfgform.to')}`}
                      value={s.to}
                      onInput={(e) => setSpans(own.map((x, j) => (j === i ? { ...x, to: (e.currentTarget as HTMLInputElement).value } : x)))}
                    />
                    {s.from && s.to && crossesMidnight(s) && <span class="overnight">{t('cfgform.nextDay', { to: s.to })}</span>}
                    <button type="button" class="link" aria-label={t('cfgform.removeSpan')} onClick={() => setSpans(own.filter((_, j) => j !== i))}>
                      ×
                    </button>
                  </div>
                ))
              )}
              <FieldError ctx={ctx} path={path} />
            </div>
            <div class="week-actions">
              {own === undefined ? (
                <button type="button" class="link" data-set={key} onClick={() => setSpans(inh && inh.length > 0 ? inh.map((s) => ({ ...s })) : [{ ...props.fallback }])}>
                  {t('cfgform.setHere')}
                </button>
              ) : (
                <>
                  {own.length < 4 && (
                    <button type="button" class="link" data-add={key} onClick={() => setSpans([...own, { ...(own.at(-1) ?? props.fallback) }])}>
                      {t('cfgform.addSpan')}
                    </button>
                  )}
                  {own.length > 0 && (
                    <button type="button" class="link" onClick={() => setSpans([])}>
                      {t('cfgform.closeDay')}
                    </button>
                  )}
                  <button type="button" class="link reset" data-reset={key} onClick={() => setSpans(undefined)}>
                    {t('cfgform.reset')}
                  </button>
                </>
              )}
            </div>
          </div>
        );
      })}
    </div>
  );
}

/** Citizen services as checkboxes, named in the user's language; unset = what the layers above say (or all). */
export function ServicesField(props: { ctx: FormCtx; only?: readonly string[] }) {
  const { ctx } = props;
  const path = ['servicesEnabled'];
  const own = getAt(ctx.draft, path) as string[] | undefined;
  const inh = inheritedAt(ctx.inherited, path).value as string[] | undefined;
  const ids = SERVICE_IDS.filter((s) => !props.only || props.only.includes(s));
  const current = own ?? inh ?? ids;
  return (
    <fieldset class="cf-group" data-field="servicesEnabled">
      <legend>{t('cfgform.services')}</legend>
      <div class="checks">
        {ids.map((id) => (
          <label key={id} class={own === undefined ? 'check inherited' : 'check'}>
            <input
              type="checkbox"
              checked={current.includes(id)}
              onChange={(e) => {
                const on = (e.currentTarget as HTMLInputElement).checked;
                ctx.set(path, ids.filter((s) => (s === id ? on : current.includes(s))));
              }}
            />
            {pickName(SERVICES[id].name, id)}
          </label>
        ))}
      </div>
      <InheritHint ctx={ctx} path={path} text={inh ? inh.map((s) => pickName(SERVICES[s as keyof typeof SERVICES]?.name, s)).join('、') : ''} />
      {inh === undefined && own === undefined && <span class="hint"> · {t('cfgform.servicesAll')}</span>}
      <ResetButton ctx={ctx} path={path} />
      <FieldError ctx={ctx} path={path} />
    </fieldset>
  );
}

/** The kiosk's announcement, Chinese and English side by side; "none here" overrides the layers above. */
export function AnnouncementField(props: { ctx: FormCtx }) {
  const { ctx } = props;
  const path = ['announcement'];
  const own = getAt(ctx.draft, path);
  const off = own === null;
  return (
    <fieldset class="cf-group" data-field="announcement">
      <legend>{t('cfgform.announcement')}</legend>
      {off ? (
        <p class="hint">{t('cfgform.announcementIsOff')}</p>
      ) : (
        <div class="side-by-side">
          {(['zh', 'en'] as const).map((lang) => {
            const p = [...path, lang];
            const v = getAt(ctx.draft, p);
            const inh = inheritedAt(ctx.inherited, p).value;
            return (
              <div class="cf-field" key={lang} data-field={p.join('.')}>
                <label for={fid(p)}>{t(`cfgform.lang.${lang}`)}</label>
                <textarea
                  id={fid(p)}
                  rows={3}
                  lang={lang === 'zh' ? 'zh-CN' : 'en'}
                  value={typeof v === 'string' ? v : ''}
                  placeholder={typeof inh === 'string' ? inh : ''}
                  onInput={(e) => {
                    const s = (e.currentTarget as HTMLTextAreaElement).value;
                    ctx.set(p, s === '' ? undefined : s);
                  }}
                />
                <InheritHint ctx={ctx} path={p} />
                <FieldError ctx={ctx} path={p} />
              </div>
            );
          })}
        </div>
      )}
      <div class="row">
        {!off && (
          <button type="button" class="link" onClick={() => ctx.set(path, null)}>
            {t('cfgform.announcementOff')}
          </button>
        )}
        <ResetButton ctx={ctx} path={path} />
      </div>
    </fieldset>
  );
}

/** Per peripheral: its driver, and for `command` a probe chosen by name from the terminal type's catalog. */
export function PeripheralsField(props: { ctx: FormCtx; catalog: Partial<Record<PeripheralId, readonly string[]>> }) {
  const { ctx } = props;
  const drivers = choicesAt(['peripherals', 'idCardReader', 'driver']);
  return (
    <details class="cf-group" data-field="peripherals">
      <summary>{t('cfgform.peripherals')}</summary>
      {(Object.keys(props.catalog) as PeripheralId[]).map((p) => {
        const base = ['peripherals', p];
        const driver = getAt(ctx.draft, [...base, 'driver']) ?? inheritedAt(ctx.inherited, [...base, 'driver']).value;
        const probes = props.catalog[p] ?? PERIPHERAL_PROBES[p];
        return (
          <div class="periph" key={p} data-peripheral={p}>
            <h4>{pickName(PERIPHERALS[p], p)}</h4>
            <div class="cf-fields">
              <SelectField ctx={ctx} path={[...base, 'driver']} label="cfgform.driver" options={drivers.map((d) => ({ value: d, label: t(`cfgform.driver.${d}` as MessageKey) }))} />
              {driver === 'command' && (
                <SelectField ctx={ctx} path={[...base, 'probe']} label="cfgform.probe" options={probes.map((n) => ({ value: n, label: n }))} />
              )}
              <NumberField ctx={ctx} path={[...base, 'timeoutMs']} label="cfgform.timeoutMs" unit="ms" />
            </div>
          </div>
        );
      })}
    </details>
  );
}
