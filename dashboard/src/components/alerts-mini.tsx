import { getList } from '../api.ts';
import { useResource } from '../hooks.ts';
import { t } from '../i18n/index.ts';
import { useLive } from '../live.ts';
import { formatShort } from '../format.ts';
import { Loadable, Section } from './ui.tsx';

/** The open alerts under a node, newest first; the full queue is on the alerts page. */
export function OpenAlerts(props: { node: string }) {
  const res = useResource(() => getList('alerts', { node: props.node, status: 'open', limit: '10' }), [props.node]);
  useLive(props.node, res.reload, 1000, (e) => e.type === 'alert');
  return (
    <Section title={t('city.alerts')} id="open-alerts" actions={<a href="/alerts">{t('nav.alerts')} →</a>}>
      <Loadable res={res} what={t('nav.alerts')}>
        {(page) =>
          page.items.length === 0 ? (
            <p class="muted">{t('city.noAlerts')}</p>
          ) : (
            <ul class="alert-list">
              {page.items.map((a) => (
                <li key={String(a.id)} class={`sev-${String(a.severity)}`}>
                  <span class={`badge sev-${String(a.severity)}`}>{String(a.severity)}</span>{' '}
                  {a.terminalId ? <a href={`/terminals/${encodeURIComponent(String(a.terminalId))}`}>{String(a.terminalId)}</a> : String(a.nodeId ?? '')}{' '}
                  {String(a.rule ?? a.kind ?? '')} <span class="muted">{formatShort(String(a.openedAt ?? a.createdAt ?? ''))}</span>
                </li>
              ))}
            </ul>
          )
        }
      </Loadable>
    </Section>
  );
}
