import { nodePath } from '@kiosk-fleet/protocol';
import { t } from '../i18n/index.ts';
import { nodeName, useTree } from '../nodes.ts';

/** City › district › station (› terminal), every level a link but the last. */
export function Breadcrumb(props: { nodeId: string; terminal?: string }) {
  const tree = useTree();
  // Only nodes of the operator's own tree: above their node there is nothing they may open (a district technician's
  // "GZ" led to "not found"), and nothing with a name to show.
  const path = nodePath(props.nodeId).filter((id) => !tree || tree.byId.has(id));
  const items = path.map((id) => ({ href: id === tree?.root?.id ? '/' : `/nodes/${encodeURIComponent(id)}`, label: nodeName(tree, id) }));
  if (props.terminal) items.push({ href: '', label: props.terminal });
  return (
    <nav aria-label={t('nav.breadcrumb')} class="crumbs">
      <ol>
        {items.map((it, i) => (
          <li key={it.label}>
            {i === items.length - 1 ? <span aria-current="page">{it.label}</span> : <a href={it.href}>{it.label}</a>}
          </li>
        ))}
      </ol>
    </nav>
  );
}
