/**
 * Desired config per node or per terminal: load, edit (JSON), preview the change as a diff with the number of
 * terminals it reaches, then save with the version read (the hub answers 409 when someone saved in between).
 * The hub has the terminal layer today; node layers (inheritance city → district → station) come with the config
 * issue, and until then the node target says "not available yet".
 */
import { useEffect, useState } from 'preact/hooks';
import { nodeLevel } from '@kiosk-fleet/protocol';
import { getConfigNode, getSummary, getTerminalConfig, saveConfigNode, saveTerminalConfig, type Result } from '../api.ts';
import { useResource } from '../hooks.ts';
import { pickName, t } from '../i18n/index.ts';
import { navigate } from '../router.ts';
import { useTree } from '../nodes.ts';
import { Loadable, Section } from '../components/ui.tsx';
import { configDiff } from '../config-diff.ts';

type Loaded = { version: number; settings: Record<string, unknown> };

function load(target: string): Promise<Result<Loaded>> {
  if (nodeLevel(target) !== null) return getConfigNode(target);
  return getTerminalConfig(target).then((r) =>
    r.ok ? { ok: true as const, data: { version: r.data.version, settings: (r.data.config ?? {}) as Record<string, unknown> } } : r,
  );
}

async function save(target: string, version: number, settings: Record<string, unknown>): Promise<Result<{ version: number }>> {
  if (nodeLevel(target) !== null) return saveConfigNode(target, version, settings);
  const r = await saveTerminalConfig(target, version, settings);
  return r.ok ? { ok: true, data: { version: r.data.version } } : r;
}

export function ConfigPage(props: { query: URLSearchParams }) {
  const tree = useTree();
  const target = props.query.get('target') ?? tree?.root?.id ?? '';
  const [terminalDraft, setTerminalDraft] = useState(nodeLevel(target) === null ? target : '');
  const res = useResource(() => (target ? load(target) : new Promise<never>(() => {})), [target]);
  const affected = useResource(
    () => (target && nodeLevel(target) !== null ? getSummary(target, false) : new Promise<never>(() => {})),
    [target],
  );
  const [text, setText] = useState('');
  const [diff, setDiff] = useState<ReturnType<typeof configDiff> | null>(null);
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(null);
  useEffect(() => {
    if (res.state === 'ok') setText(JSON.stringify(res.data.settings, null, 2));
    setDiff(null);
    setMsg(null);
  }, [res.state, res.data]);
  const nodes = tree ? [...tree.byId.values()].sort((a, b) => a.id.localeCompare(b.id)) : [];
  const parse = (): Record<string, unknown> | undefined => {
    try {
      const v: unknown = JSON.parse(text);
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('{ … }');
      return v as Record<string, unknown>;
    } catch (e) {
      setMsg({ ok: false, text: t('config.invalidJson', { message: e instanceof Error ? e.message : String(e) }) });
      return undefined;
    }
  };
  const go = (to: string) => navigate(`/config?target=${encodeURIComponent(to)}`);
  const reach = nodeLevel(target) === null ? 1 : affected.data?.counts.total;
  return (
    <div class="page" data-page="config">
      <h1>{t('config.title')}</h1>
      <Section title={t('config.target')} id="config-target">
        <div class="filters">
          <label>
            {t('config.node')}
            <select value={nodeLevel(target) !== null ? target : ''} onChange={(e) => go((e.currentTarget as HTMLSelectElement).value)}>
              <option value="" disabled>
                —
              </option>
              {nodes.map((n) => (
                <option key={n.id} value={n.id}>
                  {n.id} {pickName(n.name)}
                </option>
              ))}
            </select>
          </label>
          <form
            class="filters"
            onSubmit={(e) => {
              e.preventDefault();
              if (terminalDraft.trim()) go(terminalDraft.trim());
            }}
          >
            <label>
              {t('config.terminal')}
              <input value={terminalDraft} onInput={(e) => setTerminalDraft((e.currentTarget as HTMLInputElement).value)} />
            </label>
            <button type="submit">{t('config.open')}</button>
          </form>
        </div>
      </Section>
      <Section title={`${t('config.editor')} · ${target}`} id="config-edit">
        <Loadable res={res} what={t('config.title')}>
          {(cfg) => (
            <form
              class="stack"
              onSubmit={async (e) => {
                e.preventDefault();
                const next = parse();
                if (next === undefined) return;
                const r = await save(target, cfg.version, next);
                setMsg(r.ok ? { ok: true, text: t('config.saved', { version: r.data.version }) } : { ok: false, text: t('common.failed', { message: r.error.message }) });
                if (r.ok) res.reload();
              }}
            >
              <p class="muted">{t('config.version', { version: cfg.version })}</p>
              <label for="cfg-text">{t('config.editor')}</label>
              <textarea id="cfg-text" rows={14} class="mono" value={text} onInput={(e) => setText((e.currentTarget as HTMLTextAreaElement).value)} />
              <div class="row">
                <button
                  type="button"
                  onClick={() => {
                    setMsg(null);
                    const next = parse();
                    if (next !== undefined) setDiff(configDiff(cfg.settings, next));
                  }}
                >
                  {t('config.preview')}
                </button>
                <button type="submit" class="primary" disabled={!diff || diff.length === 0}>
                  {t('config.save')}
                </button>
              </div>
              {diff && (
                <div data-testid="config-diff">
                  {reach !== undefined && <p>{t('config.affected', { n: reach })}</p>}
                  <h3>{t('config.diff')}</h3>
                  {diff.length === 0 ? (
                    <p class="muted">{t('config.noChange')}</p>
                  ) : (
                    <ul class="diff">
                      {diff.map((d) => (
                        <li key={d.key}>
                          <code>{d.key}</code>: <del>{JSON.stringify(d.from) ?? '—'}</del> → <ins>{JSON.stringify(d.to) ?? '—'}</ins>
                        </li>
                      ))}
                    </ul>
                  )}
                </div>
              )}
            </form>
          )}
        </Loadable>
        {msg && (
          <p class={msg.ok ? 'note ok' : 'note error'} role="status">
            {msg.text}
          </p>
        )}
      </Section>
    </div>
  );
}
