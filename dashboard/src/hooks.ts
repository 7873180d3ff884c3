import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { ApiError, Result } from './api.ts';

export type Resource<T> =
  | { state: 'loading'; data: T | null; error: null; reload: () => void }
  | { state: 'ok'; data: T; error: null; reload: () => void }
  | { state: 'error'; data: T | null; error: ApiError; reload: () => void };

/**
 * Load `fetcher()` when `deps` change; `reload()` refetches keeping the current data on screen (live refreshes
 * must not blank the page).
 */
export function useResource<T>(fetcher: () => Promise<Result<T>>, deps: unknown[]): Resource<T> {
  const [res, setRes] = useState<{ state: 'loading' | 'ok' | 'error'; data: T | null; error: ApiError | null }>({
    state: 'loading',
    data: null,
    error: null,
  });
  const gen = useRef(0);
  const fetcherRef = useRef(fetcher);
  fetcherRef.current = fetcher;
  const load = useCallback((keep: boolean) => {
    const my = ++gen.current;
    if (!keep) setRes({ state: 'loading', data: null, error: null });
    void fetcherRef.current().then((r) => {
      if (my !== gen.current) return;
      setRes((prev) => (r.ok ? { state: 'ok', data: r.data, error: null } : { state: 'error', data: prev.data, error: r.error }));
    });
  }, []);
  useEffect(() => {
    load(false);
  }, deps);
  const reload = useCallback(() => load(true), [load]);
  return { ...res, reload } as Resource<T>;
}
