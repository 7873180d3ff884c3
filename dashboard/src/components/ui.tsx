import type { ComponentChildren } from 'preact';
import type { PeripheralStatus, Text } from '@kiosk-fleet/protocol';
import { t } from '../i18n/index.ts';
import type { Resource } from '../hooks.ts';
import type { Counts, PresenceState } from '../model.ts';
import { errorText } from '../hub-text.ts';

export function Loadable<T>(props: { res: Resource<T>; what: string; children: (data: T) => ComponentChildren }) {
  const { res } = props;
  if (res.data !== null && res.data !== undefined) {
    return (
      <>
        {res.state === 'error' && <ErrorNote error={res.error} what={props.what} onRetry={res.reload} />}
        {props.children(res.data)}
      </>
    );
  }
  if (res.state === 'loading') return <p class="muted" role="status">{t('state.loading')}</p>;
  if (res.state === 'error') return <ErrorNote error={res.error} what={props.what} onRetry={res.reload} />;
  return null;
}

export function ErrorNote(props: { error: { status: number; message: string; routeMissing?: boolean; text?: Text | null }; what: string; onRetry?: () => void }) {
  const { error } = props;
  if (error.routeMissing) {
    return (
      <p class="note not-available" data-testid="not-available">
        {t('state.notAvailable', { what: props.what })}
      </p>
    );
  }
  const text =
    error.status === 404 ? t('state.notFound') : error.status === 403 ? t('state.forbidden') : t('state.error', { message: errorText(error) });
  return (
    <p class="note error" role="alert">
      {text}{' '}
      {props.onRetry && error.status !== 404 && error.status !== 403 && (
        <button type="button" class="link" onClick={props.onRetry}>
          {t('state.retry')}
        </button>
      )}
    </p>
  );
}

export function PresenceBadge(props: { state: PresenceState; flapping?: boolean }) {
  const label = props.flapping ? t('presence.flapping') : t(`presence.${props.state}`);
  return <span class={`badge presence-${props.flapping ? 'flapping' : props.state}`}>{label}</span>;
}

export function PeripheralBadge(props: { status: PeripheralStatus; label?: string; title?: string }) {
  return (
    <span class={`badge periph-${props.status}`} title={props.title} data-status={props.status}>
      {props.label ? `${props.label}: ` : ''}
      {t(`periph.${props.status}`)}
    </span>
  );
}

export function CountsBar(props: { counts: Counts }) {
  const c = props.counts;
  return (
    <dl class="counts">
      <div class="c-online">
        <dt>{t('counts.online')}</dt>
        <dd>{c.online}</dd>
      </div>
      <div class={c.offline > 0 ? 'c-offline hot' : 'c-offline'}>
        <dt>{t('counts.offline')}</dt>
        <dd>{c.offline + c.stale}</dd>
      </div>
      {c.unknown > 0 && (
        <div class="c-unknown">
          <dt>{t('counts.unknown')}</dt>
          <dd>{c.unknown}</dd>
        </div>
      )}
      <div class={c.fault > 0 ? 'c-fault hot' : 'c-fault'}>
        <dt>{t('counts.fault')}</dt>
        <dd>{c.fault}</dd>
      </div>
      <div class="c-total">
        <dt>{t('counts.total')}</dt>
        <dd>{c.total}</dd>
      </div>
    </dl>
  );
}

export function Section(props: { title: string; id?: string; children: ComponentChildren; actions?: ComponentChildren }) {
  const hid = props.id ? `${props.id}-h` : undefined;
  return (
    <section class="card" id={props.id} aria-labelledby={hid}>
      <div class="card-head">
        <h2 id={hid}>{props.title}</h2>
        {props.actions}
      </div>
      {props.children}
    </section>
  );
}
