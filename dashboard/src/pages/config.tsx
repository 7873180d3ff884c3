import { useEffect, useState } from 'preact/hooks';
import { getConfigNode, getSummary, saveConfigNode } from '../api.ts';
import { useResource } from '../hooks.ts';
import { pickName, t } from '../i18n/index.ts';
import { useTree } from '../nodes.ts';
import { Loadable, Section } from '../components/ui.tsx';

type Flat = Record<string, unknown>;

function flatten(obj: unknown, prefix = '', out: Flat = {}): Flat {
  if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) out[prefix] = obj;
  return out;
}

/** Keys added, changed or removed between two settings objects, as flat dotted paths. */
export function configDiff(before: unknown, after: unknown): { key: string; from: unknown; to: unknown }[] {
  const a = flatten(before);
  const b = flatten(after);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).map((k) => ({ key: k, from: a[k], to: b[k] }));
}

export function ConfigPage() {
  const tree = useTree();
  const [node, setNode] = useState('');
  useEffect(() => {
    if (!node && tree?.root) setNode(tree.root.id);
  }, [tree, node]);
  const res = useResource(() => (node ? getConfigNode(node) : new Promise<never>(() => {})), [node]);
  const affected = useResource(() => (node ? getSummary(node) : new Promise<never>(() => {})), [node]);
  const [text, setText] = useState('');
  const [diff, setDiff] = useState<ReturnType<typeof configDiff> | null>(null);
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(null);
  useEffect(() => {
    if (res.state === 'ok' && res.data) setText(JSON.stringify(res.data.settings, null, 2));
    setDiff(null);
  }, [res.state, res.data]);
  const nodes = tree ? [...tree.byId.values()].sort((a, b) => a.id.localeCompare(b.id)) : [];
  const parse = (): unknown => {
    try {
      return JSON.parse(text);
    } catch (e) {
      setMsg({ ok: false, text: t('config.invalidJson', { message: e instanceof Error ? e.message : String(e) }) });
      return undefined;
    }
  };
  return (
    <div class="page" data-page="config">
      <h1>{t('config.title')}</h1>
      <Section title={t('config.title')} id="config-edit">
        <label for="cfg-node">{t('config.node')}</label>{' '}
        <select id="cfg-node" value={node} onChange={(e) => setNode((e.currentTarget as HTMLSelectElement).value)}>
          {nodes.map((n) => (
            <option key={n.id} value={n.id}>
              {n.id} {pickName(n.name)}
            </option>
          ))}
        </select>
        <Loadable res={res} what={t('config.title')}>
          {(cfg) =>
            cfg && (
              <form
                class="stack"
                onSubmit={async (e) => {
                  e.preventDefault();
                  const next = parse();
                  if (next === undefined) return;
                  const r = await saveConfigNode(node, cfg.version, next);
                  setMsg(r.ok ? { ok: true, text: t('config.saved', { version: r.data.version }) } : { ok: false, text: t('common.failed', { message: r.error.message }) });
                  if (r.ok) res.reload();
                }}
              >
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
                    {affected.data && <p>{t('config.affected', { n: affected.data.counts.total })}</p>}
                    <h3>{t('config.diff')}</h3>
                    <ul class="diff">
                      {diff.map((d) => (
                        <li key={d.key}>
                          <code>{d.key}</code>: <del>{JSON.stringify(d.from) ?? '—'}</del> → <ins>{JSON.stringify(d.to) ?? '—'}</ins>
                        </li>
                      ))}
                    </ul>
                  </div>
                )}
              </form>
            )
          }
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
