import { useState } from 'preact/hooks';
import { t } from '../i18n/index.ts';

/** Copies a secret shown once (terminal secret, one-time password, API token); says "copied" when it worked. */
export function CopyButton(props: { text: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      onClick={() => {
        void navigator.clipboard?.writeText(props.text).then(
          () => setDone(true),
          () => setDone(false),
        );
      }}
    >
      {done ? t('placement.copied') : t('placement.copy')}
    </button>
  );
}
