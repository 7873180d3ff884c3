/**
 * Sentences the hub writes (alert titles, alert history, rollout pause reasons) arrive as a code with parameters
 * beside their English text; they are rendered here from the protocol's catalogue (TEXTS) in the reader's language,
 * with station and district names from the tree, catalog names of services and peripherals, and times in the
 * bureau's zone. A code this build does not know (a newer hub) shows the English text it came with.
 */
import { renderText, statusText, type Text } from '@kiosk-fleet/protocol';
import { formatShort } from './format.ts';
import { getLanguage } from './i18n/index.ts';
import type { Tree } from './nodes.ts';

const numbers = new Map<string, Intl.NumberFormat>();

export function hubText(text: Text | null | undefined, tree: Tree | null, english: string): string {
  const lang = getLanguage();
  let nf = numbers.get(lang);
  if (!nf) numbers.set(lang, (nf = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 })));
  return (
    renderText(text, lang === 'en' ? 'en' : 'zh', {
      node: (id) => tree?.byId.get(id)?.name,
      time: formatShort,
      number: (n) => nf.format(n),
    }) ?? english
  );
}

/**
 * A failed request in the reader's language: the hub's `error.text`, or (an older hub, a proxy's page, no answer) the
 * generic sentence for its HTTP status (api.ts ApiError). Never the hub's English `message`, which would put English inside a zh page.
 */
export function errorText(e: { status: number; text?: Text | null }, tree: Tree | null = null): string {
  const own = e.text ? hubText(e.text, tree, '') : '';
  return own || (hubText(statusText(e.status), tree, '') ?? '');
}
