/**
 * The tree (city, districts, stations: under two hundred nodes for the reference city) is loaded once per session
 * and kept here, so breadcrumbs and station names never cost a request per row.
 */
import { useEffect, useState } from 'preact/hooks';
import { getNodes } from './api.ts';
import type { NodeView } from './model.ts';
import { pickName } from './i18n/index.ts';

export interface Tree {
  byId: Map<string, NodeView>;
  children: Map<string, NodeView[]>;
  root: NodeView | null;
}

let tree: Tree | null = null;
let loading: Promise<void> | null = null;
const listeners = new Set<(t: Tree | null) => void>();

function build(nodes: NodeView[]): Tree {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const children = new Map<string, NodeView[]>();
  for (const n of nodes) {
    if (n.parentId === null) continue; // the city
    const list = children.get(n.parentId) ?? [];
    list.push(n);
    children.set(n.parentId, list);
  }
  for (const list of children.values()) list.sort((a, b) => a.id.localeCompare(b.id));
  // An operator scoped to a district or station sees only that part of the tree: their top node is the root.
  const depth = (n: NodeView) => n.id.split('-').length;
  const top = [...nodes].sort((a, b) => depth(a) - depth(b) || a.id.localeCompare(b.id))[0] ?? null;
  return { byId, children, root: top };
}

export function refreshTree(): Promise<void> {
  loading = getNodes().then((r) => {
    if (r.ok) {
      tree = build(r.data);
      for (const l of listeners) l(tree);
    }
    loading = null;
  });
  return loading;
}

export function useTree(): Tree | null {
  const [t, set] = useState(tree);
  useEffect(() => {
    listeners.add(set);
    // Effects run after paint: a tree that arrived between this component's render and now would never reach it
    // (seen on a loaded machine: a phone's alert queue kept station ids instead of names).
    if (tree) set(tree);
    else if (!loading) void refreshTree();
    return () => listeners.delete(set);
  }, []);
  return t;
}

export function nodeName(t: Tree | null, id: string): string {
  const n = t?.byId.get(id);
  return n ? pickName(n.name, id) : id;
}

export function resetTree(): void {
  tree = null;
}
