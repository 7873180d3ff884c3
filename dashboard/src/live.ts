/**
 * The live event stream (`/api/v1/events?node=`). One EventSource at a time, for the node the page shows; every
 * change event tells the subscribed page to refresh what it shows (debounced, so a burst of a hundred samples
 * costs one reload).
 *
 * EventSource retries by itself only on some failures (not after an HTTP error, and its retry interval is fixed),
 * so on any error we close it and reconnect ourselves with capped, jittered backoff, and report the state to the
 * banner: a technician must know when the screen stopped being live.
 */
import { useEffect, useState } from 'preact/hooks';
import { eventsUrl } from './api.ts';

export type LiveState = { kind: 'idle' } | { kind: 'connecting' } | { kind: 'open'; restored: boolean } | { kind: 'lost'; attempt: number };

type Handler = (event: { type: string; data: unknown }) => void;

/** Event names the hub sends; `message` covers unnamed events. */
export const LIVE_EVENT_TYPES = ['message', 'presence', 'telemetry', 'event', 'peripheral', 'alert', 'command', 'terminal', 'rollout', 'config', 'update', 'change'];

let state: LiveState = { kind: 'idle' };
const stateListeners = new Set<(s: LiveState) => void>();
const handlers = new Set<Handler>();
let source: EventSource | null = null;
let currentNode: string | null = null;
let attempt = 0;
let everOpened = false;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let restoredTimer: ReturnType<typeof setTimeout> | undefined;

function setState(s: LiveState): void {
  state = s;
  for (const l of stateListeners) l(s);
}

function dispatch(type: string, raw: string): void {
  let data: unknown = raw;
  try {
    data = JSON.parse(raw);
  } catch {
    // Not JSON (a comment or heartbeat): still a sign of life, nothing to refresh.
    return;
  }
  for (const h of handlers) h({ type, data });
}

function open(): void {
  if (currentNode === null) return;
  if (state.kind !== 'lost') setState({ kind: 'connecting' });
  const es = new EventSource(eventsUrl(currentNode));
  source = es;
  es.onopen = () => {
    const restored = attempt > 0 || (everOpened && state.kind === 'lost');
    attempt = 0;
    everOpened = true;
    setState({ kind: 'open', restored });
    if (restored) {
      // What changed while we were away is unknown: refresh everything once.
      for (const h of handlers) h({ type: 'resync', data: null });
      clearTimeout(restoredTimer);
      restoredTimer = setTimeout(() => {
        if (state.kind === 'open') setState({ kind: 'open', restored: false });
      }, 4000);
    }
  };
  es.onerror = () => {
    if (source !== es) return;
    es.close();
    source = null;
    attempt += 1;
    setState({ kind: 'lost', attempt });
    const delay = Math.min(15_000, 500 * 2 ** Math.min(attempt, 5)) * (0.75 + Math.random() * 0.5);
    retryTimer = setTimeout(open, delay);
  };
  for (const type of LIVE_EVENT_TYPES) es.addEventListener(type, (e) => dispatch(type, (e as MessageEvent<string>).data));
}

function connect(node: string): void {
  if (currentNode === node && source) return;
  disconnect();
  currentNode = node;
  open();
}

export function disconnect(): void {
  clearTimeout(retryTimer);
  source?.close();
  source = null;
  currentNode = null;
  attempt = 0;
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
 * `filter` may drop events the page does not show.
 */
export function useLive(node: string | null, onChange: () => void, debounceMs = 700, filter?: (e: { type: string; data: unknown }) => boolean): void {
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
    // onChange/filter are read at call time through the closure of the latest render on purpose.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [node]);
}
