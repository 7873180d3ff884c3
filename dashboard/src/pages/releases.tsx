/**
 * Releases (signed artifacts) and rollouts along the tree: upload a packed release, start a rollout (a pilot
 * station first, then the rest of the chosen node), follow each wave live, pause / resume / abort.
 */
import { useState } from 'preact/hooks';
import { createRollout, getReleases, getRollouts, rolloutAction, uploadRelease, type ApiError, type RolloutRow } from '../api.ts';
import { useResource } from '../hooks.ts';
import { pickName, t } from '../i18n/index.ts';
import { useLive } from '../live.ts';
import { nodeName, useTree } from '../nodes.ts';
import { formatBytes, formatShort } from '../format.ts';
import { label, typeLabel } from '../labels.ts';
import { Loadable, Section } from '../components/ui.tsx';

const DONE = ['committed', 'soaked'];

/** The hub's 409 for a rollout over terminals another unfinished one covers, said in the user's language. */
function conflictText(e: ApiError): { text: string; rolloutId: string } | null {
  const d = e.details as { rolloutId?: string; releaseId?: string; status?: string; terminals?: string[] } | undefined;
  if (e.code !== 'rollout-conflict' || !d?.rolloutId || !d.terminals) return null;
  const shown = d.terminals.slice(0, 8).join('、') + (d.terminals.length > 8 ? ' …' : '');
  return {
    rolloutId: d.rolloutId,
    text: t('releases.conflict', { n: d.terminals.length, id: d.rolloutId, release: d.releaseId ?? '', status: label('releases.status', d.status ?? ''), terminals: shown }),
  };
}
const FAILED = ['failed', 'unhealthy', 'rolling-back'];

function Wave(props: { w: RolloutRow['waves'][number]; current: boolean }) {
  const { w } = props;
  const done = DONE.reduce((n, k) => n + (w.counts[k] ?? 0), 0);
  const failed = FAILED.reduce((n, k) => n + (w.counts[k] ?? 0), 0);
  const name = t('releases.wave', { n: w.wave + 1 });
  return (
    <div class={props.current ? 'wave current' : 'wave'} data-wave={w.wave}>
      <span>
        {name} <span class="muted">({w.name})</span>
      </span>
      <progress max={w.size || 1} value={done} aria-label={name} />
      <span class="muted" data-testid="wave-count">
        {done}/{w.size}
        {failed > 0 && <span class="badge periph-fault">{t('releases.failed', { n: failed })}</span>}
        {w.passed && ` · ${t('releases.passed')}`}
      </span>
    </div>
  );
}

function RolloutItem(props: { r: RolloutRow; onDone: () => void }) {
  const tree = useTree();
  const { r } = props;
  const [err, setErr] = useState<string | null>(null);
  const act = async (what: 'pause' | 'resume' | 'abort') => {
    setErr(null);
    const res = await rolloutAction(r.id, what);
    if (!res.ok) setErr(t('common.failed', { message: res.error.message }));
    props.onDone();
  };
  return (
    <li class="rollout" id={`rollout-${r.id}`} data-rollout={r.id} data-status={r.status}>
      <div class="ai-head">
        <strong>{r.version}</strong>
        <span class={`badge rollout-${r.status}`}>{label('releases.status', r.status)}</span>
        <span class="muted">{r.nodeIds.map((n) => nodeName(tree, n)).join('、')}</span>
        {r.urgent && <span class="badge sev-critical">{t('releases.urgent')}</span>}
      </div>
      {r.pauseReason && (
        <p class="note">
          {label('releases.reason', r.pauseReason.code)}: {r.pauseReason.message}
        </p>
      )}
      {r.waves.map((w) => (
        <Wave key={w.wave} w={w} current={w.wave === r.wave && r.status === 'running'} />
      ))}
      <div class="actions">
        {r.status === 'running' && (
          <button type="button" onClick={() => void act('pause')}>
            {t('releases.pause')}
          </button>
        )}
        {r.status === 'paused' && (
          <button type="button" onClick={() => void act('resume')}>
            {t('releases.resume')}
          </button>
        )}
        {(r.status === 'running' || r.status === 'paused') && (
          <button type="button" class="danger" onClick={() => void act('abort')}>
            {t('releases.abort')}
          </button>
        )}
        <span class="muted">
          {formatShort(r.createdAt)} · {r.createdBy}
        </span>
      </div>
      {err && (
        <p class="note error" role="alert">
          {err}
        </p>
      )}
    </li>
  );
}

function Upload(props: { onDone: () => void }) {
  const [files, setFiles] = useState<{ artifact?: File; manifest?: File; signature?: File }>({});
  const [busy, setBusy] = useState(false);
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(null);
  const pick = (k: 'artifact' | 'manifest' | 'signature') => (e: Event) => {
    const f = (e.currentTarget as HTMLInputElement).files?.[0];
    setFiles((prev) => ({ ...prev, [k]: f }));
  };
  return (
    <form
      class="stack"
      onSubmit={async (e) => {
        e.preventDefault();
        if (!files.artifact || !files.manifest || !files.signature) return;
        setBusy(true);
        setMsg(null);
        const r = await uploadRelease(files.artifact, files.manifest, files.signature);
        setBusy(false);
        setMsg(r.ok ? { ok: true, text: t('releases.uploaded', { version: r.data.version }) } : { ok: false, text: t('common.failed', { message: r.error.message }) });
        if (r.ok) props.onDone();
      }}
    >
      <h3>{t('releases.upload')}</h3>
      <label for="rel-artifact">{t('releases.artifact')}</label>
      <input id="rel-artifact" type="file" accept=".gz,.tgz,application/gzip" required onChange={pick('artifact')} />
      <label for="rel-manifest">{t('releases.manifest')}</label>
      <input id="rel-manifest" type="file" accept=".json,application/json" required onChange={pick('manifest')} />
      <label for="rel-signature">{t('releases.signature')}</label>
      <input id="rel-signature" type="file" accept=".sig" required onChange={pick('signature')} />
      <button type="submit" class="primary" disabled={busy}>
        {busy ? t('common.saving') : t('releases.uploadSubmit')}
      </button>
      {busy && <progress aria-label={t('releases.upload')} />}
      {msg && (
        <p class={msg.ok ? 'note ok' : 'note error'} role="status">
          {msg.text}
        </p>
      )}
    </form>
  );
}

export function ReleasesPage() {
  const tree = useTree();
  const releases = useResource(() => getReleases(), []);
  const rollouts = useResource(() => getRollouts(), []);
  useLive(tree?.root?.id ?? null, rollouts.reload, 1000, (e) => e.type === 'rollout' || e.type === 'update');
  const [release, setRelease] = useState('');
  const [target, setTarget] = useState('');
  const [pilot, setPilot] = useState('');
  const [urgent, setUrgent] = useState(false);
  const [msg, setMsg] = useState<{ ok: boolean; text: string; rolloutId?: string } | null>(null);
  const nodes = tree ? [...tree.byId.values()].sort((a, b) => a.id.localeCompare(b.id)) : [];
  const stations = nodes.filter((n) => n.level === 'station' && (!target || n.id.startsWith(`${target}-`) || n.id === target));
  return (
    <div class="page" data-page="releases">
      <h1>{t('releases.title')}</h1>
      <div class="grid-2">
        <div>
          <Section title={t('releases.rollouts')} id="rollouts">
            <Loadable res={rollouts} what={t('releases.rollouts')}>
              {(items) =>
                items.length === 0 ? (
                  <p class="muted">{t('state.empty')}</p>
                ) : (
                  <ul class="rollouts">
                    {items.map((r) => (
                      <RolloutItem key={r.id} r={r} onDone={rollouts.reload} />
                    ))}
                  </ul>
                )
              }
            </Loadable>
          </Section>
        </div>
        <div>
          <Section title={t('releases.releases')} id="releases">
            <Loadable res={releases} what={t('releases.releases')}>
              {(items) => (
                <>
                  {items.length === 0 ? (
                    <p class="muted">{t('state.empty')}</p>
                  ) : (
                    <div class="table-wrap">
                      <table class="results">
                        <thead>
                          <tr>
                            <th scope="col">{t('releases.version')}</th>
                            <th scope="col">{t('releases.kind')}</th>
                            <th scope="col">{t('releases.types')}</th>
                            <th scope="col">{t('releases.size')}</th>
                            <th scope="col">{t('releases.uploadedAt')}</th>
                          </tr>
                        </thead>
                        <tbody>
                          {items.map((r) => (
                            <tr key={r.id} data-release={r.id}>
                              <th scope="row">{r.version}</th>
                              <td>{label('releases.kind', r.kind)}</td>
                              <td>{r.terminalTypes.map(typeLabel).join('、') || '—'}</td>
                              <td>{formatBytes(r.size)}</td>
                              <td>{formatShort(r.uploadedAt)}</td>
                            </tr>
                          ))}
                        </tbody>
                      </table>
                    </div>
                  )}
                  {items.length > 0 && (
                    <form
                      class="stack"
                      onSubmit={async (e) => {
                        e.preventDefault();
                        setMsg(null);
                        const r = await createRollout({ releaseId: release, nodeIds: [target], pilotStations: pilot ? [pilot] : [], urgent });
                        const conflict = r.ok ? null : conflictText(r.error);
                        setMsg(
                          r.ok
                            ? { ok: true, text: t('releases.started') }
                            : conflict
                              ? { ok: false, ...conflict }
                              : { ok: false, text: t('common.failed', { message: r.error.message }) },
                        );
                        rollouts.reload();
                      }}
                    >
                      <h3>{t('releases.create')}</h3>
                      <label for="ro-release">{t('releases.release')}</label>
                      <select id="ro-release" required value={release} onChange={(e) => setRelease((e.currentTarget as HTMLSelectElement).value)}>
                        <option value="">—</option>
                        {items.map((r) => (
                          <option key={r.id} value={r.id}>
                            {label('releases.kind', r.kind)} {r.version}
                          </option>
                        ))}
                      </select>
                      <label for="ro-target">{t('releases.target')}</label>
                      <select id="ro-target" required value={target} onChange={(e) => setTarget((e.currentTarget as HTMLSelectElement).value)}>
                        <option value="">—</option>
                        {nodes
                          .filter((n) => n.level !== 'station')
                          .map((n) => (
                            <option key={n.id} value={n.id}>
                              {n.id} {pickName(n.name)}
                            </option>
                          ))}
                      </select>
                      <label for="ro-pilot">{t('releases.pilot')}</label>
                      <select id="ro-pilot" value={pilot} onChange={(e) => setPilot((e.currentTarget as HTMLSelectElement).value)}>
                        <option value="">{t('releases.noPilot')}</option>
                        {stations.map((n) => (
                          <option key={n.id} value={n.id}>
                            {n.id} {pickName(n.name)}
                          </option>
                        ))}
                      </select>
                      <label class="check">
                        <input type="checkbox" checked={urgent} onChange={(e) => setUrgent((e.currentTarget as HTMLInputElement).checked)} /> {t('releases.urgent')}
                      </label>
                      <button type="submit" class="primary">
                        {t('releases.submitCreate')}
                      </button>
                      {msg && (
                        <p class={msg.ok ? 'note ok' : 'note error'} role="status" data-testid="rollout-create-result">
                          {msg.text}{' '}
                          {msg.rolloutId && <a href={`#rollout-${msg.rolloutId}`}>{t('releases.showRollout')}</a>}
                        </p>
                      )}
                    </form>
                  )}
                </>
              )}
            </Loadable>
            <Upload onDone={releases.reload} />
          </Section>
        </div>
      </div>
    </div>
  );
}
