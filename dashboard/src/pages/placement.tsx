import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { TERMINAL_TYPE_IDS } from '@kiosk-fleet/protocol';
import { importFleet, listTerminals, moveTerminal, registerTerminal, type ImportOutcome } from '../api.ts';
import type { TerminalRow } from '../model.ts';
import { SearchPick, type PickItem } from '../components/picker.tsx';
import { CopyButton } from '../components/copy.tsx';
import { pickName, t } from '../i18n/index.ts';
import { nodeName, refreshTree, useTree, type Tree } from '../nodes.ts';
import { Section } from '../components/ui.tsx';
import { typeLabel } from '../labels.ts';
import { placeProblems, previewFleet, type FleetPreview, type PlaceProblem } from '../fleet-file.ts';
import type { FleetCsvError } from '@kiosk-fleet/protocol';
import { errorText } from '../hub-text.ts';

/** Every station the operator may place at: under a city admin's districts, or a district admin's own stations. */
export function stationItems(tree: Tree | null): PickItem[] {
  if (!tree) return [];
  return [...tree.byId.values()]
    .filter((n) => n.level === 'station')
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((s) => {
      const district = s.parentId ? tree.byId.get(s.parentId) : undefined;
      return {
        value: s.id,
        text: `${pickName(s.name, s.id)} · ${s.id}${district ? ` · ${pickName(district.name, district.id)}` : ''}`,
        search: `${s.name.zh} ${s.name.en}`,
      };
    });
}

function StationSelect(props: { id: string; value: string; onChange: (v: string) => void; tree: Tree | null }) {
  const items = useMemo(() => stationItems(props.tree), [props.tree]);
  return <SearchPick id={props.id} required items={items} value={props.value} onChange={props.onChange} />;
}

/** The terminals in the operator's scope that match what was typed (id or serial), asked of the hub. */
function TerminalSelect(props: { id: string; value: string; onChange: (v: string) => void; tree: Tree | null }) {
  const [rows, setRows] = useState<TerminalRow[]>([]);
  const seq = useRef(0);
  const search = (q: string) => {
    const n = ++seq.current;
    void listTerminals({ ...(q.trim() ? { q: q.trim() } : {}), limit: '50' }).then((r) => {
      if (n !== seq.current || !r.ok) return;
      setRows(r.data.items);
      if (r.data.items.length === 1) props.onChange(r.data.items[0]!.id);
      else if (!r.data.items.some((i) => i.id === props.value)) props.onChange('');
    });
  };
  useEffect(() => search(''), []);
  const items = rows.map((r) => ({ value: r.id, text: `${r.id} · ${typeLabel(r.type)} · ${nodeName(props.tree, r.stationId)}` }));
  return <SearchPick id={props.id} required items={items} value={props.value} onChange={props.onChange} onQuery={search} />;
}

function Register(props: { tree: Tree | null }) {
  const [id, setId] = useState('');
  const [type, setType] = useState<string>(TERMINAL_TYPE_IDS[0]!);
  const [serial, setSerial] = useState('');
  const [station, setStation] = useState('');
  const [busy, setBusy] = useState(false);
  const [secret, setSecret] = useState<{ id: string; secret: string } | null>(null);
  const [err, setErr] = useState<string | null>(null);
  return (
    <Section title={t('placement.register')} id="register">
      <form
        class="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setErr(null);
          setSecret(null);
          const r = await registerTerminal({ ...(id.trim() ? { id: id.trim() } : {}), type, station, serial: serial.trim() });
          setBusy(false);
          if (r.ok) setSecret(r.data);
          else setErr(t('common.failed', { message: errorText(r.error) }));
        }}
      >
        <label for="reg-id">
          {t('placement.id')} <span class="hint">{t('placement.idHint')}</span>
        </label>
        <input id="reg-id" pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,63}" value={id} onInput={(e) => setId((e.currentTarget as HTMLInputElement).value)} />
        <label for="reg-type">{t('placement.type')}</label>
        <select id="reg-type" value={type} onChange={(e) => setType((e.currentTarget as HTMLSelectElement).value)}>
          {TERMINAL_TYPE_IDS.map((ty) => (
            <option key={ty} value={ty}>
              {typeLabel(ty)}
            </option>
          ))}
        </select>
        <label for="reg-serial">{t('placement.serial')}</label>
        <input id="reg-serial" required maxLength={64} value={serial} onInput={(e) => setSerial((e.currentTarget as HTMLInputElement).value)} />
        <label for="reg-station">{t('placement.station')}</label>
        <StationSelect id="reg-station" value={station} onChange={setStation} tree={props.tree} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? t('common.saving') : t('placement.submitRegister')}
        </button>
      </form>
      {err && (
        <p class="note error" role="alert">
          {err}
        </p>
      )}
      {secret && (
        <div class="secret" role="status" data-testid="secret">
          <p>{t('placement.secretOnce')}</p>
          <p>
            <code>{secret.id}</code>
          </p>
          <p class="secret-line">
            <code data-testid="secret-value">{secret.secret}</code> <CopyButton text={secret.secret} />
          </p>
        </div>
      )}
    </Section>
  );
}

function Move(props: { tree: Tree | null }) {
  const [id, setId] = useState('');
  const [station, setStation] = useState('');
  const [reason, setReason] = useState('');
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(null);
  return (
    <Section title={t('placement.move')} id="move">
      <form
        class="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          setMsg(null);
          const r = await moveTerminal(id.trim(), station, reason);
          setMsg(
            r.ok
              ? { ok: true, text: t('placement.moved', { id: id.trim(), station: nodeName(props.tree, station) }) }
              : { ok: false, text: t('common.failed', { message: errorText(r.error) }) },
          );
        }}
      >
        <label for="move-id">{t('placement.moveWhich')}</label>
        <TerminalSelect id="move-id" value={id} onChange={setId} tree={props.tree} />
        <label for="move-station">{t('placement.moveTo')}</label>
        <StationSelect id="move-station" value={station} onChange={setStation} tree={props.tree} />
        <label for="move-reason">{t('placement.moveReason')}</label>
        <input id="move-reason" value={reason} onInput={(e) => setReason((e.currentTarget as HTMLInputElement).value)} />
        <button type="submit" class="primary">
          {t('placement.submitMove')}
        </button>
      </form>
      {msg && (
        <p class={msg.ok ? 'note ok' : 'note error'} role={msg.ok ? 'status' : 'alert'}>
          {msg.text}
        </p>
      )}
    </Section>
  );
}

function csvErrorText(e: FleetCsvError): string {
  switch (e.code) {
    case 'missing-column':
      return t('placement.csv.missingColumn', { row: e.row, column: e.column });
    case 'quoted':
      return t('placement.csv.quoted', { row: e.row });
    case 'field-count':
      return t('placement.csv.fieldCount', { row: e.row, expected: e.expected, got: e.got });
    case 'empty-field':
      return t('placement.csv.emptyField', { row: e.row, column: e.column });
  }
}

/** The rows as read and every problem at once, so a file is fixed in one go, before anything is sent. */
function placeText(p: PlaceProblem): string {
  if (p.code === 'not-in-scope') return t('placement.csv.notInScope', { row: p.row, station: p.value });
  if (p.code === 'unknown-station') return t('placement.csv.unknownStation', { row: p.row, station: p.value });
  return t('placement.csv.unknownType', { row: p.row, type: p.value });
}

function problemsOf(preview: FleetPreview, tree: Tree | null): string[] {
  const own = {
    root: tree?.root && tree.root.level !== 'city' ? tree.root.id : null,
    stations: new Set([...(tree?.byId.values() ?? [])].filter((n) => n.level === 'station').map((n) => n.id)),
    types: TERMINAL_TYPE_IDS as readonly string[],
  };
  const all = [...preview.errors.map((e) => ({ row: e.row, text: csvErrorText(e) })), ...placeProblems(preview, own).map((p) => ({ row: p.row, text: placeText(p) }))];
  return all.sort((a, b) => a.row - b.row).map((x) => x.text);
}

function ImportPreview(props: { preview: FleetPreview; tree: Tree | null }) {
  const { preview } = props;
  const problems = problemsOf(preview, props.tree);
  const shown = preview.rows.slice(0, 200);
  return (
    <div data-testid="import-preview">
      <p>{t('placement.previewSummary', { stations: preview.stations, terminals: preview.terminals })}</p>
      {problems.length > 0 && (
        <div class="note error" role="alert" data-testid="import-errors">
          <p>{t('placement.previewErrors', { n: problems.length })}</p>
          <ul>
            {problems.map((text, i) => (
              <li key={i}>{text}</li>
            ))}
          </ul>
        </div>
      )}
      {shown.length > 0 && (
        <div class="table-wrap">
          <table class="results">
            <thead>
              <tr>
                <th scope="col">{t('placement.row')}</th>
                <th scope="col">{t('placement.id')}</th>
                <th scope="col">{t('placement.station')}</th>
                <th scope="col">{t('placement.type')}</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => (
                <tr key={r.row} data-row={r.row}>
                  <td>{r.row}</td>
                  <td>{r.id}</td>
                  <td>{props.tree?.byId.has(r.station) ? `${nodeName(props.tree, r.station)} · ${r.station}` : r.station}</td>
                  <td>{typeLabel(r.type)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {preview.rows.length > shown.length && <p class="muted">{t('placement.previewMore', { n: preview.rows.length - shown.length })}</p>}
        </div>
      )}
    </div>
  );
}

function Import(props: { tree: Tree | null }) {
  const [content, setContent] = useState('');
  const [preview, setPreview] = useState<ReturnType<typeof previewFleet> | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<ImportOutcome | null>(null);
  const doPreview = (text: string) => {
    setOutcome(null);
    try {
      setPreview(previewFleet(text));
      setErr(null);
    } catch (e) {
      setPreview(null);
      setErr(t('placement.previewBad', { message: e instanceof Error ? e.message : String(e) }));
    }
  };
  const csv = outcome ? `id,secret\n${outcome.secrets.map((s) => `${s.id},${s.secret}`).join('\n')}\n` : '';
  return (
    <Section title={t('placement.import')} id="import">
      <div class="stack">
        <label for="imp-file">{t('placement.importFile')}</label>
        <input
          id="imp-file"
          type="file"
          accept=".json,.csv,application/json,text/csv"
          onChange={async (e) => {
            const f = (e.currentTarget as HTMLInputElement).files?.[0];
            if (!f) return;
            const text = await f.text();
            setContent(text);
            doPreview(text);
          }}
        />
        <label for="imp-text">{t('placement.importPaste')}</label>
        <textarea id="imp-text" rows={5} value={content} onInput={(e) => setContent((e.currentTarget as HTMLTextAreaElement).value)} />
        <div class="row">
          <button type="button" onClick={() => doPreview(content)} disabled={content.trim() === ''}>
            {t('placement.preview')}
          </button>
          <button
            type="button"
            class="primary"
            disabled={!preview || problemsOf(preview, props.tree).length > 0 || preview.terminals === 0 || busy}
            onClick={async () => {
              if (!preview) return;
              setBusy(true);
              setErr(null);
              const r = await importFleet(content, preview.format);
              setBusy(false);
              if (r.ok) {
                setOutcome(r.data);
                void refreshTree();
              } else setErr(t('common.failed', { message: errorText(r.error) }));
            }}
          >
            {t('placement.submitImport')}
          </button>
        </div>
        {preview && <ImportPreview preview={preview} tree={props.tree} />}
        {busy && (
          <p role="status">
            <progress aria-label={t('placement.importing')} /> {t('placement.importing')}
          </p>
        )}
        {err && (
          <p class="note error" role="alert">
            {err}
          </p>
        )}
        {outcome && (
          <div role="status">
            <p class="note ok">{t('placement.importDone', { created: outcome.created.length, existing: outcome.existing.length })}</p>
            {outcome.secrets.length > 0 && (
              <>
                <h3>{t('placement.secrets')}</h3>
                <a href={`data:text/csv;charset=utf-8,${encodeURIComponent(csv)}`} download="secrets.csv">
                  {t('placement.downloadSecrets')}
                </a>{' '}
                <CopyButton text={csv} />
              </>
            )}
          </div>
        )}
      </div>
    </Section>
  );
}

export function PlacementPage() {
  const tree = useTree();
  return (
    <div class="page" data-page="placement">
      <h1>{t('placement.title')}</h1>
      <div class="grid-3">
        <Register tree={tree} />
        <Move tree={tree} />
        <Import tree={tree} />
      </div>
    </div>
  );
}
