/**
 * Availability over a period (the hub's /reports/availability) for the operator's city, a district, a station or a
 * terminal: per citizen service the share of time it was available and its downtime by cause, then the same per
 * child (districts, stations, terminals), and the CSV. Filters live in the URL (?node=&terminal=&period=&from=&to=).
 *
 * A share is only shown when it rests on measured time: a period with no terminal, or whose online time has no
 * hourly rollup at all, says "not enough data" (a bare 0 % would read as an outage that never happened).
 */
import { useMemo } from 'preact/hooks';
import { SERVICES } from '@kiosk-fleet/protocol';
import { getAvailability, getAvailabilityCsv, type AvailabilityReport, type ReportQuery, type ReportRow, type ReportService } from '../api.ts';
import { useResource } from '../hooks.ts';
import { pickName, t } from '../i18n/index.ts';
import { navigate } from '../router.ts';
import { nodeName, useTree, type Tree } from '../nodes.ts';
import { bureauTimeZone, formatDateTime, formatDuration } from '../format.ts';
import { Loadable, Section } from '../components/ui.tsx';
import { SearchPick, type PickItem } from '../components/picker.tsx';
import { label } from '../labels.ts';

const PERIODS = { '24h': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000 } as const;
type Period = keyof typeof PERIODS | 'custom';

/** Midnight of a calendar day (YYYY-MM-DD) in the bureau's zone, whatever the browser's. */
export function zoneMidnight(ymd: string, zone = bureauTimeZone()): Date {
  const guess = new Date(`${ymd}T00:00:00Z`);
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(guess);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const asZone = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return new Date(guess.getTime() - (asZone - guess.getTime()));
}

function todayInZone(): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: bureauTimeZone(), year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
}

/** The period asked for in the URL, as the hub's from/to (custom days: from the first midnight to after the last day). */
function periodOf(query: URLSearchParams): { period: Period; from: string; to: string; fromDay: string; toDay: string } {
  const period = (query.get('period') as Period | null) ?? '7d';
  const fromDay = query.get('from') ?? todayInZone();
  const toDay = query.get('to') ?? fromDay;
  if (period === 'custom') {
    const end = zoneMidnight(toDay);
    end.setUTCDate(end.getUTCDate() + 1);
    return { period, from: zoneMidnight(fromDay).toISOString(), to: end.toISOString(), fromDay, toDay };
  }
  // Rounded to the minute so the URL's report stays the same report while the page is open.
  const now = Math.floor(Date.now() / 60_000) * 60_000;
  return { period, from: new Date(now - (PERIODS[period as keyof typeof PERIODS] ?? PERIODS['7d'])).toISOString(), to: new Date(now).toISOString(), fromDay, toDay };
}

/** Null when the service's time was not measured: no terminal offered it, or its online time has no rollup. */
function shareOf(x: ReportService | undefined): number | null {
  if (!x || x.share === null || x.expectedSeconds <= 0) return null;
  const d = x.downtimeSeconds;
  // Offline time is known downtime (0 % is true for a terminal off all period); online time without rollups is not.
  const measuredOnline = x.availableSeconds + d.peripheralFault + d.appDown;
  return measuredOnline === 0 && d.noData > 0 ? null : x.share;
}

function ShareCell(props: { x: ReportService | undefined }) {
  const s = shareOf(props.x);
  if (s === null) return <td class="muted" data-share="none">{t('reports.notEnough')}</td>;
  return <td data-share={s.toFixed(4)}>{`${(s * 100).toFixed(1)} %`}</td>;
}

const dur = (seconds: number) => (seconds > 0 ? formatDuration(seconds * 1000) : '—');

function serviceName(id: string): string {
  return pickName((SERVICES as Record<string, { name: { zh: string; en: string } }>)[id]?.name, id);
}

function rowName(tree: Tree | null, r: ReportRow): string {
  return r.level === 'terminal' ? r.id : `${nodeName(tree, r.id)} · ${r.id}`;
}

/** The chosen node's (or terminal's) own row and its children's, from the report's levels. */
function pick(rep: AvailabilityReport, q: ReportQuery, tree: Tree | null): { own: ReportRow | null; children: ReportRow[] } {
  if (q.terminal) return { own: rep.terminals[0] ?? null, children: [] };
  const level = q.node ? (tree?.byId.get(q.node)?.level ?? 'city') : 'city';
  if (level === 'station') return { own: rep.stations[0] ?? null, children: rep.terminals };
  if (level === 'district') return { own: rep.districts[0] ?? null, children: rep.stations };
  return { own: rep.city[0] ?? null, children: rep.districts };
}

function Report(props: { rep: AvailabilityReport; q: ReportQuery; tree: Tree | null; link: (p: Record<string, string | null>) => string }) {
  const { own, children } = pick(props.rep, props.q, props.tree);
  if (!own || own.terminals === 0) {
    return (
      <p class="note" data-testid="not-enough">
        {t('reports.noTerminals')}
      </p>
    );
  }
  const services = Object.keys(own.services).sort();
  return (
    <>
      <p class="muted" data-testid="report-period">
        {t('reports.periodShown', { from: formatDateTime(props.rep.from), to: formatDateTime(props.rep.to), n: own.terminals })}
      </p>
      <div class="table-wrap">
        <table class="results" data-testid="report-services">
          <thead>
            <tr>
              <th scope="col">{t('reports.service')}</th>
              <th scope="col">{t('reports.availability')}</th>
              <th scope="col">{t('reports.terminals')}</th>
              <th scope="col">{t('reports.offline')}</th>
              <th scope="col">{t('reports.peripheralFault')}</th>
              <th scope="col">{t('reports.appDown')}</th>
              <th scope="col">{t('reports.noData')}</th>
              <th scope="col">{t('reports.planned')}</th>
            </tr>
          </thead>
          <tbody>
            {services.map((sv) => {
              const x = own.services[sv]!;
              return (
                <tr key={sv} data-service={sv}>
                  <th scope="row">{serviceName(sv)}</th>
                  <ShareCell x={x} />
                  <td>{x.terminals}</td>
                  <td>{dur(x.downtimeSeconds.offline)}</td>
                  <td>{dur(x.downtimeSeconds.peripheralFault)}</td>
                  <td>{dur(x.downtimeSeconds.appDown)}</td>
                  <td>{dur(x.downtimeSeconds.noData)}</td>
                  <td>{dur(x.plannedSeconds)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {children.length > 0 && (
        <>
          <h3>{label('reports.children', children[0]!.level)}</h3>
          <div class="table-wrap">
            <table class="results" data-testid="report-children">
              <thead>
                <tr>
                  <th scope="col">{t('reports.name')}</th>
                  {services.map((sv) => (
                    <th scope="col" key={sv}>
                      {serviceName(sv)}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {children.map((c) => (
                  <tr key={c.id} data-child={c.id}>
                    <th scope="row">
                      <a href={props.link(c.level === 'terminal' ? { terminal: c.id, node: null } : { node: c.id, terminal: null })}>{rowName(props.tree, c)}</a>
                    </th>
                    {services.map((sv) =>
                      c.services[sv] ? (
                        <ShareCell key={sv} x={c.services[sv]} />
                      ) : (
                        <td key={sv} class="muted">
                          —
                        </td>
                      ),
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </>
  );
}

export function ReportsPage(props: { query: URLSearchParams }) {
  const tree = useTree();
  const { query } = props;
  const p = periodOf(query);
  const node = query.get('node') ?? '';
  const terminal = query.get('terminal') ?? '';
  const q: ReportQuery = { ...(node ? { node } : {}), ...(terminal ? { terminal } : {}), from: p.from, to: p.to };
  const report = useResource(() => getAvailability(q), [node, terminal, p.from, p.to]);
  const link = (change: Record<string, string | null>) => {
    const next = new URLSearchParams(query);
    for (const [k, v] of Object.entries(change)) {
      if (v === null || v === '') next.delete(k);
      else next.set(k, v);
    }
    return `/reports?${next.toString()}`;
  };
  const go = (change: Record<string, string | null>) => navigate(link(change), true);
  const items = useMemo<PickItem[]>(
    () =>
      [...(tree?.byId.values() ?? [])]
        .sort((a, b) => a.id.localeCompare(b.id))
        .map((n) => ({ value: n.id, text: `${pickName(n.name, n.id)} · ${n.id}`, search: `${n.name.zh} ${n.name.en}` })),
    [tree],
  );
  const title = terminal ? terminal : node ? nodeName(tree, node) : tree?.root ? nodeName(tree, tree.root.id) : '';
  return (
    <div class="page" data-page="reports">
      <h1>
        {t('reports.title')}
        {title && <span class="muted"> · {title}</span>}
      </h1>
      <Section title={t('reports.filters')} id="report-filters">
        <div class="stack">
          <label for="rep-node">{t('reports.node')}</label>
          <SearchPick id="rep-node" items={items} value={terminal ? '' : node || (tree?.root?.id ?? '')} onChange={(v) => v && go({ node: v, terminal: null })} />
          <label for="rep-period">{t('reports.period')}</label>
          <select id="rep-period" value={p.period} onChange={(e) => go({ period: (e.currentTarget as HTMLSelectElement).value })}>
            <option value="24h">{t('reports.last24h')}</option>
            <option value="7d">{t('reports.last7d')}</option>
            <option value="30d">{t('reports.last30d')}</option>
            <option value="custom">{t('reports.custom')}</option>
          </select>
          {p.period === 'custom' && (
            <div class="row">
              <label for="rep-from">{t('reports.fromDay')}</label>
              <input id="rep-from" type="date" value={p.fromDay} onChange={(e) => go({ from: (e.currentTarget as HTMLInputElement).value })} />
              <label for="rep-to">{t('reports.toDay')}</label>
              <input id="rep-to" type="date" value={p.toDay} onChange={(e) => go({ to: (e.currentTarget as HTMLInputElement).value })} />
            </div>
          )}
          <div class="row">
            <button
              type="button"
              onClick={async () => {
                const r = await getAvailabilityCsv(q);
                if (!r.ok) return;
                const a = document.createElement('a');
                a.href = URL.createObjectURL(r.data);
                a.download = `availability-${terminal || node || 'all'}.csv`;
                a.click();
                setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
              }}
            >
              {t('reports.csv')}
            </button>
          </div>
        </div>
      </Section>
      <Section title={t('reports.byService')} id="report">
        <Loadable res={report} what={t('reports.title')}>
          {(rep) => <Report rep={rep} q={q} tree={tree} link={link} />}
        </Loadable>
      </Section>
    </div>
  );
}
