/**
 * Config layers per node (city, district, station) and per terminal: load a layer and what it inherits, edit it in
 * a form generated from the protocol's schema (or as JSON, the "advanced" view), validate it in the browser with
 * that same schema, preview the change (a diff of the layer, and the hub's dry run: which terminals' effective
 * config would change, by station), then save with the version read — the hub answers 409 when someone saved in
 * between, and refuses an invalid config with the path of each bad field.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { isTerminalType, nodeLevel, PERIPHERAL_PROBES, probesOfType, servicesOfType } from '@kiosk-fleet/protocol';
import { dryRunConfig, getConfigLayer, getInheritedConfig, getTerminal, saveConfigLayer, type DryRun, type Inherited, type Result } from '../api.ts';
import { setAt, validateLayer, type Obj, type Path } from '../config-form.ts';
import { AnnouncementField, logLevelOptions, NumberField, PeripheralsField, SelectField, ServicesField, WeekGrid, yesNo, type FormCtx } from './config-fields.tsx';
import { useResource } from '../hooks.ts';
import { getLanguage, pickName, t } from '../i18n/index.ts';
import { navigate } from '../router.ts';
import { nodeName, useTree } from '../nodes.ts';
import { Loadable, Section } from '../components/ui.tsx';
import { configDiff } from '../config-diff.ts';
import { errorText } from '../hub-text.ts';

type Loaded = { version: number; settings: Record<string, unknown>; inherited: Inherited | null; type: string | null };

const scopeOf = (target: string) => (nodeLevel(target) !== null ? 'node' : 'terminal');

async function load(target: string): Promise<Result<Loaded>> {
  const scope = scopeOf(target);
  const [layer, inherited, terminal] = await Promise.all([
    getConfigLayer(scope, target),
    getInheritedConfig(scope, target),
    scope === 'terminal' ? getTerminal(target) : Promise.resolve(null),
  ]);
  if (!layer.ok) return layer;
  // Without what it inherits the form still edits the layer; its hints then say "not set".
  return {
    ok: true,
    data: { version: layer.data.version, settings: layer.data.config, inherited: inherited.ok ? inherited.data : null, type: terminal?.ok ? terminal.data.type : null },
  };
}

export function ConfigPage(props: { query: URLSearchParams }) {
  const tree = useTree();
  const target = props.query.get('target') ?? tree?.root?.id ?? '';
  const [terminalDraft, setTerminalDraft] = useState(nodeLevel(target) === null ? target : '');
  const res = useResource(() => (target ? load(target) : new Promise<never>(() => {})), [target]);
  const [reach, setReach] = useState<DryRun | null>(null);
  const [reason, setReason] = useState('');
  const [text, setText] = useState('');
  const [draft, setDraft] = useState<Obj>({});
  const [mode, setMode] = useState<'form' | 'json'>('form');
  const [diff, setDiff] = useState<ReturnType<typeof configDiff> | null>(null);
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(null);
  useEffect(() => {
    if (res.state === 'ok') {
      setText(JSON.stringify(res.data.settings, null, 2));
      setDraft(res.data.settings);
    }
    setDiff(null);
    setReach(null);
  }, [res.state, res.data]);
  // Validated on every change with the protocol's schema, in the user's language; nothing invalid reaches the hub.
  const errors = useMemo(() => new Map(validateLayer(draft).map((e) => [e.path, e.message])), [draft, getLanguage()]);
  // A new target starts clean; a reload after saving keeps the "saved" message.
  useEffect(() => setMsg(null), [target]);
  const nodes = tree ? [...tree.byId.values()].sort((a, b) => a.id.localeCompare(b.id)) : [];
  const parseText = (): Record<string, unknown> | undefined => {
    try {
      const v: unknown = JSON.parse(text);
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('{ … }');
      return v as Record<string, unknown>;
    } catch (e) {
      setMsg({ ok: false, text: t('config.invalidJson', { message: e instanceof Error ? e.message : String(e) }) });
      return undefined;
    }
  };
  /** The layer as edited (the JSON view's text becomes the draft), or undefined when it cannot be sent. */
  const parse = (): Record<string, unknown> | undefined => {
    let next: Record<string, unknown> | undefined = draft;
    if (mode === 'json') {
      next = parseText();
      if (next === undefined) return undefined;
      setDraft(next);
    }
    const issues = validateLayer(next);
    if (issues.length > 0) {
      setMsg({ ok: false, text: `${t('cfgform.fixErrors')} ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}` });
      return undefined;
    }
    return next;
  };
  const setMode2 = (m: 'form' | 'json') => {
    if (m === mode) return;
    if (m === 'json') setText(JSON.stringify(draft, null, 2));
    else {
      const next = parseText();
      if (next === undefined) return;
      setDraft(next);
    }
    setMsg(null);
    setMode(m);
  };
  // An operator below the city does not have the city in their tree: the level alone then names it.
  const layerName = (level: string, id: string) => {
    const name = level === 'terminal' ? id : tree?.byId.has(id) ? nodeName(tree, id) : '';
    return `${t(`config.level.${level}` as Parameters<typeof t>[0])}${name ? ` ${name}` : ''}`;
  };
  const go = (to: string) => navigate(`/config?target=${encodeURIComponent(to)}`);
  return (
    <div class="page" data-page="config">
      <h1>{t('config.title')}</h1>
      <Section title={t('config.target')} id="config-target">
        <div class="filters">
          <label>
            {t('config.node')}
            <select value={nodeLevel(target) !== null ? target : ''} onChange={(e) => go((e.currentTarget as HTMLSelectElement).value)}>
              <option value="" disabled>
                —
              </option>
              {nodes.map((n) => (
                <option key={n.id} value={n.id}>
                  {n.id} {pickName(n.name)}
                </option>
              ))}
            </select>
          </label>
          <form
            class="filters"
            onSubmit={(e) => {
              e.preventDefault();
              if (terminalDraft.trim()) go(terminalDraft.trim());
            }}
          >
            <label>
              {t('config.terminal')}
              <input value={terminalDraft} onInput={(e) => setTerminalDraft((e.currentTarget as HTMLInputElement).value)} />
            </label>
            <button type="submit">{t('config.open')}</button>
          </form>
        </div>
      </Section>
      <Section title={`${t('config.layerOf')} · ${nodeLevel(target) !== null ? nodeName(tree, target) : target}`} id="config-edit">
        <Loadable res={res} what={t('config.title')}>
          {(cfg) => (
            <form
              class="stack"
              onSubmit={async (e) => {
                e.preventDefault();
                const next = parse();
                if (next === undefined) return;
                const r = await saveConfigLayer(scopeOf(target), target, cfg.version, next, reason.trim());
                setMsg(
                  r.ok
                    ? { ok: true, text: t('config.saved', { version: r.data.version, pushed: r.data.pushed }) }
                    : { ok: false, text: r.error.status === 409 ? t('config.stale') : t('common.failed', { message: errorText(r.error) }) },
                );
                if (r.ok) res.reload();
              }}
            >
              <p class="muted">{t('config.version', { version: cfg.version })}</p>
              <div class="tabs" role="tablist">
                {(['form', 'json'] as const).map((m) => (
                  <button key={m} type="button" role="tab" aria-selected={mode === m} class={mode === m ? 'tab on' : 'tab'} onClick={() => setMode2(m)}>
                    {t(m === 'form' ? 'cfgform.form' : 'cfgform.advanced')}
                  </button>
                ))}
              </div>
              {mode === 'form' ? (
                <ConfigForm
                  ctx={{
                    draft,
                    set: (path: Path, value: unknown) => {
                      setDraft((d) => setAt(d, path, value));
                      setDiff(null);
                      setReach(null);
                    },
                    inherited: cfg.inherited,
                    errors,
                    layerName,
                  }}
                  type={cfg.type}
                />
              ) : (
                <>
                  <label for="cfg-text">{t('config.editor')}</label>
                  <textarea id="cfg-text" rows={14} class="mono" value={text} onInput={(e) => setText((e.currentTarget as HTMLTextAreaElement).value)} />
                </>
              )}
              <label for="cfg-reason">{t('config.reason')}</label>
              <input id="cfg-reason" maxLength={500} value={reason} onInput={(e) => setReason((e.currentTarget as HTMLInputElement).value)} />
              <div class="row">
                <button
                  type="button"
                  onClick={async () => {
                    setMsg(null);
                    const next = parse();
                    if (next === undefined) return;
                    setDiff(configDiff(cfg.settings, next));
                    if (mode === 'json') setDraft(next);
                    const r = await dryRunConfig(scopeOf(target), target, next);
                    if (r.ok) setReach(r.data);
                    else {
                      setReach(null);
                      setMsg({ ok: false, text: t('common.failed', { message: errorText(r.error) }) });
                    }
                  }}
                >
                  {t('config.preview')}
                </button>
                <button type="submit" class="primary" disabled={!diff || diff.length === 0}>
                  {t('config.save')}
                </button>
              </div>
              {diff && (
                <div data-testid="config-diff">
                  {reach && (
                    <p data-testid="config-reach">
                      {t('config.affected', { n: reach.changed })} <span class="muted">{t('config.unaffected', { n: reach.unchanged })}</span>
                    </p>
                  )}
                  {reach && reach.terminals.length > 0 && <ReachByStation reach={reach} name={(id) => nodeName(tree, id)} />}
                  <h3>{t('config.diff')}</h3>
                  {diff.length === 0 ? (
                    <p class="muted">{t('config.noChange')}</p>
                  ) : (
                    <ul class="diff">
                      {diff.map((d) => (
                        <li key={d.key}>
                          <code>{d.key}</code>: <del>{JSON.stringify(d.from) ?? '—'}</del> → <ins>{JSON.stringify(d.to) ?? '—'}</ins>
                        </li>
                      ))}
                    </ul>
                  )}
                </div>
              )}
            </form>
          )}
        </Loadable>
        {msg && (
          <p class={msg.ok ? 'note ok' : 'note error'} role="status">
            {msg.text}
          </p>
        )}
      </Section>
    </div>
  );
}

/** The dry run's terminals by station (a district's change reaches dozens of stations; one line each). */
function ReachByStation(props: { reach: DryRun; name: (id: string) => string }) {
  const by = new Map<string, string[]>();
  for (const x of props.reach.terminals) by.set(x.stationId, [...(by.get(x.stationId) ?? []), x.terminalId]);
  return (
    <ul class="reach" data-testid="config-reach-stations">
      {[...by].sort(([a], [b]) => a.localeCompare(b)).map(([station, ids]) => (
        <li key={station} data-station={station}>
          <strong>{props.name(station)}</strong> <span class="muted">({t('config.affected', { n: ids.length })})</span>{' '}
          {ids.slice(0, 12).join(', ')}
          {ids.length > 12 ? ' …' : ''}
        </li>
      ))}
    </ul>
  );
}

/** The form: every field of the protocol's terminal config, grouped as an operator thinks of them. */
function ConfigForm(props: { ctx: FormCtx; type: string | null }) {
  const { ctx } = props;
  const type = props.type !== null && isTerminalType(props.type) ? props.type : null;
  return (
    <div class="cfg-form" data-testid="config-form">
      <fieldset class="cf-group" data-field="openingHours">
        <legend>{t('cfgform.openingHours')}</legend>
        <p class="hint">{t('cfgform.weekHint')}</p>
        <WeekGrid ctx={ctx} path="openingHours" fallback={{ from: '09:00', to: '17:00' }} />
      </fieldset>
      <fieldset class="cf-group" data-field="maintenanceWindow">
        <legend>{t('cfgform.maintenanceWindow')}</legend>
        <WeekGrid ctx={ctx} path="maintenanceWindow" fallback={{ from: '23:00', to: '05:00' }} />
      </fieldset>
      <ServicesField ctx={ctx} {...(type ? { only: servicesOfType(type) } : {})} />
      <AnnouncementField ctx={ctx} />
      <fieldset class="cf-group">
        <legend>{t('cfgform.general')}</legend>
        <div class="cf-fields">
          <NumberField ctx={ctx} path={['telemetryInterval']} label="cfgform.telemetryInterval" unit="s" />
          <SelectField ctx={ctx} path={['logLevel']} label="cfgform.logLevel" options={logLevelOptions()} />
          <SelectField ctx={ctx} path={['updatePolicy', 'windowOnly']} label="cfgform.windowOnly" options={yesNo()} boolean />
          <NumberField ctx={ctx} path={['updatePolicy', 'healthCheckSeconds']} label="cfgform.healthCheckSeconds" unit="s" />
        </div>
      </fieldset>
      <fieldset class="cf-group">
        <legend>{t('cfgform.alerts')}</legend>
        <div class="cf-fields">
          <NumberField ctx={ctx} path={['alerts', 'thresholds', 'offlineMinutes']} label="cfgform.offlineMinutes" unit="min" />
          <NumberField ctx={ctx} path={['alerts', 'thresholds', 'peripheralFaultMinutes']} label="cfgform.peripheralFaultMinutes" unit="min" />
          <NumberField ctx={ctx} path={['alerts', 'thresholds', 'diskPercent']} label="cfgform.diskPercent" unit="pct" />
          <NumberField ctx={ctx} path={['alerts', 'thresholds', 'temperatureC']} label="cfgform.temperatureC" unit="c" />
          <NumberField ctx={ctx} path={['alerts', 'thresholds', 'driftMinutes']} label="cfgform.driftMinutes" unit="min" />
          <NumberField ctx={ctx} path={['alerts', 'thresholds', 'flapping', 'transitions']} label="cfgform.flappingTransitions" unit="times" />
          <NumberField ctx={ctx} path={['alerts', 'thresholds', 'flapping', 'windowMinutes']} label="cfgform.flappingWindow" unit="min" />
        </div>
        <h3>{t('cfgform.sla')}</h3>
        <div class="cf-fields">
          <NumberField ctx={ctx} path={['alerts', 'sla', 'critical']} label="cfgform.sla.critical" unit="min" />
          <NumberField ctx={ctx} path={['alerts', 'sla', 'major']} label="cfgform.sla.major" unit="min" />
          <NumberField ctx={ctx} path={['alerts', 'sla', 'minor']} label="cfgform.sla.minor" unit="min" />
        </div>
      </fieldset>
      <PeripheralsField ctx={ctx} catalog={type ? probesOfType(type) : PERIPHERAL_PROBES} />
    </div>
  );
}
