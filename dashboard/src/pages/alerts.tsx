import { useState } from 'preact/hooks';
import { getList, post } from '../api.ts';
import { useResource } from '../hooks.ts';
import { hasKey, t } from '../i18n/index.ts';
import { useLive } from '../live.ts';
import { nodeName, useTree } from '../nodes.ts';
import { formatDuration, formatShort } from '../format.ts';
import { Loadable, Section } from '../components/ui.tsx';

type Alert = Record<string, any>;

function AlertActions(props: { a: Alert; onDone: () => void }) {
  const { a } = props;
  const [mode, setMode] = useState<'none' | 'assign' | 'resolve'>('none');
  const [text, setText] = useState('');
  const [err, setErr] = useState<string | null>(null);
  const id = encodeURIComponent(String(a.id));
  const act = async (path: string, body: unknown) => {
    setErr(null);
    const r = await post(`alerts/${id}/${path}`, body);
    if (!r.ok) setErr(t('common.failed', { message: r.error.message }));
    else {
      setMode('none');
      setText('');
      props.onDone();
    }
  };
  if (a.status === 'resolved') return null;
  return (
    <div class="actions">
      {a.status === 'open' && (
        <button type="button" onClick={() => void act('acknowledge', {})}>
          {t('alerts.acknowledge')}
        </button>
      )}
      <button type="button" onClick={() => setMode(mode === 'assign' ? 'none' : 'assign')} aria-expanded={mode === 'assign'}>
        {t('alerts.assign')}
      </button>
      <button type="button" onClick={() => setMode(mode === 'resolve' ? 'none' : 'resolve')} aria-expanded={mode === 'resolve'}>
        {t('alerts.resolve')}
      </button>
      {mode !== 'none' && (
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            void (mode === 'assign' ? act('assign', { assignee: text }) : act('resolve', { note: text }));
          }}
        >
          <label for={`alert-${id}-text`}>{mode === 'assign' ? t('alerts.assignTo') : t('alerts.note')}</label>
          <input id={`alert-${id}-text`} required value={text} onInput={(e) => setText((e.currentTarget as HTMLInputElement).value)} />
          <button type="submit" class="primary">
            {mode === 'assign' ? t('alerts.assign') : t('alerts.resolve')}
          </button>
        </form>
      )}
      {err && (
        <p class="note error" role="alert">
          {err}
        </p>
      )}
    </div>
  );
}

export function AlertsPage() {
  const tree = useTree();
  const [filter, setFilter] = useState<'open' | 'all'>('open');
  const res = useResource(() => getList('alerts', filter === 'open' ? { status: 'open' } : {}), [filter]);
  useLive(tree?.root?.id ?? null, res.reload, 700, (e) => e.type === 'alert');
  const sevRank: Record<string, number> = { critical: 0, warning: 1, info: 2 };
  return (
    <div class="page" data-page="alerts">
      <h1>{t('alerts.title')}</h1>
      <Section
        title={t('alerts.title')}
        id="queue"
        actions={
          <label class="inline-label">
            {t('alerts.filter')}{' '}
            <select value={filter} onChange={(e) => setFilter((e.currentTarget as HTMLSelectElement).value as 'open' | 'all')}>
              <option value="open">{t('alerts.open')}</option>
              <option value="all">{t('alerts.all')}</option>
            </select>
          </label>
        }
      >
        <Loadable res={res} what={t('nav.alerts')}>
          {(page) => {
            const items = [...page.items].sort(
              (a, b) => (sevRank[a.severity] ?? 3) - (sevRank[b.severity] ?? 3) || String(a.openedAt).localeCompare(String(b.openedAt)),
            );
            if (items.length === 0) return <p class="muted">{t('alerts.none')}</p>;
            return (
              <ul class="alert-queue">
                {items.map((a) => {
                  const opened = String(a.openedAt ?? a.createdAt ?? '');
                  const statusKey = `alerts.status.${String(a.status)}`;
                  return (
                    <li key={String(a.id)} class={`alert-item sev-${String(a.severity)}`} data-alert={String(a.id)} data-status={String(a.status)}>
                      <div class="ai-head">
                        <span class={`badge sev-${String(a.severity)}`}>{hasKey(`severity.${String(a.severity)}`) ? t(`severity.${a.severity}` as never) : String(a.severity)}</span>
                        <strong>{String(a.rule ?? a.kind ?? '')}</strong>
                        <span class="badge">{hasKey(statusKey) ? t(statusKey) : String(a.status)}</span>
                      </div>
                      <div>
                        {a.terminalId ? (
                          <a href={`/terminals/${encodeURIComponent(String(a.terminalId))}`}>{String(a.terminalId)}</a>
                        ) : null}{' '}
                        {a.nodeId ? <span class="muted">{nodeName(tree, String(a.nodeId))}</span> : null}
                      </div>
                      <div class="muted">
                        {formatShort(opened)} · {t('alerts.age')} {formatDuration(Date.now() - Date.parse(opened))}
                        {a.assignee ? ` · ${t('alerts.assignee')} ${String(a.assignee)}` : ''}
                      </div>
                      {a.message && <div>{String(a.message)}</div>}
                      <AlertActions a={a} onDone={res.reload} />
                    </li>
                  );
                })}
              </ul>
            );
          }}
        </Loadable>
      </Section>
    </div>
  );
}
