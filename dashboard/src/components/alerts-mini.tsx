import { listAlerts } from '../api.ts';
import { useResource } from '../hooks.ts';
import { t } from '../i18n/index.ts';
import { useLive } from '../live.ts';
import { formatDuration } from '../format.ts';
import { label } from '../labels.ts';
import { Loadable, Section } from './ui.tsx';

/** The open alerts under a node, worst and oldest first; the full queue (and its actions) is on the alerts page. */
export function OpenAlerts(props: { node: string }) {
  const res = useResource(() => listAlerts({ node: props.node, limit: 10 }), [props.node]);
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
                <li key={a.id} data-alert={a.id} data-rule={a.rule} data-terminal={a.terminalId ?? ''}>
                  <span class={`badge sev-${a.severity}`}>{label('severity', a.severity)}</span> {label('rule', a.rule)}{' '}
                  {a.terminalId && <a href={`/terminals/${encodeURIComponent(a.terminalId)}`}>{a.terminalId}</a>}{' '}
                  <span class="muted">{formatDuration(a.ageSeconds * 1000)}</span>
                </li>
              ))}
            </ul>
          )
        }
      </Loadable>
    </Section>
  );
}
