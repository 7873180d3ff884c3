/**
 * Two complete dictionaries (zh-CN and English), a language that follows the browser until the user picks one,
 * and `t(key, vars)` with `{name}` placeholders. A key present in one dictionary and missing in the other fails
 * the type check (zh is typed against en) and the i18n unit test (which also catches empty strings and
 * placeholder mismatches).
 */
import { useEffect, useState } from 'preact/hooks';
import { en, type MessageKey } from './en.ts';
import { zh } from './zh.ts';

export type { MessageKey };
export const LANGUAGES = ['zh-CN', 'en'] as const;
export type Language = (typeof LANGUAGES)[number];

export const dictionaries: Record<Language, Record<MessageKey, string>> = { 'zh-CN': zh, en };

const STORAGE_KEY = 'kf.lang';

/** Chinese for any zh-* browser language, English otherwise; a stored choice wins. */
export function detectLanguage(stored: string | null, browser: readonly string[]): Language {
  if (stored === 'zh-CN' || stored === 'en') return stored;
  for (const tag of browser) {
    const lower = tag.toLowerCase();
    if (lower.startsWith('zh')) return 'zh-CN';
    if (lower.startsWith('en')) return 'en';
  }
  return 'zh-CN';
}

function readStored(): string | null {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

let current: Language =
  typeof navigator === 'undefined' ? 'zh-CN' : detectLanguage(readStored(), navigator.languages ?? [navigator.language]);
const listeners = new Set<(lang: Language) => void>();

export function getLanguage(): Language {
  return current;
}

export function setLanguage(lang: Language): void {
  current = lang;
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    // Private mode: the choice lasts for this page only.
  }
  if (typeof document !== 'undefined') document.documentElement.lang = lang;
  for (const l of listeners) l(lang);
}

export function format(template: string, vars?: Record<string, string | number>): string {
  if (!vars) return template;
  return template.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? String(vars[name]) : m));
}

export function t(key: MessageKey, vars?: Record<string, string | number>): string {
  return format(dictionaries[current][key], vars);
}

export function hasKey(key: string): key is MessageKey {
  return Object.hasOwn(en, key);
}

/** Pick the right half of a catalog name ({zh, en}). */
export function pickName(name: { zh: string; en: string } | undefined | null, fallback = ''): string {
  if (!name) return fallback;
  return current === 'zh-CN' ? name.zh : name.en;
}

/** Re-renders the calling component when the language changes. */
export function useLanguage(): Language {
  const [lang, setLang] = useState(current);
  useEffect(() => {
    listeners.add(setLang);
    return () => listeners.delete(setLang);
  }, []);
  return lang;
}

if (typeof document !== 'undefined') document.documentElement.lang = current;
