/**
 * The technician's queue: alerts under the operator's node, critical first then oldest, each with where it is and
 * since when; acknowledge, assign, run a self-test on the terminal (a station alert: on the station's terminals that
 * should offer the lost service) and see its result here, resolve with a note.
 */
import { useState } from 'preact/hooks';
import { SERVICES } from '@kiosk-fleet/protocol';
import { alertAction, getAlert, listAlerts, type AlertAction, type AlertDetail, type AlertView } from '../api.ts';
import { useResource } from '../hooks.ts';
import { pickName, t } from '../i18n/index.ts';
import { useLive } from '../live.ts';
import { nodeName, useTree } from '../nodes.ts';
import { formatDateTime, formatDuration, formatShort } from '../format.ts';
import { Loadable, Section } from '../components/ui.tsx';
import { label, peripheralLabel } from '../labels.ts';
import { errorText, hubText } from '../hub-text.ts';

function SelfTestOutcome(props: { s: AlertDetail['selfTests'][number] }) {
  const r = props.s.result as { passed?: boolean; failing?: string[] } | null;
  if (props.s.status !== 'ok' || !r || typeof r.passed !== 'boolean') return <span class="badge">{label('command.status', props.s.status)}</span>;
  return r.passed ? (
    <span class="badge periph-ok">{t('terminal.selfTestPassed')}</span>
  ) : (
    <span class="badge periph-fault">{t('terminal.selfTestFailed', { list: (r.failing ?? []).map((p) => peripheralLabel(p)).join(', ') })}</span>
  );
}

function Details(props: { id: number; version: number; terminalId: string | null; stationId: string | null }) {
  const tree = useTree();
  const res = useResource(() => getAlert(props.id), [props.id, props.version]);
  // A self-test's result arrives later, from the terminal (a station alert's: from any of the station's terminals).
  useLive(tree?.root?.id ?? null, res.reload, 500, (e) =>
    (e.type === 'command' || e.type === 'alert') && (props.terminalId !== null ? e.terminalId === props.terminalId : e.station === props.stationId),
  );
  return (
    <Loadable res={res} what={t('nav.alerts')}>
      {(d) => (
        <div class="alert-details">
          {d.selfTests.length > 0 && (
            <>
              <h3>{t('alerts.selfTests')}</h3>
              <ul class="transitions" data-testid="alert-self-tests">
                {d.selfTests.map((s) => (
                  <li key={s.commandId} data-status={s.status} data-terminal={s.terminalId ?? ''}>
                    {formatDateTime(s.requestedAt)} {props.terminalId === null && s.terminalId && <a href={`/terminals/${encodeURIComponent(s.terminalId)}`}>{s.terminalId}</a>}{' '}
                    <SelfTestOutcome s={s} />
                  </li>
                ))}
              </ul>
            </>
          )}
          <h3>{t('alerts.history')}</h3>
          <ol class="transitions">
            {d.history.map((h, i) => (
              <li key={`${h.at}-${i}`}>
                {formatDateTime(h.at)} · {label('alerts.actor', h.actor)} · {label('alerts.action', h.action)}
                {h.text && (
                  <>
                    {' · '}
                    <span data-testid="history-text">{hubText(h.text, tree, '')}</span>
                  </>
                )}
                {h.note && <span class="muted"> — {h.note}</span>}
              </li>
            ))}
          </ol>
        </div>
      )}
    </Loadable>
  );
}

/**
 * How long the trouble has lasted: from the earliest fault, not from the alert (which opens only after the fault
 * lasted peripheralFaultMinutes). Counted on the hub's clock: its ageSeconds plus the time from fault to alert.
 */
function ageMs(a: AlertView): number {
  const since = Math.min(...a.faults.map((f) => Date.parse(f.since)).filter((n) => Number.isFinite(n)));
  const opened = Date.parse(a.openedAt);
  return a.ageSeconds * 1000 + (Number.isFinite(since) && since < opened ? opened - since : 0);
}

function AlertItem(props: { a: AlertView; onChange: () => void }) {
  const { a } = props;
  const tree = useTree();
  const [mode, setMode] = useState<'none' | 'assign' | 'resolve' | 'note'>('none');
  const [text, setText] = useState('');
  const [err, setErr] = useState<string | null>(null);
  const [open, setOpen] = useState(false);
  const [version, setVersion] = useState(0);
  const act = async (action: AlertAction) => {
    setErr(null);
    const r = await alertAction(a.id, action);
    if (!r.ok) {
      setErr(t('common.failed', { message: errorText(r.error) }));
      return;
    }
    setMode('none');
    setText('');
    setVersion((v) => v + 1);
    if (action.kind === 'self-test') setOpen(true);
    props.onChange();
  };
  const fieldId = `alert-${a.id}-text`;
  return (
    <li class={`alert-item sev-${a.severity}`} data-alert={a.id} data-state={a.state} data-rule={a.rule} data-terminal={a.terminalId ?? ''}>
      <div class="ai-head">
        <span class={`badge sev-${a.severity}`}>{label('severity', a.severity)}</span>
        <strong>{label('rule', a.rule)}</strong>
        <span class="badge" data-testid="alert-state">
          {label('alerts.status', a.state)}
        </span>
        {a.overdue && a.state !== 'resolved' && <span class="badge sev-critical">{t('alerts.overdue')}</span>}
      </div>
      <div>
        {/* The hub sends the title as a code with parameters (hub-text.ts); English only from a hub newer than this page. */}
        <span class="muted" data-testid="alert-title">
          {hubText(a.text, tree, a.title)}
        </span>
        {a.terminalId && (
          <>
            {' · '}
            <a href={`/terminals/${encodeURIComponent(a.terminalId)}`}>{a.terminalId}</a>
          </>
        )}
        {' · '}
        <a href={`/nodes/${encodeURIComponent(a.stationId ?? a.nodeId)}`}>{nodeName(tree, a.stationId ?? a.nodeId)}</a>
      </div>
      {a.services.length > 0 && (
        <p class="alert-station-services" data-testid="alert-station-services">
          {t('alerts.stationServices', {
            station: pickName(a.stationName, a.stationId ?? a.nodeId),
            list: a.services.map((sv) => pickName((SERVICES as Record<string, { name: { zh: string; en: string } }>)[sv]?.name, sv)).join('、'),
          })}
        </p>
      )}
      {a.faults.length > 0 && (
        <ul class="alert-faults" data-testid="alert-faults">
          {a.faults.map((f) => (
            <li key={f.peripheral} data-peripheral={f.peripheral}>
              <strong>{peripheralLabel(f.peripheral)}</strong>
              {f.code && <code> {f.code}</code>} · {t('alerts.faultSince', { at: formatShort(f.since) })}
            </li>
          ))}
        </ul>
      )}
      <div class="muted">
        {formatShort(a.openedAt)} · {t('alerts.age')} <span data-testid="alert-age">{formatDuration(ageMs(a))}</span>
        {a.assignedTo && ` · ${t('alerts.assignee')} ${a.assignedTo}`}
        {a.resolutionNote && ` · ${a.resolutionNote}`}
      </div>
      <div class="actions">
        {a.state === 'open' && (
          <button type="button" onClick={() => void act({ kind: 'acknowledge' })}>
            {t('alerts.acknowledge')}
          </button>
        )}
        {a.state !== 'resolved' && (
          <>
            <button type="button" onClick={() => setMode(mode === 'assign' ? 'none' : 'assign')} aria-expanded={mode === 'assign'}>
              {t('alerts.assign')}
            </button>
            {(a.terminalId || a.services.length > 0) && (
              <button type="button" onClick={() => void act({ kind: 'self-test' })}>
                {t('terminal.runSelfTest')}
              </button>
            )}
            <button type="button" onClick={() => setMode(mode === 'resolve' ? 'none' : 'resolve')} aria-expanded={mode === 'resolve'}>
              {t('alerts.resolve')}
            </button>
          </>
        )}
        {/* A note stays possible after the alert closed itself on recovery (what was found, what was replaced). */}
        <button type="button" onClick={() => setMode(mode === 'note' ? 'none' : 'note')} aria-expanded={mode === 'note'}>
          {t('alerts.addNote')}
        </button>
        <button type="button" class="link" onClick={() => setOpen(!open)} aria-expanded={open}>
          {t('alerts.details')}
        </button>
      </div>
      {mode !== 'none' && (
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            void act(mode === 'assign' ? { kind: 'assign', to: text.trim() } : { kind: mode, note: text.trim() });
          }}
        >
          {mode === 'resolve' && a.faults.length > 0 && (
            <p class="note warn" role="status" data-testid="alert-reopen-warning">
              {t('alerts.willReopen', { list: a.faults.map((f) => peripheralLabel(f.peripheral)).join('、') })}
            </p>
          )}
          <label for={fieldId}>{mode === 'assign' ? t('alerts.assignTo') : t('alerts.note')}</label>
          <input id={fieldId} required value={text} onInput={(e) => setText((e.currentTarget as HTMLInputElement).value)} />
          <button type="submit" class="primary">
            {mode === 'assign' ? t('alerts.assign') : mode === 'note' ? t('alerts.addNote') : t('alerts.resolve')}
          </button>
        </form>
      )}
      {err && (
        <p class="note error" role="alert">
          {err}
        </p>
      )}
      {open && <Details id={a.id} version={version} terminalId={a.terminalId} stationId={a.stationId ?? a.nodeId} />}
    </li>
  );
}

export function AlertsPage() {
  const tree = useTree();
  const [filter, setFilter] = useState<'queue' | 'all'>('queue');
  const res = useResource(() => listAlerts({ all: filter === 'all' }), [filter]);
  useLive(tree?.root?.id ?? null, res.reload, 700, (e) => e.type === 'alert' || e.type === 'command');
  return (
    <div class="page" data-page="alerts">
      <h1>{t('alerts.title')}</h1>
      <Section
        title={t('alerts.title')}
        id="queue"
        actions={
          <label class="inline-label">
            {t('alerts.filter')}{' '}
            <select value={filter} onChange={(e) => setFilter((e.currentTarget as HTMLSelectElement).value as 'queue' | 'all')}>
              <option value="queue">{t('alerts.open')}</option>
              <option value="all">{t('alerts.all')}</option>
            </select>
          </label>
        }
      >
        <Loadable res={res} what={t('nav.alerts')}>
          {(page) =>
            page.items.length === 0 ? (
              <p class="muted">{t('alerts.none')}</p>
            ) : (
              <ul class="alert-queue">
                {page.items.map((a) => (
                  <AlertItem key={a.id} a={a} onChange={res.reload} />
                ))}
              </ul>
            )
          }
        </Loadable>
      </Section>
    </div>
  );
}
