import { useState } from 'preact/hooks';
import { getList, post } from '../api.ts';
import { useResource } from '../hooks.ts';
import { t } from '../i18n/index.ts';
import { useLive } from '../live.ts';
import { useTree } from '../nodes.ts';
import { formatShort } from '../format.ts';
import { Loadable, Section } from '../components/ui.tsx';

type Row = Record<string, any>;

function RolloutRow(props: { r: Row; onDone: () => void }) {
  const { r } = props;
  const [err, setErr] = useState<string | null>(null);
  const act = async (what: 'pause' | 'resume' | 'abort') => {
    const res = await post(`rollouts/${encodeURIComponent(String(r.id))}/${what}`, {});
    if (!res.ok) setErr(t('common.failed', { message: res.error.message }));
    else props.onDone();
  };
  const waves = (Array.isArray(r.waves) ? r.waves : []) as Row[];
  return (
    <li class="rollout" data-rollout={String(r.id)} data-state={String(r.state)}>
      <div class="ai-head">
        <strong>{String(r.releaseVersion ?? r.version ?? r.releaseId ?? r.id)}</strong>
        <span class="badge">{String(r.state)}</span>
        <span class="muted">{String(r.target ?? r.nodeId ?? '')}</span>
      </div>
      {waves.map((w, i) => {
        const total = Number(w.total ?? 0);
        const done = Number(w.done ?? w.committed ?? 0);
        return (
          <div key={i} class="wave">
            <span>{t('releases.wave', { n: i + 1 })}</span> <progress max={total || 1} value={done} aria-label={t('releases.wave', { n: i + 1 })} />{' '}
            <span class="muted">
              {done}/{total}
            </span>
          </div>
        );
      })}
      <div class="actions">
        {r.state === 'running' && (
          <button type="button" onClick={() => void act('pause')}>
            {t('releases.pause')}
          </button>
        )}
        {r.state === 'paused' && (
          <button type="button" onClick={() => void act('resume')}>
            {t('releases.resume')}
          </button>
        )}
        {(r.state === 'running' || r.state === 'paused') && (
          <button type="button" class="danger" onClick={() => void act('abort')}>
            {t('releases.abort')}
          </button>
        )}
      </div>
      {err && (
        <p class="note error" role="alert">
          {err}
        </p>
      )}
    </li>
  );
}

export function ReleasesPage() {
  const tree = useTree();
  const releases = useResource(() => getList('releases'), []);
  const rollouts = useResource(() => getList('rollouts'), []);
  useLive(tree?.root?.id ?? null, rollouts.reload, 1000, (e) => e.type === 'rollout' || e.type === 'update');
  const [release, setRelease] = useState('');
  const [target, setTarget] = useState('');
  const [msg, setMsg] = useState<string | null>(null);
  return (
    <div class="page" data-page="releases">
      <h1>{t('releases.title')}</h1>
      <div class="grid-2">
        <Section title={t('releases.releases')} id="releases">
          <Loadable res={releases} what={t('releases.releases')}>
            {(page) =>
              page.items.length === 0 ? (
                <p class="muted">{t('state.empty')}</p>
              ) : (
                <div class="table-wrap">
                  <table>
                    <thead>
                      <tr>
                        <th scope="col">{t('releases.version')}</th>
                        <th scope="col">{t('releases.kind')}</th>
                        <th scope="col">{t('releases.uploaded')}</th>
                      </tr>
                    </thead>
                    <tbody>
                      {page.items.map((r) => (
                        <tr key={String(r.id)}>
                          <td>{String(r.version)}</td>
                          <td>{String(r.kind)}</td>
                          <td>{formatShort(String(r.createdAt ?? ''))}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              )
            }
          </Loadable>
          {releases.state === 'ok' && (
            <form
              class="stack"
              onSubmit={async (e) => {
                e.preventDefault();
                const r = await post('rollouts', { releaseId: release, target });
                setMsg(r.ok ? t('common.done') : t('common.failed', { message: r.error.message }));
                rollouts.reload();
              }}
            >
              <h3>{t('releases.create')}</h3>
              <label for="ro-release">{t('releases.release')}</label>
              <select id="ro-release" required value={release} onChange={(e) => setRelease((e.currentTarget as HTMLSelectElement).value)}>
                <option value="">—</option>
                {(releases.data?.items ?? []).map((r) => (
                  <option key={String(r.id)} value={String(r.id)}>
                    {String(r.kind)} {String(r.version)}
                  </option>
                ))}
              </select>
              <label for="ro-target">{t('releases.target')}</label>
              <input id="ro-target" required value={target} onInput={(e) => setTarget((e.currentTarget as HTMLInputElement).value)} />
              <button type="submit" class="primary">
                {t('releases.submitCreate')}
              </button>
              {msg && <p role="status">{msg}</p>}
            </form>
          )}
        </Section>
        <Section title={t('releases.rollouts')} id="rollouts">
          <Loadable res={rollouts} what={t('releases.rollouts')}>
            {(page) =>
              page.items.length === 0 ? (
                <p class="muted">{t('state.empty')}</p>
              ) : (
                <ul class="rollouts">
                  {page.items.map((r) => (
                    <RolloutRow key={String(r.id)} r={r} onDone={rollouts.reload} />
                  ))}
                </ul>
              )
            }
          </Loadable>
        </Section>
      </div>
    </div>
  );
}
