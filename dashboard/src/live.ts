/**
 * The live event stream (`GET /api/v1/events?node=`, server-sent events). One stream at a time, for the node the
 * page shows; each `change` event tells the subscribed page to refresh what it shows (debounced, so a burst of a
 * hundred samples costs one reload).
 *
 * Why fetch and not EventSource: EventSource cannot send an Authorization header, and the hub accepts the bearer
 * token only there (a token in the URL would end up in access logs and browser history). A streamed fetch reads the
 * same text/event-stream and sends the header. We reconnect ourselves with capped, jittered backoff, and treat
 * silence longer than three heartbeats (the hub sends one every 15 s) as a dropped stream, since a half-open TCP
 * connection never errors by itself. The state goes to the banner: a technician must know when the screen stopped
 * being live.
 */
import { useEffect, useState } from 'preact/hooks';
import { eventsRequest } from './api.ts';

export type LiveState =
  | { kind: 'idle' }
  | { kind: 'connecting' }
  | { kind: 'open'; restored: boolean }
  | { kind: 'lost'; attempt: number };

/** A change under the followed node: `type` is the hub's change type (presence, telemetry, event, command, …). */
export interface LiveEvent {
  type: string;
  terminalId: string | null;
  station: string | null;
  data: unknown;
}

type Handler = (event: LiveEvent) => void;

const HEARTBEAT_SILENCE_MS = 45_000;

let state: LiveState = { kind: 'idle' };
const stateListeners = new Set<(s: LiveState) => void>();
const handlers = new Set<Handler>();
let currentNode: string | null = null;
let abort: AbortController | null = null;
let attempt = 0;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let restoredTimer: ReturnType<typeof setTimeout> | undefined;

function setState(s: LiveState): void {
  state = s;
  for (const l of stateListeners) l(s);
}

/** Parses one SSE block (`event:` / `data:` lines); comments and unknown fields are ignored. */
export function parseSseBlock(block: string): { event: string; data: string } | null {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (line === '' || line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i === -1 ? line : line.slice(0, i);
    const value = i === -1 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return data.length === 0 && event === 'message' ? null : { event, data: data.join('\n') };
}

function deliver(ev: { event: string; data: string }): void {
  if (ev.event !== 'change') return;
  let c: { type?: string; terminalId?: string; station?: string | null; data?: unknown };
  try {
    c = JSON.parse(ev.data) as typeof c;
  } catch {
    return;
  }
  const e: LiveEvent = { type: c.type ?? 'change', terminalId: c.terminalId ?? null, station: c.station ?? null, data: c.data ?? null };
  for (const h of handlers) h(e);
}

function onOpened(): void {
  const restored = attempt > 0;
  attempt = 0;
  setState({ kind: 'open', restored });
  if (restored) {
    // What changed while we were away is unknown: refresh everything once.
    for (const h of handlers) h({ type: 'resync', terminalId: null, station: null, data: null });
    clearTimeout(restoredTimer);
    restoredTimer = setTimeout(() => {
      if (state.kind === 'open') setState({ kind: 'open', restored: false });
    }, 5000);
  }
}

function scheduleRetry(): void {
  attempt += 1;
  setState({ kind: 'lost', attempt });
  const delay = Math.min(15_000, 500 * 2 ** Math.min(attempt - 1, 5)) * (0.75 + Math.random() * 0.5);
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => void open(), delay);
}

async function open(): Promise<void> {
  const node = currentNode;
  if (node === null) return;
  const ctrl = new AbortController();
  abort = ctrl;
  if (state.kind !== 'lost') setState({ kind: 'connecting' });
  let silence: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(silence);
    silence = setTimeout(() => ctrl.abort(new Error('heartbeat missed')), HEARTBEAT_SILENCE_MS);
  };
  try {
    const { url, headers } = eventsRequest(node);
    arm();
    const res = await fetch(url, { headers, signal: ctrl.signal, cache: 'no-store' });
    if (res.status === 401) {
      // The session ended: the API module's 401 handling takes the user to the login page.
      window.dispatchEvent(new CustomEvent('kf:unauthorized'));
      return;
    }
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
    onOpened();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      arm();
      buf += value;
      let idx: number;
      while ((idx = buf.search(/\r?\n\r?\n/)) !== -1) {
        const block = buf.slice(0, idx);
        buf = buf.slice(idx).replace(/^\r?\n\r?\n/, '');
        const ev = parseSseBlock(block);
        if (ev) deliver(ev);
      }
    }
    throw new Error('stream ended');
  } catch {
    if (abort !== ctrl || currentNode !== node) return; // replaced or stopped on purpose
    scheduleRetry();
  } finally {
    clearTimeout(silence);
  }
}

function connect(node: string): void {
  if (currentNode === node && abort && !abort.signal.aborted) return;
  disconnect();
  currentNode = node;
  void open();
}

export function disconnect(): void {
  clearTimeout(retryTimer);
  const a = abort;
  abort = null;
  currentNode = null;
  attempt = 0;
  a?.abort();
  setState({ kind: 'idle' });
}

export function useLiveState(): LiveState {
  const [s, set] = useState(state);
  useEffect(() => {
    stateListeners.add(set);
    set(state);
    return () => stateListeners.delete(set);
  }, []);
  return s;
}

/**
 * Follow changes under `node` while the component is mounted; `onChange` runs at most once per `debounceMs`.
 * `filter` may drop events the page does not show (a resync after a reconnect always passes).
 */
export function useLive(node: string | null, onChange: () => void, debounceMs = 700, filter?: (e: LiveEvent) => boolean): void {
  useEffect(() => {
    if (!node) return;
    connect(node);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const h: Handler = (e) => {
      if (e.type !== 'resync' && filter && !filter(e)) return;
      if (timer) return;
      timer = setTimeout(() => {
        timer = undefined;
        onChange();
      }, debounceMs);
    };
    handlers.add(h);
    return () => {
      handlers.delete(h);
      clearTimeout(timer);
    };
  }, [node]);
}
