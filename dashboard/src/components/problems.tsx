/**
 * "What is broken, where, since when": the terminals under a node that are offline, stale or have a peripheral in
 * fault, worst first, each linked to its page. The technician's starting point on the city and district pages.
 */
import { listTerminals, type Result } from '../api.ts';
import { useResource } from '../hooks.ts';
import { t } from '../i18n/index.ts';
import { useLive } from '../live.ts';
import { nodeName, useTree } from '../nodes.ts';
import { formatShort } from '../format.ts';
import type { TerminalRow } from '../model.ts';
import { peripheralLabel } from '../labels.ts';
import { Loadable, PresenceBadge, Section } from './ui.tsx';

const LIMIT = 20;

async function problems(node: string): Promise<Result<{ items: TerminalRow[]; more: boolean }>> {
  const [faults, offline, stale] = await Promise.all([
    listTerminals({ node, fault: 'any', limit: String(LIMIT) }),
    listTerminals({ node, presence: 'offline', limit: String(LIMIT) }),
    listTerminals({ node, presence: 'stale', limit: String(LIMIT) }),
  ]);
  for (const r of [faults, offline, stale]) if (!r.ok) return r;
  const byId = new Map<string, TerminalRow>();
  for (const r of [offline, stale, faults]) if (r.ok) for (const row of r.data.items) byId.set(row.id, row);
  const rank = (r: TerminalRow) => (r.presence === 'online' ? 1 : 0);
  const items = [...byId.values()].sort(
    (a, b) => rank(a) - rank(b) || (a.presenceSince ?? '').localeCompare(b.presenceSince ?? '') || a.id.localeCompare(b.id),
  );
  const more = [faults, offline, stale].some((r) => r.ok && r.data.nextCursor !== null);
  return { ok: true, data: { items, more } };
}

export function Problems(props: { node: string; debounceMs: number }) {
  const tree = useTree();
  const res = useResource(() => problems(props.node), [props.node]);
  useLive(props.node, res.reload, props.debounceMs, (e) => e.type !== 'command' && e.type !== 'config');
  return (
    <Section title={t('problems.title')} id="problems">
      <Loadable res={res} what={t('problems.title')}>
        {({ items, more }) =>
          items.length === 0 ? (
            <p class="muted">{t('problems.none')}</p>
          ) : (
            <>
              <ul class="problems">
                {items.map((r) => (
                  <li key={r.id} data-problem={r.id}>
                    <a href={`/terminals/${encodeURIComponent(r.id)}`}>{r.id}</a>
                    <PresenceBadge state={r.presence} flapping={r.flapping} />
                    {r.faults.map((p) => (
                      <span key={p} class="badge periph-fault">
                        {peripheralLabel(p)}
                      </span>
                    ))}
                    <span class="muted">
                      {nodeName(tree, r.stationId)}
                      {r.presence !== 'online' && r.presenceSince ? ` · ${t('terminal.since', { time: formatShort(r.presenceSince) })}` : ''}
                    </span>
                  </li>
                ))}
              </ul>
              {more && <p class="muted">{t('problems.more', { n: LIMIT })}</p>}
            </>
          )
        }
      </Loadable>
    </Section>
  );
}
