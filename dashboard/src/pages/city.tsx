import { getSummary } from '../api.ts';
import { useResource } from '../hooks.ts';
import { pickName, t } from '../i18n/index.ts';
import { useLive } from '../live.ts';
import { useTree } from '../nodes.ts';
import { ChildTiles, ServicesTable } from '../components/overview.tsx';
import { OpenAlerts } from '../components/alerts-mini.tsx';
import { Problems } from '../components/problems.tsx';
import { NodePage } from './node.tsx';
import { CountsBar, Loadable } from '../components/ui.tsx';
import type { NodeSummary } from '../model.ts';
import type { Result } from '../api.ts';

export function CityPage() {
  const tree = useTree();
  // Scoped operators start at their own district or station.
  if (tree?.root && tree.root.level !== 'city') return <NodePage id={tree.root.id} />;
  if (tree && !tree.root)
    return (
      <div class="page" data-page="city">
        <h1>{t('city.title')}</h1>
        <p class="note">
          {t('city.empty')} <a href="/placement">{t('nav.placement')}</a>
        </p>
      </div>
    );
  return <CityOverview />;
}

function CityOverview() {
  const tree = useTree();
  const city = tree?.root?.id ?? null;
  const res = useResource<NodeSummary>(
    () => (city ? getSummary(city) : new Promise<Result<NodeSummary>>(() => {})),
    [city],
  );
  // A city's terminals report every few seconds between them: refresh the overview at most every 5 s.
  useLive(city, res.reload, 5000);
  return (
    <div class="page" data-page="city">
      <h1>{tree?.root ? pickName(tree.root.name) : t('city.title')}</h1>
      <Loadable res={res} what={t('city.title')}>
        {(s) => (
          <>
            <CountsBar counts={s.counts} />
            <div class="grid-2 overview-grid">
              <ChildTiles summary={s} title={t('city.districts')} />
              <div class="overview-side">
                <ServicesTable summary={s} childLabel={t('city.district')} />
                {city && <Problems node={city} debounceMs={5000} />}
                {city && <OpenAlerts node={city} />}
              </div>
            </div>
          </>
        )}
      </Loadable>
    </div>
  );
}
