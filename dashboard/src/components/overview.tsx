/**
 * The at-a-glance view of a city or a district: one tile per child node with its terminals online / offline / in
 * fault and the citizen services it cannot offer now, then the services across the node.
 */
import { SERVICES, type ServiceId } from '@kiosk-fleet/protocol';
import { pickName, t } from '../i18n/index.ts';
import type { ChildSummary, NodeSummary } from '../model.ts';
import { CountsBar, Section } from './ui.tsx';
import { nodeName, useTree } from '../nodes.ts';

/** Beyond this many places a list stops being readable at a glance. */
const SHOW_PLACES = 5;

function missingServices(child: ChildSummary): ServiceId[] {
  return child.services.filter((s) => s.total > 0 && s.available === 0).map((s) => s.service);
}

export function ChildTiles(props: { summary: NodeSummary; title: string }) {
  const { summary } = props;
  const tree = useTree();
  return (
    <Section title={props.title} id="children">
      <ul class="tiles">
        {summary.children.map((c) => {
          const missing = missingServices(c);
          const bad = c.counts.fault > 0 || c.counts.offline + c.counts.stale > 0 || missing.length > 0;
          return (
            <li key={c.node.id} class={bad ? 'tile warn' : 'tile'} data-node={c.node.id}>
              <a href={`/nodes/${encodeURIComponent(c.node.id)}`} class="tile-title">
                {nodeName(tree, c.node.id)}
              </a>
              <CountsBar counts={c.counts} />
              {missing.length > 0 && (
                <ul class="chips" aria-label={t('city.unavailableAt')}>
                  {missing.map((s) => (
                    <li key={s} class="chip down">
                      {pickName(SERVICES[s]?.name, s)}
                    </li>
                  ))}
                </ul>
              )}
            </li>
          );
        })}
      </ul>
    </Section>
  );
}

export function ServicesTable(props: { summary: NodeSummary; childLabel: string }) {
  const { summary } = props;
  const tree = useTree();
  return (
    <Section title={t('city.services')} id="services">
      <div class="table-wrap">
        <table class="services">
          <thead>
            <tr>
              <th scope="col">{t('city.service')}</th>
              <th scope="col">{t('city.availableNow')}</th>
              <th scope="col">{t('overview.stationsWithout')}</th>
            </tr>
          </thead>
          <tbody>
            {summary.services.map((s) => {
              // Stations, not districts: a district's total hides the one station that cannot issue ID cards.
              const where = s.stationsWithout;
              const share = s.total === 0 ? 1 : s.available / s.total;
              return (
                <tr key={s.service} data-service={s.service} class={s.available === 0 && s.total > 0 ? 'row-down' : ''}>
                  <th scope="row">{pickName(SERVICES[s.service]?.name, s.service)}</th>
                  <td class="num">
                    <meter min={0} max={1} low={0.5} high={0.9} optimum={1} value={share} aria-hidden="true" />{' '}
                    {t('city.availability', { n: s.available, total: s.total })}
                  </td>
                  <td>
                    {where.length === 0 ? (
                      <span class="muted">{t('overview.allStations')}</span>
                    ) : (
                      <>
                        {where.slice(0, SHOW_PLACES).map((id, i) => (
                          <span key={id} data-station={id}>
                            {i > 0 && '、'}
                            <a href={`/nodes/${encodeURIComponent(id)}`}>{nodeName(tree, id)}</a>
                          </span>
                        ))}
                        {where.length > SHOW_PLACES && <span class="muted"> {t('city.andMore', { n: where.length - SHOW_PLACES })}</span>}
                      </>
                    )}
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
