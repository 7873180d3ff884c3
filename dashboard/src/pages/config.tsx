/**
 * Config layers per node (city, district, station) and per terminal: load a layer, edit it as JSON, preview the
 * change (a diff of the layer, and the hub's dry run: which terminals' effective config would change), then save
 * with the version read — the hub answers 409 when someone saved in between, and refuses an invalid config with
 * the path of each bad field.
 */
import { useEffect, useState } from 'preact/hooks';
import { nodeLevel } from '@kiosk-fleet/protocol';
import { dryRunConfig, getConfigLayer, saveConfigLayer, type DryRun, type Result } from '../api.ts';
import { useResource } from '../hooks.ts';
import { pickName, t } from '../i18n/index.ts';
import { navigate } from '../router.ts';
import { nodeName, useTree } from '../nodes.ts';
import { Loadable, Section } from '../components/ui.tsx';
import { configDiff } from '../config-diff.ts';

type Loaded = { version: number; settings: Record<string, unknown> };

const scopeOf = (target: string) => (nodeLevel(target) !== null ? 'node' : 'terminal');

function load(target: string): Promise<Result<Loaded>> {
  return getConfigLayer(scopeOf(target), target).then((r) => (r.ok ? { ok: true as const, data: { version: r.data.version, settings: r.data.config } } : r));
}

export function ConfigPage(props: { query: URLSearchParams }) {
  const tree = useTree();
  const target = props.query.get('target') ?? tree?.root?.id ?? '';
  const [terminalDraft, setTerminalDraft] = useState(nodeLevel(target) === null ? target : '');
  const res = useResource(() => (target ? load(target) : new Promise<never>(() => {})), [target]);
  const [reach, setReach] = useState<DryRun | null>(null);
  const [reason, setReason] = useState('');
  const [text, setText] = useState('');
  const [diff, setDiff] = useState<ReturnType<typeof configDiff> | null>(null);
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(null);
  useEffect(() => {
    if (res.state === 'ok') setText(JSON.stringify(res.data.settings, null, 2));
    setDiff(null);
    setReach(null);
  }, [res.state, res.data]);
  // A new target starts clean; a reload after saving keeps the "saved" message.
  useEffect(() => setMsg(null), [target]);
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
      <Section title={`${t('config.layerOf')} · ${nodeLevel(target) !== null ? nodeName(tree, target) : target}`} id="config-edit">
        <Loadable res={res} what={t('config.title')}>
          {(cfg) => (
            <form
              class="stack"
              onSubmit={async (e) => {
                e.preventDefault();
                const next = parse();
                if (next === undefined) return;
                const r = await saveConfigLayer(scopeOf(target), target, cfg.version, next, reason.trim());
                setMsg(
                  r.ok
                    ? { ok: true, text: t('config.saved', { version: r.data.version, pushed: r.data.pushed }) }
                    : { ok: false, text: r.error.status === 409 ? t('config.stale') : t('common.failed', { message: r.error.message }) },
                );
                if (r.ok) res.reload();
              }}
            >
              <p class="muted">{t('config.version', { version: cfg.version })}</p>
              <label for="cfg-text">{t('config.editor')}</label>
              <textarea id="cfg-text" rows={14} class="mono" value={text} onInput={(e) => setText((e.currentTarget as HTMLTextAreaElement).value)} />
              <label for="cfg-reason">{t('config.reason')}</label>
              <input id="cfg-reason" maxLength={500} value={reason} onInput={(e) => setReason((e.currentTarget as HTMLInputElement).value)} />
              <div class="row">
                <button
                  type="button"
                  onClick={async () => {
                    setMsg(null);
                    const next = parse();
                    if (next === undefined) return;
                    setDiff(configDiff(cfg.settings, next));
                    const r = await dryRunConfig(scopeOf(target), target, next);
                    if (r.ok) setReach(r.data);
                    else {
                      setReach(null);
                      setMsg({ ok: false, text: t('common.failed', { message: r.error.message }) });
                    }
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
                  {reach && (
                    <p data-testid="config-reach">
                      {t('config.affected', { n: reach.changed })} <span class="muted">{t('config.unaffected', { n: reach.unchanged })}</span>
                      {reach.terminals.length > 0 && (
                        <span class="muted">
                          {' '}
                          · {reach.terminals.slice(0, 8).map((x) => x.terminalId).join(', ')}
                          {reach.terminals.length > 8 ? ' …' : ''}
                        </span>
                      )}
                    </p>
                  )}
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
