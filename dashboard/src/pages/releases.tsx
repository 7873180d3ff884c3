/**
 * Releases (signed artifacts) and rollouts along the tree: upload a packed release, start a rollout (a pilot
 * station first, then the rest of the chosen node), follow each wave live, pause / resume / abort.
 */
import { useState } from 'preact/hooks';
import type { Tree } from '../nodes.ts';
import { createRollout, getReleases, getRollout, getRollouts, listTerminals, rolloutAction, uploadRelease, type ApiError, type ReleaseRow, type RolloutRow, type RolloutTerminal } from '../api.ts';
import { useResource } from '../hooks.ts';
import { pickName, t } from '../i18n/index.ts';
import { useLive } from '../live.ts';
import { nodeName, useTree } from '../nodes.ts';
import { formatBytes, formatShort } from '../format.ts';
import { label, typeLabel } from '../labels.ts';
import { errorText, hubText } from '../hub-text.ts';
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
/** A terminal's failure in the reader's language: the hub's verdict text, else the agent's error code by name. */
function terminalError(e: NonNullable<RolloutTerminal['error']>): string {
  return hubText(e.text ?? { code: 'rollout.terminal-error', params: { error: e.code } }, null, e.code);
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
        {name} <span class="muted">({label('releases.waveName', w.name)})</span>
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

const IN_PROGRESS = ['targeted', 'downloading', 'verifying', 'waiting', 'installing', 'switching', 'restarting', 'health-check', 'idle'];

/**
 * Why the current wave has not passed yet, and when it will if nothing goes wrong: the gate needs `successRatio` of
 * the wave committed and healthy for the soak time; the hub checks every 30 s, so the time is "about".
 */
export function waveWait(r: RolloutRow, terminals: Record<string, RolloutTerminal>): { text: string; at: number | null } | null {
  if (r.status !== 'running' || !r.gate) return null;
  const inWave = Object.values(terminals).filter((x) => x.wave === r.wave);
  if (inWave.length === 0) return null;
  const needed = Math.ceil(inWave.length * r.gate.successRatio - 1e-9);
  const soaked = inWave.filter((x) => x.phase === 'soaked').length;
  const soakEnds = inWave
    .filter((x) => x.phase === 'committed' && x.committedAt !== null)
    .map((x) => x.committedAt! + r.gate!.soakMinutes * 60_000)
    .sort((a, b) => a - b);
  const next = r.wave + 1 < r.waves.length ? t('releases.wave', { n: r.wave + 2 }) : t('releases.theEnd');
  if (soaked + soakEnds.length >= needed) {
    const at = soakEnds[needed - soaked - 1] ?? Date.now();
    return { text: t('releases.waitSoak', { next, time: formatShort(at), minutes: r.gate.soakMinutes }), at };
  }
  const missing = needed - soaked - soakEnds.length;
  const by = (phases: string[]) => inWave.filter((x) => phases.includes(x.phase)).length;
  const parts = [
    [by(['pending']), 'releases.waitPending'],
    [by(['targeted', 'idle']), 'releases.waitTargeted'],
    [by(['waiting']), 'releases.waitWindow'],
    [by(['downloading', 'verifying', 'installing', 'switching', 'restarting', 'health-check']), 'releases.waitInstalling'],
  ] as const;
  const why = parts.filter(([n]) => n > 0).map(([n, key]) => t(key, { n }));
  return { text: t('releases.waitInstall', { next, missing, why: why.join(t('releases.sep')) || '—' }), at: null };
}

function TerminalLinks(props: { items: [string, RolloutTerminal][]; testid: string; title: string }) {
  if (props.items.length === 0) return null;
  const shown = props.items.slice(0, 30);
  return (
    <div data-testid={props.testid}>
      <p class="muted">{props.title}</p>
      <ul class="terminal-links">
        {shown.map(([id, x]) => (
          <li key={id} data-terminal={id}>
            <a href={`/terminals/${encodeURIComponent(id)}`}>{id}</a> <span class="muted">{label('releases.phase', x.phase)}{x.error ? ` · ${terminalError(x.error)}` : ''}</span>
          </li>
        ))}
      </ul>
      {props.items.length > shown.length && <p class="muted">{t('placement.previewMore', { n: props.items.length - shown.length })}</p>}
    </div>
  );
}

function RolloutItem(props: { r: RolloutRow; onDone: () => void }) {
  const tree = useTree();
  const { r } = props;
  const open = r.status === 'running' || r.status === 'paused';
  // Per-terminal state only for unfinished rollouts (the list has counts only); refreshed with the list.
  const detail = useResource(() => (open ? getRollout(r.id) : Promise.resolve({ ok: true as const, data: null })), [r.id, r.updatedAt, open]);
  const [err, setErr] = useState<string | null>(null);
  const act = async (what: 'pause' | 'resume' | 'abort') => {
    const terminals = r.waves.reduce((n, w) => n + w.size, 0);
    if (what === 'abort' && !confirm(t('releases.abortConfirm', { version: r.version, n: terminals }))) return;
    setErr(null);
    const res = await rolloutAction(r.id, what);
    if (!res.ok) setErr(t('common.failed', { message: errorText(res.error) }));
    props.onDone();
  };
  const terms = detail.data ? Object.entries(detail.data.terminals).sort(([a], [b]) => a.localeCompare(b)) : [];
  const failing = terms.filter(([, x]) => FAILED.includes(x.phase) || x.phase === 'rolled-back');
  const missing = terms.filter(([, x]) => x.wave <= r.wave && (x.phase === 'pending' || IN_PROGRESS.includes(x.phase)));
  const wait = detail.data ? waveWait(r, detail.data.terminals) : null;
  return (
    <li class="rollout" id={`rollout-${r.id}`} data-rollout={r.id} data-status={r.status}>
      <div class="ai-head">
        <strong>{r.version}</strong>
        <span class={`badge rollout-${r.status}`}>{label('releases.status', r.status)}</span>
        <span class="muted">{r.nodeIds.map((n) => nodeName(tree, n)).join('、')}</span>
        {r.urgent && <span class="badge sev-critical">{t('releases.urgent')}</span>}
      </div>
      {r.gate && (
        <p class="muted" data-testid="gate">
          {t('releases.gateShown', { percent: Math.round((1 - r.gate.successRatio) * 100), minutes: r.gate.soakMinutes })}
        </p>
      )}
      {r.pauseReason && (
        <p class="note">
          {label('releases.reason', r.pauseReason.code)}: <span data-testid="pause-reason">{hubText(r.pauseReason.text, tree, r.pauseReason.message)}</span>
        </p>
      )}
      {r.waves.map((w) => (
        <Wave key={w.wave} w={w} current={w.wave === r.wave && r.status === 'running'} />
      ))}
      {wait && (
        <p class="note" data-testid="wave-wait">
          {wait.text}
        </p>
      )}
      <TerminalLinks items={failing} testid="failing" title={t('releases.failingList', { n: failing.length })} />
      <TerminalLinks items={missing} testid="missing" title={t('releases.missingList', { n: missing.length })} />
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
        setMsg(r.ok ? { ok: true, text: t('releases.uploaded', { version: r.data.version }) } : { ok: false, text: t('common.failed', { message: errorText(r.error) }) });
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

/** What a rollout will reach, worked out before it starts: the terminals of the release's types under the target. */
interface Reach {
  terminals: number;
  stations: string[];
  pilotTerminals: number;
}

async function reachOf(release: ReleaseRow, target: string, pilot: string): Promise<Reach | string> {
  const r = await listTerminals({ node: target, limit: '1000' });
  if (!r.ok) return errorText(r.error);
  const items = r.data.items.filter((x) => release.terminalTypes.length === 0 || release.terminalTypes.includes(x.type));
  return {
    terminals: items.length,
    stations: [...new Set(items.map((x) => x.stationId))].sort(),
    pilotTerminals: pilot ? items.filter((x) => x.stationId === pilot).length : 0,
  };
}

function CreateRollout(props: { releases: ReleaseRow[]; tree: Tree | null; onDone: () => void }) {
  const { tree } = props;
  const [release, setRelease] = useState('');
  const [target, setTarget] = useState('');
  const [pilot, setPilot] = useState('');
  const [urgent, setUrgent] = useState(false);
  const [soak, setSoak] = useState('30');
  const [allowed, setAllowed] = useState('0');
  const [reach, setReach] = useState<Reach | null>(null);
  const [msg, setMsg] = useState<{ ok: boolean; text: string; rolloutId?: string } | null>(null);
  const nodes = tree ? [...tree.byId.values()].sort((a, b) => a.id.localeCompare(b.id)) : [];
  const stations = nodes.filter((n) => n.level === 'station' && (!target || n.id.startsWith(`${target}-`) || n.id === target));
  const rel = props.releases.find((r) => r.id === release);
  const stationNames = (ids: string[]) => ids.slice(0, 12).map((id) => nodeName(tree, id)).join('、') + (ids.length > 12 ? ` …（${ids.length}）` : '');
  const edit = <T,>(set: (v: T) => void) => (v: T) => {
    set(v);
    setReach(null);
  };
  return (
    <form
      class="stack"
      data-testid="create-rollout"
      onSubmit={async (e) => {
        e.preventDefault();
        setMsg(null);
        if (!rel) return;
        // First press: say what it will reach; the second (confirm) starts it.
        if (!reach) {
          const r = await reachOf(rel, target, pilot);
          if (typeof r === 'string') setMsg({ ok: false, text: t('common.failed', { message: r }) });
          else setReach(r);
          return;
        }
        const r = await createRollout({
          releaseId: release,
          nodeIds: [target],
          pilotStations: pilot ? [pilot] : [],
          urgent,
          gate: { soakMinutes: Number(soak), successRatio: 1 - Number(allowed) / 100 },
        });
        const conflict = r.ok ? null : conflictText(r.error);
        setMsg(r.ok ? { ok: true, text: t('releases.started') } : conflict ? { ok: false, ...conflict } : { ok: false, text: t('common.failed', { message: errorText(r.error) }) });
        setReach(null);
        props.onDone();
      }}
    >
      <h3>{t('releases.create')}</h3>
      <label for="ro-release">{t('releases.release')}</label>
      <select id="ro-release" required value={release} onChange={(e) => edit(setRelease)((e.currentTarget as HTMLSelectElement).value)}>
        <option value="">—</option>
        {props.releases.map((r) => (
          <option key={r.id} value={r.id}>
            {label('releases.kind', r.kind)} {r.version}
          </option>
        ))}
      </select>
      <label for="ro-target">{t('releases.target')}</label>
      <select id="ro-target" required value={target} onChange={(e) => edit(setTarget)((e.currentTarget as HTMLSelectElement).value)}>
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
      <select id="ro-pilot" value={pilot} onChange={(e) => edit(setPilot)((e.currentTarget as HTMLSelectElement).value)}>
        <option value="">{t('releases.noPilot')}</option>
        {stations.map((n) => (
          <option key={n.id} value={n.id}>
            {n.id} {pickName(n.name)}
          </option>
        ))}
      </select>
      <label for="ro-soak">{t('releases.soak')}</label>
      <input id="ro-soak" type="number" min={0} max={10080} required value={soak} onInput={(e) => edit(setSoak)((e.currentTarget as HTMLInputElement).value)} />
      <label for="ro-allowed">{t('releases.allowedFailures')}</label>
      <input id="ro-allowed" type="number" min={0} max={99} required value={allowed} onInput={(e) => edit(setAllowed)((e.currentTarget as HTMLInputElement).value)} />
      <label class="check">
        <input type="checkbox" checked={urgent} onChange={(e) => edit(setUrgent)((e.currentTarget as HTMLInputElement).checked)} /> {t('releases.urgent')}
      </label>
      {reach && rel && (
        <div class="note" role="status" data-testid="rollout-confirm">
          <p>
            {t('releases.confirmReach', { version: rel.version, n: reach.terminals, m: reach.stations.length, stations: stationNames(reach.stations) })}
          </p>
          <p>{pilot ? t('releases.confirmPilot', { station: nodeName(tree, pilot), n: reach.pilotTerminals }) : t('releases.confirmNoPilot')}</p>
          <p>{t('releases.gateShown', { percent: Number(allowed), minutes: Number(soak) })}</p>
          <p>{urgent ? t('releases.confirmUrgent') : t('releases.confirmWindow')}</p>
        </div>
      )}
      <div class="row">
        <button type="submit" class="primary" disabled={!!reach && reach.terminals === 0}>
          {reach ? t('releases.confirmStart', { n: reach.terminals }) : t('releases.submitCreate')}
        </button>
        {reach && (
          <button type="button" onClick={() => setReach(null)}>
            {t('common.cancel')}
          </button>
        )}
      </div>
      {msg && (
        <p class={msg.ok ? 'note ok' : 'note error'} role="status" data-testid="rollout-create-result">
          {msg.text} {msg.rolloutId && <a href={`#rollout-${msg.rolloutId}`}>{t('releases.showRollout')}</a>}
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
                  {items.length > 0 && <CreateRollout releases={items} tree={tree} onDone={rollouts.reload} />}
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
