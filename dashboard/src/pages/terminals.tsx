/**
 * Find terminals: by id or serial, presence, a peripheral in fault, type, under a node. The filters live in the
 * URL (`/terminals?q=…&fault=idCardReader`), so a technician can share or bookmark a view.
 */
import { useEffect, useState } from 'preact/hooks';
import { PERIPHERAL_IDS, TERMINAL_TYPE_IDS } from '@kiosk-fleet/protocol';
import { listTerminals, type TerminalFilter } from '../api.ts';
import { t } from '../i18n/index.ts';
import { useLive } from '../live.ts';
import { nodeName, useTree } from '../nodes.ts';
import { navigate } from '../router.ts';
import { formatShort } from '../format.ts';
import { ErrorNote, PresenceBadge, Section } from '../components/ui.tsx';
import type { TerminalRow } from '../model.ts';
import type { ApiError } from '../api.ts';
import { peripheralLabel, typeLabel } from '../labels.ts';

const PAGE = '50';
const KEYS = ['q', 'presence', 'fault', 'type', 'node'] as const;
type Filters = Record<(typeof KEYS)[number], string>;

function readFilters(query: URLSearchParams): Filters {
  return Object.fromEntries(KEYS.map((k) => [k, query.get(k) ?? ''])) as Filters;
}

export function TerminalsPage(props: { query: URLSearchParams }) {
  const tree = useTree();
  const applied = readFilters(props.query);
  const key = KEYS.map((k) => applied[k]).join('|');
  const [draft, setDraft] = useState<Filters>(applied);
  const [rows, setRows] = useState<TerminalRow[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);

  const load = async (after: string | null, replace: boolean) => {
    setBusy(true);
    const f: TerminalFilter = { limit: PAGE };
    if (applied.q) f.q = applied.q;
    if (applied.presence) f.presence = applied.presence as NonNullable<TerminalFilter['presence']>;
    if (applied.fault) f.fault = applied.fault;
    if (applied.node) f.node = applied.node;
    if (applied.type) f.type = applied.type;
    if (after) f.cursor = after;
    const r = await listTerminals(f);
    setBusy(false);
    if (!r.ok) {
      setError(r.error);
      return;
    }
    setError(null);
    setRows((prev) => (replace || !prev ? r.data.items : [...prev, ...r.data.items]));
    setCursor(r.data.nextCursor);
  };

  useEffect(() => {
    setDraft(applied);
    setRows(null);
    void load(null, true);
  }, [key]);
  useLive(applied.node || tree?.root?.id || null, () => void load(null, true), 3000, (e) => e.type === 'presence' || e.type === 'event');

  const submit = (e: Event) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const k of KEYS) if (draft[k]) q.set(k, draft[k]);
    navigate(`/terminals${q.size ? `?${q}` : ''}`);
  };
  const set = (k: keyof Filters) => (e: Event) => setDraft({ ...draft, [k]: (e.currentTarget as HTMLInputElement).value });
  const nodes = tree ? [...tree.byId.values()].sort((a, b) => a.id.localeCompare(b.id)) : [];

  return (
    <div class="page" data-page="terminals">
      <h1>{t('terminals.title')}</h1>
      <Section title={t('common.filter')} id="filters">
        <form class="filters" onSubmit={submit} role="search">
          <label>
            {t('terminals.q')}
            <input type="search" value={draft.q} onInput={set('q')} maxLength={64} />
          </label>
          <label>
            {t('station.presence')}
            <select value={draft.presence} onChange={set('presence')}>
              <option value="">{t('terminals.any')}</option>
              {(['online', 'offline', 'stale', 'unknown'] as const).map((p) => (
                <option key={p} value={p}>
                  {t(`presence.${p}`)}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t('terminals.fault')}
            <select value={draft.fault} onChange={set('fault')}>
              <option value="">{t('terminals.any')}</option>
              <option value="any">{t('terminals.anyFault')}</option>
              {PERIPHERAL_IDS.map((p) => (
                <option key={p} value={p}>
                  {peripheralLabel(p)}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t('station.type')}
            <select value={draft.type} onChange={set('type')}>
              <option value="">{t('terminals.any')}</option>
              {TERMINAL_TYPE_IDS.map((ty) => (
                <option key={ty} value={ty}>
                  {typeLabel(ty)}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t('config.node')}
            <select value={draft.node} onChange={set('node')}>
              <option value="">{t('terminals.any')}</option>
              {nodes.map((n) => (
                <option key={n.id} value={n.id}>
                  {n.id} {nodeName(tree, n.id)}
                </option>
              ))}
            </select>
          </label>
          <button type="submit" class="primary">
            {t('common.search')}
          </button>
        </form>
      </Section>
      <Section title={t('station.terminals')} id="results">
        {error && <ErrorNote error={error} what={t('terminals.title')} onRetry={() => void load(null, true)} />}
        {rows === null && !error && <p class="muted">{t('state.loading')}</p>}
        {rows !== null && rows.length === 0 && <p class="muted">{t('state.empty')}</p>}
        {rows !== null && rows.length > 0 && (
          <div class="table-wrap">
            <table class="results">
              <thead>
                <tr>
                  <th scope="col">{t('station.terminal')}</th>
                  <th scope="col">{t('station.presence')}</th>
                  <th scope="col">{t('terminals.fault')}</th>
                  <th scope="col">{t('terminal.station')}</th>
                  <th scope="col">{t('station.type')}</th>
                  <th scope="col">{t('terminal.lastSeen')}</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.id} data-row={r.id}>
                    <th scope="row">
                      <a href={`/terminals/${encodeURIComponent(r.id)}`}>{r.id}</a>
                    </th>
                    <td>
                      <PresenceBadge state={r.presence} flapping={r.flapping} />
                    </td>
                    <td>
                      {r.faults.map((p) => (
                        <span key={p} class="badge periph-fault">
                          {peripheralLabel(p)}
                        </span>
                      ))}
                    </td>
                    <td>
                      <a href={`/nodes/${encodeURIComponent(r.stationId)}`}>{nodeName(tree, r.stationId)}</a>
                    </td>
                    <td>{typeLabel(r.type)}</td>
                    <td>{formatShort(r.lastSeen)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {cursor && (
          <button type="button" disabled={busy} onClick={() => void load(cursor, false)}>
            {t('common.loadMore')}
          </button>
        )}
      </Section>
    </div>
  );
}
