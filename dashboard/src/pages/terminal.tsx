import { useEffect, useState } from 'preact/hooks';
import type { ComponentType } from 'preact';
import { COMMAND_NAMES, SERVICES, TERMINAL_TYPES, type PeripheralId } from '@kiosk-fleet/protocol';
import { getCommands, getEffectiveConfig, getEvents, getPresenceHistory, getTerminal, sendCommand, type CommandName } from '../api.ts';
import { useResource } from '../hooks.ts';
import { hasKey, pickName, t, type MessageKey } from '../i18n/index.ts';
import { useLive } from '../live.ts';
import { nodeName, useTree } from '../nodes.ts';
import { formatBytes, formatDateTime, formatDuration, formatPercent, formatShort } from '../format.ts';
import { Breadcrumb } from '../components/breadcrumb.tsx';
import { ErrorNote, Loadable, PeripheralBadge, PresenceBadge, Section } from '../components/ui.tsx';
import type { CommandRow, EventRow, PresenceTransition, TerminalDetail } from '../model.ts';
import { peripheralLabel, typeLabel } from '../labels.ts';
import { errorText } from '../hub-text.ts';

const RANGES = [
  // Raw samples are kept 7 days (KF_RETENTION_DAYS); 30 days come from the hourly rollups.
  { key: '24h', label: 'terminal.range24h', ms: 86_400_000, bucket: '5m' },
  { key: '7d', label: 'terminal.range7d', ms: 7 * 86_400_000, bucket: '1h' },
  { key: '30d', label: 'terminal.range30d', ms: 30 * 86_400_000, bucket: 'rollup' },
] as const;
export type RangeKey = (typeof RANGES)[number]['key'];

function reasonLabel(reason: string | null): string {
  if (!reason) return '—';
  const key = `reason.${reason}`;
  return hasKey(key) ? t(key) : reason;
}

function Overview(props: { d: TerminalDetail }) {
  const tree = useTree();
  const d = props.d;
  const spec = (TERMINAL_TYPES as Record<string, { services: readonly string[] }>)[d.type];
  return (
    <Section title={t('terminal.overview')} id="overview">
      <dl class="facts">
        <div>
          <dt>{t('terminal.presence')}</dt>
          <dd data-testid="presence">
            <PresenceBadge state={d.presence} flapping={d.flapping} />{' '}
            {d.presenceSince && <span class="muted">{t('terminal.since', { time: formatDateTime(d.presenceSince) })}</span>}
          </dd>
        </div>
        <div>
          <dt>{t('terminal.reason')}</dt>
          <dd>{reasonLabel(d.presenceReason)}</dd>
        </div>
        <div>
          <dt>{t('terminal.lastSeen')}</dt>
          <dd>{formatDateTime(d.lastSeen)}</dd>
        </div>
        <div>
          <dt>{t('terminal.type')}</dt>
          <dd>{typeLabel(d.type)}</dd>
        </div>
        <div>
          <dt>{t('terminal.serial')}</dt>
          <dd>{d.serial ?? '—'}</dd>
        </div>
        <div>
          <dt>{t('terminal.station')}</dt>
          <dd>
            <a href={`/nodes/${encodeURIComponent(d.stationId)}`}>{nodeName(tree, d.stationId)}</a>
          </dd>
        </div>
        <div>
          <dt>{t('terminal.versions')}</dt>
          <dd>
            {t('terminal.agentVersion')} {d.agentVersion ?? '—'} · {t('terminal.appVersion')} {d.appVersion ?? '—'}
          </dd>
        </div>
        {d.host && (
          <div>
            <dt>{t('terminal.health')}</dt>
            <dd>
              {t('terminal.cpu')} {formatPercent(d.host.cpu)} · {t('terminal.memory')} {formatBytes(d.host.memUsed)} /{' '}
              {formatBytes(d.host.memTotal)} · {t('terminal.disk')} {formatBytes(d.host.diskUsed)} / {formatBytes(d.host.diskTotal)} ·{' '}
              {t('terminal.temperature')} {d.host.tempC === null ? '—' : `${d.host.tempC.toFixed(0)} °C`}
            </dd>
          </div>
        )}
      </dl>
      {d.placements.length > 0 && (
        <>
          <h3>{t('terminal.placements')}</h3>
          <ol class="transitions" data-testid="placements">
            {[...d.placements].reverse().map((p, i) => (
              <li key={`${p.at}-${i}`}>
                <time dateTime={p.at}>{formatDateTime(p.at)}</time>{' '}
                {t('terminal.placementLine', {
                  from: p.from ? nodeName(tree, p.from) : '—',
                  to: p.to ? nodeName(tree, p.to) : '—',
                  by: p.by,
                })}
                {p.reason && <span class="muted"> · {p.reason}</span>}
              </li>
            ))}
          </ol>
        </>
      )}
      <h3>{t('terminal.services')}</h3>
      <div class="chips-line">
        {(spec?.services ?? []).map((s) => (
          <span key={s} class={d.services.includes(s as never) ? 'chip up' : 'chip down'} data-service={s}>
            {pickName((SERVICES as Record<string, { name: { zh: string; en: string } }>)[s]?.name, s)}
          </span>
        ))}
      </div>
    </Section>
  );
}

function Peripherals(props: { d: TerminalDetail }) {
  const d = props.d;
  const spec = (TERMINAL_TYPES as Record<string, { peripherals: readonly PeripheralId[] }>)[d.type];
  const ids = [...new Set([...(spec?.peripherals ?? []), ...Object.keys(d.peripherals)])];
  return (
    <Section title={t('terminal.peripherals')} id="peripherals">
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">{t('terminal.peripheral')}</th>
              <th scope="col">{t('terminal.status')}</th>
              <th scope="col">{t('terminal.detail')}</th>
            </tr>
          </thead>
          <tbody>
            {ids.map((p) => {
              const v = d.peripherals[p];
              return (
                <tr key={p} data-peripheral={p}>
                  <th scope="row">{peripheralLabel(p)}</th>
                  <td>
                    <PeripheralBadge status={v?.status ?? 'unknown'} />
                  </td>
                  <td class="muted">
                    {[v?.code, v?.message].filter(Boolean).join(' · ')}
                    {v?.since && ` ${t('terminal.since', { time: formatShort(v.since) })}`}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </Section>
  );
}

/** A bar over the last 24 h coloured by presence, then the transitions with their reasons. */
function PresenceTimeline(props: { items: PresenceTransition[] }) {
  const now = Date.now();
  const from = now - 86_400_000;
  const sorted = [...props.items].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  const segments: { state: string; start: number; end: number }[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const start = Math.max(from, Date.parse(sorted[i]!.at));
    const end = i + 1 < sorted.length ? Date.parse(sorted[i + 1]!.at) : now;
    if (end > from) segments.push({ state: sorted[i]!.state, start, end });
  }
  return (
    <>
      <div class="timeline" aria-hidden="true">
        {segments.map((s, i) => (
          <span key={i} class={`seg presence-${s.state}`} style={{ left: `${((s.start - from) / 86_400_000) * 100}%`, width: `${((s.end - s.start) / 86_400_000) * 100}%` }} />
        ))}
      </div>
      <ol class="transitions">
        {[...sorted].reverse().slice(0, 30).map((p, i, arr) => {
          const next = i === 0 ? now : Date.parse(arr[i - 1]!.at);
          return (
            <li key={`${p.at}-${i}`}>
              <time dateTime={p.at}>{formatDateTime(p.at)}</time>{' '}
              <PresenceBadge state={p.state === 'flapping' ? 'offline' : p.state} flapping={p.state === 'flapping'} /> {reasonLabel(p.reason)}{' '}
              <span class="muted">({formatDuration(next - Date.parse(p.at))})</span>
            </li>
          );
        })}
      </ol>
    </>
  );
}

function EventsTable(props: { items: EventRow[] }) {
  if (props.items.length === 0) return <p class="muted">{t('state.empty')}</p>;
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">{t('terminal.time')}</th>
            <th scope="col">{t('terminal.event')}</th>
            <th scope="col">{t('terminal.severity')}</th>
            <th scope="col">{t('terminal.message')}</th>
          </tr>
        </thead>
        <tbody>
          {props.items.map((e, i) => (
            <tr key={`${e.at}-${i}`} data-kind={e.kind}>
              <td>
                <time dateTime={e.at}>{formatDateTime(e.at)}</time>
              </td>
              <td>
                {hasKey(`event.${e.kind}`) ? t(`event.${e.kind}` as MessageKey) : e.kind}
                {e.peripheral && ` · ${peripheralLabel(e.peripheral)}`}
              </td>
              <td>
                <span class={`badge sev-${e.severity}`}>{t(`severity.${e.severity}`)}</span>
              </td>
              <td>{[e.code, e.message].filter(Boolean).join(' · ')}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function PeripheralTimeline(props: { items: EventRow[] }) {
  const rows = props.items.filter((e) => e.peripheral !== null);
  if (rows.length === 0) return <p class="muted">{t('state.empty')}</p>;
  return (
    <ol class="transitions">
      {rows.slice(0, 30).map((e, i) => (
        <li key={`${e.at}-${i}`}>
          <time dateTime={e.at}>{formatDateTime(e.at)}</time> {peripheralLabel(e.peripheral!)}{' '}
          <PeripheralBadge status={e.kind === 'peripheral.recovered' ? 'ok' : e.kind === 'peripheral.fault' ? 'fault' : 'degraded'} />{' '}
          <span class="muted">{[e.code, e.message].filter(Boolean).join(' · ')}</span>
        </li>
      ))}
    </ol>
  );
}

function commandLabel(name: string): string {
  const key = `command.name.${name}`;
  return hasKey(key) ? t(key) : name;
}

/** A self-test reads as passed / failed with the failing peripherals; anything else as its JSON. */
function CommandOutcome(props: { c: CommandRow }) {
  const { c } = props;
  if (c.error) return <code class="result">{JSON.stringify(c.error)}</code>;
  const r = c.result as { passed?: unknown; failing?: unknown } | null;
  if (c.name === 'self-test' && r && typeof r.passed === 'boolean') {
    const failing = Array.isArray(r.failing) ? r.failing.map((p) => peripheralLabel(String(p))) : [];
    return r.passed ? (
      <span class="badge periph-ok">{t('terminal.selfTestPassed')}</span>
    ) : (
      <span class="badge periph-fault">{t('terminal.selfTestFailed', { list: failing.join(', ') })}</span>
    );
  }
  return r ? (
    <details>
      <summary>JSON</summary>
      <code class="result">{JSON.stringify(r, null, 1)}</code>
    </details>
  ) : (
    <>—</>
  );
}

function Commands(props: { id: string; stationId: string }) {
  const res = useResource(() => getCommands(props.id), [props.id]);
  useLive(props.stationId, res.reload, 300, (e) => e.type === 'command' && e.terminalId === props.id);
  const [name, setName] = useState<CommandName>('self-test');
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(null);
  const send = async (command: CommandName) => {
    setMsg(null);
    const r = await sendCommand(props.id, command);
    setMsg(r.ok ? { ok: true, text: t('terminal.commandSent', { name: commandLabel(command) }) } : { ok: false, text: t('common.failed', { message: errorText(r.error) }) });
    res.reload();
  };
  return (
    <Section
      title={t('terminal.commands')}
      id="commands"
      actions={
        <button type="button" class="primary" onClick={() => void send('self-test')} data-testid="self-test">
          {t('terminal.runSelfTest')}
        </button>
      }
    >
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          void send(name);
        }}
      >
        <label for="cmd-name">{t('terminal.commandPick')}</label>
        <select id="cmd-name" value={name} onChange={(e) => setName((e.currentTarget as HTMLSelectElement).value as CommandName)}>
          {COMMAND_NAMES.map((c) => (
            <option key={c} value={c}>
              {commandLabel(c)}
            </option>
          ))}
        </select>
        <button type="submit">{t('terminal.runCommand')}</button>
      </form>
      {msg && (
        <p class={msg.ok ? 'note ok' : 'note error'} role="status">
          {msg.text}
        </p>
      )}
      <Loadable res={res} what={t('terminal.commands')}>
        {(items) =>
          items.length === 0 ? (
            <p class="muted">{t('state.empty')}</p>
          ) : (
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">{t('terminal.issued')}</th>
                    <th scope="col">{t('terminal.command')}</th>
                    <th scope="col">{t('terminal.commandStatus')}</th>
                    <th scope="col">{t('terminal.commandResult')}</th>
                  </tr>
                </thead>
                <tbody>
                  {items.map((c) => (
                    <tr key={c.id} data-command={c.name} data-status={c.status}>
                      <td>{formatDateTime(c.issuedAt)}</td>
                      <td>{commandLabel(c.name)}</td>
                      <td>{hasKey(`command.status.${c.status}`) ? t(`command.status.${c.status}` as MessageKey) : c.status}</td>
                      <td>
                        <CommandOutcome c={c} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Loadable>
    </Section>
  );
}

function layerLabel(layer: { level: string; id: string; version: number } | null, tree: ReturnType<typeof useTree>): string {
  if (!layer) return t('config.layerDefault');
  const level = hasKey(`config.level.${layer.level}`) ? t(`config.level.${layer.level}` as MessageKey) : layer.level;
  const name = layer.level === 'terminal' ? '' : ` ${nodeName(tree, layer.id)}`;
  return `${level}${name} · v${layer.version}`;
}

/** Each effective value with the layer it came from (city → district → station → terminal), and whether the
 * terminal has applied it. */
function EffectiveConfig(props: { id: string; stationId: string }) {
  const tree = useTree();
  const res = useResource(() => getEffectiveConfig(props.id), [props.id]);
  useLive(props.stationId, res.reload, 700, (e) => e.type === 'config' && e.terminalId === props.id);
  return (
    <Section
      title={t('terminal.config')}
      id="config"
      actions={<a href={`/config?target=${encodeURIComponent(props.id)}`}>{t('terminal.editConfig')}</a>}
    >
      <Loadable res={res} what={t('terminal.config')}>
        {(cfg) => (
          <>
            <p data-testid="config-sync" data-status={cfg.sync.status}>
              <span class={`badge ${cfg.sync.status === 'in-sync' ? 'periph-ok' : cfg.sync.status === 'rejected' ? 'periph-fault' : 'periph-degraded'}`}>
                {t(`config.sync.${cfg.sync.status}` as MessageKey)}
              </span>{' '}
              <span class="muted">
                {t('config.versions', { desired: cfg.desiredVersion ?? '—', applied: cfg.sync.appliedVersion })}
                {cfg.sync.rejectedReason && ` · ${cfg.sync.rejectedReason}`}
                {cfg.sync.driftSince && ` · ${t('config.driftSince', { time: formatShort(cfg.sync.driftSince) })}`}
              </span>
            </p>
            {cfg.entries.length === 0 ? (
              <p class="muted">{t('state.empty')}</p>
            ) : (
              <div class="table-wrap">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">{t('terminal.configKey')}</th>
                      <th scope="col">{t('terminal.configValue')}</th>
                      <th scope="col">{t('terminal.configLayer')}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {cfg.entries.map((e) => (
                      <tr key={e.key} data-key={e.key}>
                        <th scope="row">{e.key}</th>
                        <td>
                          <code>{JSON.stringify(e.value)}</code>
                        </td>
                        <td data-layer={e.layer?.level ?? 'default'}>{layerLabel(e.layer, tree)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </>
        )}
      </Loadable>
    </Section>
  );
}

type ChartsProps = { id: string; range: RangeKey; ms: number; bucket: '5m' | '1h' | 'rollup' };

/** uPlot is loaded only when a terminal page is opened, to keep the first load small. */
function LazyCharts(props: ChartsProps) {
  const [C, setC] = useState<ComponentType<ChartsProps> | null>(null);
  const [err, setErr] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    import('./charts.tsx').then(
      (m) => live && setC(() => m.Charts),
      (e: unknown) => live && setErr(String(e)),
    );
    return () => {
      live = false;
    };
  }, []);
  if (err) return <ErrorNote error={{ status: -1, message: err }} what="charts" />;
  if (!C) return <p class="muted">{t('state.loading')}</p>;
  return <C {...props} />;
}

export function TerminalPage(props: { id: string }) {
  const res = useResource(() => getTerminal(props.id), [props.id]);
  const presence = useResource(() => getPresenceHistory(props.id), [props.id]);
  const events = useResource(() => getEvents(props.id), [props.id]);
  const [range, setRange] = useState<RangeKey>('24h');
  const r = RANGES.find((x) => x.key === range)!;
  const stationId = res.data?.stationId ?? null;
  useLive(stationId, () => {
    res.reload();
    presence.reload();
    events.reload();
  }, 700, (e) => e.terminalId === props.id && e.type !== 'command');
  return (
    <div class="page" data-page="terminal">
      {stationId ? <Breadcrumb nodeId={stationId} terminal={props.id} /> : null}
      <h1>
        {t('terminal.title')} {props.id}
      </h1>
      <Loadable res={res} what={t('terminal.title')}>
        {(d) => (
          <div class="grid-2">
            <div>
              <Overview d={d} />
              <Peripherals d={d} />
              <Commands id={props.id} stationId={d.stationId} />
            </div>
            <div>
              <Section
                title={t('terminal.health')}
                id="charts"
                actions={
                  <div role="group" aria-label={t('terminal.range')} class="seg-buttons">
                    {RANGES.map((x) => (
                      <button key={x.key} type="button" aria-pressed={x.key === range} onClick={() => setRange(x.key)}>
                        {t(x.label)}
                      </button>
                    ))}
                  </div>
                }
              >
                <LazyCharts id={props.id} range={range} ms={r.ms} bucket={r.bucket} />
              </Section>
              <Section title={t('terminal.presenceTimeline')} id="presence">
                <Loadable res={presence} what={t('terminal.presenceTimeline')}>
                  {(items) => <PresenceTimeline items={items} />}
                </Loadable>
              </Section>
              <Section title={t('terminal.peripheralTimeline')} id="peripheral-timeline">
                <Loadable res={events} what={t('terminal.peripheralTimeline')}>
                  {(items) => <PeripheralTimeline items={items} />}
                </Loadable>
              </Section>
              <Section title={t('terminal.events')} id="events">
                <Loadable res={events} what={t('terminal.events')}>
                  {(items) => <EventsTable items={items.slice(0, 50)} />}
                </Loadable>
              </Section>
              <EffectiveConfig id={props.id} stationId={d.stationId} />
            </div>
          </div>
        )}
      </Loadable>
    </div>
  );
}

