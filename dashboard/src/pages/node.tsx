import { nodeLevel, SERVICES, TERMINAL_TYPES, type PeripheralId } from '@kiosk-fleet/protocol';
import { getStationTerminals, getSummary } from '../api.ts';
import { useResource } from '../hooks.ts';
import { pickName, t } from '../i18n/index.ts';
import { useLive } from '../live.ts';
import { nodeName, useTree } from '../nodes.ts';
import { formatShort } from '../format.ts';
import { Breadcrumb } from '../components/breadcrumb.tsx';
import { ChildTiles, ServicesTable } from '../components/overview.tsx';
import { OpenAlerts } from '../components/alerts-mini.tsx';
import { Problems } from '../components/problems.tsx';
import { CountsBar, Loadable, PeripheralBadge, PresenceBadge, Section } from '../components/ui.tsx';
import type { TerminalRow } from '../model.ts';
import { peripheralLabel, typeLabel } from '../labels.ts';

export function NodePage(props: { id: string }) {
  return nodeLevel(props.id) === 'station' ? <StationPage id={props.id} /> : <DistrictPage id={props.id} />;
}

function DistrictPage(props: { id: string }) {
  const tree = useTree();
  const res = useResource(() => getSummary(props.id), [props.id]);
  useLive(props.id, res.reload, 3000);
  return (
    <div class="page" data-page="district">
      <Breadcrumb nodeId={props.id} />
      <h1>{nodeName(tree, props.id)}</h1>
      <Loadable res={res} what={t('district.title')}>
        {(s) => (
          <>
            <CountsBar counts={s.counts} />
            <div class="grid-2 overview-grid">
              <ChildTiles summary={s} title={t('district.stations')} />
              <div class="overview-side">
                <ServicesTable summary={s} childLabel={t('district.station')} />
                <Problems node={props.id} debounceMs={3000} />
                <OpenAlerts node={props.id} />
              </div>
            </div>
          </>
        )}
      </Loadable>
    </div>
  );
}

const needsAttention = (r: TerminalRow) => r.presence !== 'online' || r.faults.length > 0;

/**
 * Terminals in fault or not online first (what a technician came for); on a phone the healthy ones fold into one
 * line that opens on a tap, so the problems are on the first screen.
 */
function StationTerminals(props: { items: TerminalRow[] }) {
  const attention = props.items.filter(needsAttention);
  const healthy = props.items.filter((r) => !needsAttention(r));
  const phone = typeof matchMedia === 'function' && matchMedia('(max-width: 600px)').matches;
  const list = (rows: TerminalRow[]) => (
    <ul class="terminal-cards">
      {rows.map((r) => (
        <TerminalCard key={r.id} row={r} />
      ))}
    </ul>
  );
  return (
    <>
      {attention.length > 0 && list(attention)}
      {healthy.length > 0 &&
        (phone ? (
          <details class="healthy" data-testid="healthy-terminals">
            <summary>{t('station.healthy', { n: healthy.length })}</summary>
            {list(healthy)}
          </details>
        ) : (
          list(healthy)
        ))}
    </>
  );
}

function TerminalCard(props: { row: TerminalRow }) {
  const r = props.row;
  const spec = (TERMINAL_TYPES as Record<string, { peripherals: readonly PeripheralId[]; services: readonly string[] }>)[r.type];
  const ids = [...new Set([...(spec?.peripherals ?? []), ...Object.keys(r.peripherals)])];
  const offered = spec?.services ?? [];
  return (
    <li class={`terminal-card presence-${r.presence}`} data-terminal={r.id} data-attention={needsAttention(r) ? 'yes' : 'no'}>
      <div class="tc-head">
        <a href={`/terminals/${encodeURIComponent(r.id)}`} class="tc-id">
          {r.id}
        </a>
        <PresenceBadge state={r.presence} flapping={r.flapping} />
      </div>
      <div class="muted">
        {typeLabel(r.type)}
        {r.presenceSince && <> · {t('terminal.since', { time: formatShort(r.presenceSince) })}</>}
      </div>
      <ul class="periphs" aria-label={t('station.peripherals')}>
        {ids.map((p) => {
          const v = r.peripherals[p];
          return (
            <li key={p} data-peripheral={p} data-status={v?.status ?? 'unknown'}>
              <span class="p-name">{peripheralLabel(p)}</span>
              <PeripheralBadge status={v?.status ?? 'unknown'} title={[v?.code, v?.message].filter(Boolean).join(' ')} />
            </li>
          );
        })}
      </ul>
      <div class="tc-services">
        <span class="muted">{t('station.services')}: </span>
        {offered.length === 0 && t('station.noServices')}
        {offered.map((s) => (
          <span key={s} class={r.services.includes(s as never) ? 'chip up' : 'chip down'} data-service={s}>
            {pickName((SERVICES as Record<string, { name: { zh: string; en: string } }>)[s]?.name, s)}
          </span>
        ))}
      </div>
    </li>
  );
}

function StationPage(props: { id: string }) {
  const tree = useTree();
  const res = useResource(() => getStationTerminals(props.id), [props.id]);
  const summary = useResource(() => getSummary(props.id, false), [props.id]);
  useLive(props.id, () => {
    res.reload();
    summary.reload();
  }, 500);
  return (
    <div class="page" data-page="station">
      <Breadcrumb nodeId={props.id} />
      <h1>{nodeName(tree, props.id)}</h1>
      {summary.data && <CountsBar counts={summary.data.counts} />}
      <Section title={t('station.terminals')} id="terminals">
        <Loadable res={res} what={t('station.terminals')}>
          {(items) => (items.length === 0 ? <p class="muted">{t('state.empty')}</p> : <StationTerminals items={items} />)}
        </Loadable>
      </Section>
      <OpenAlerts node={props.id} />
    </div>
  );
}

