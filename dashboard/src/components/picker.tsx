/**
 * A searchable pick list: a filter box over a plain <select>. A district has a dozen stations and the city 175, so a
 * bare select is a long scroll; typing part of a name (in the user's language) or an id narrows it, and a single
 * match is picked at once. No library: a few lines of markup keep the bundle small.
 */
import { useMemo, useState } from 'preact/hooks';
import { t } from '../i18n/index.ts';

export interface PickItem {
  value: string;
  /** What the option shows (id and name); the filter also matches `search`. */
  text: string;
  search?: string;
}

export function matches(item: PickItem, query: string): boolean {
  const q = query.trim().toLowerCase();
  if (q === '') return true;
  return `${item.value} ${item.text} ${item.search ?? ''}`.toLowerCase().includes(q);
}

export function SearchPick(props: {
  id: string;
  items: PickItem[];
  value: string;
  onChange: (v: string) => void;
  /** Called as the filter changes, for lists the hub searches (terminals). */
  onQuery?: (q: string) => void;
  required?: boolean;
}) {
  const [query, setQuery] = useState('');
  const shown = useMemo(() => (props.onQuery ? props.items : props.items.filter((i) => matches(i, query))), [props.items, query, props.onQuery]);
  const setFilter = (q: string) => {
    setQuery(q);
    props.onQuery?.(q);
    if (props.onQuery) return;
    const left = props.items.filter((i) => matches(i, q));
    if (left.length === 1) props.onChange(left[0]!.value);
    else if (!left.some((i) => i.value === props.value)) props.onChange('');
  };
  return (
    <div class="pick" data-testid={`${props.id}-pick`}>
      <input
        id={`${props.id}-filter`}
        type="search"
        class="pick-filter"
        aria-label={t('pick.filter')}
        placeholder={t('pick.filter')}
        value={query}
        onInput={(e) => setFilter((e.currentTarget as HTMLInputElement).value)}
      />
      <select
        id={props.id}
        required={props.required}
        size={Math.min(6, Math.max(2, shown.length + 1))}
        value={props.value}
        onChange={(e) => props.onChange((e.currentTarget as HTMLSelectElement).value)}
      >
        <option value="" disabled>
          {shown.length === 0 ? t('pick.none') : t('pick.count', { n: shown.length })}
        </option>
        {shown.map((i) => (
          <option key={i.value} value={i.value}>
            {i.text}
          </option>
        ))}
      </select>
    </div>
  );
}
