/** Operators and the audit log (who did what, where, when), for admins; the hub limits both to the caller's node. */
import { useState } from 'preact/hooks';
import { getAudit, getUsers, verifyAudit, type AuditRow } from '../api.ts';
import { useResource } from '../hooks.ts';
import { hasKey, t, type MessageKey } from '../i18n/index.ts';
import { nodeName, useTree } from '../nodes.ts';
import { formatDateTime } from '../format.ts';
import { Loadable, Section } from '../components/ui.tsx';

function roleLabel(role: string): string {
  const key = `role.${role}`;
  return hasKey(key) ? t(key as MessageKey) : role;
}

export function UsersPage() {
  const tree = useTree();
  const users = useResource(() => getUsers(), []);
  const audit = useResource(() => getAudit(), []);
  const [more, setMore] = useState<{ items: AuditRow[]; cursor: string | null } | null>(null);
  const [verified, setVerified] = useState<string | null>(null);
  const rows = [...(audit.data?.items ?? []), ...(more?.items ?? [])];
  const cursor = more ? more.cursor : (audit.data?.nextCursor ?? null);
  return (
    <div class="page" data-page="users">
      <h1>{t('users.title')}</h1>
      <Section title={t('users.users')} id="users">
        <Loadable res={users} what={t('users.users')}>
          {(items) => (
            <div class="table-wrap">
              <table class="results">
                <thead>
                  <tr>
                    <th scope="col">{t('users.name')}</th>
                    <th scope="col">{t('users.role')}</th>
                    <th scope="col">{t('users.scope')}</th>
                    <th scope="col">{t('users.state')}</th>
                  </tr>
                </thead>
                <tbody>
                  {items.map((u) => (
                    <tr key={u.id} data-user={u.username}>
                      <th scope="row">
                        {u.username}
                        {u.displayName && <span class="muted"> · {u.displayName}</span>}
                      </th>
                      <td>{roleLabel(u.role)}</td>
                      <td>{u.nodeId ? nodeName(tree, u.nodeId) : t('users.everywhere')}</td>
                      <td>{u.disabled ? t('users.disabled') : u.mustChangePassword ? t('users.mustChange') : t('users.active')}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Loadable>
      </Section>
      <Section
        title={t('users.audit')}
        id="audit"
        actions={
          <button
            type="button"
            onClick={async () => {
              const r = await verifyAudit();
              setVerified(
                r.ok
                  ? r.data.ok
                    ? t('users.chainOk', { n: r.data.checked })
                    : t('users.chainBroken', { id: r.data.brokenAt ?? '?', message: r.data.message ?? '' })
                  : t('common.failed', { message: r.error.message }),
              );
            }}
          >
            {t('users.verify')}
          </button>
        }
      >
        {verified && (
          <p class="note" role="status" data-testid="audit-verify">
            {verified}
          </p>
        )}
        <Loadable res={audit} what={t('users.audit')}>
          {() => (
            <div class="table-wrap">
              <table class="results">
                <thead>
                  <tr>
                    <th scope="col">{t('users.when')}</th>
                    <th scope="col">{t('users.actor')}</th>
                    <th scope="col">{t('users.action')}</th>
                    <th scope="col">{t('users.subject')}</th>
                    <th scope="col">{t('users.outcome')}</th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((a) => (
                    <tr key={a.id} data-action={a.action}>
                      <th scope="row">{formatDateTime(a.at)}</th>
                      <td>{a.actor}</td>
                      <td>{a.action}</td>
                      <td>
                        {a.objectType} {a.objectId ?? ''}
                        {a.nodeId && <span class="muted"> · {nodeName(tree, a.nodeId)}</span>}
                      </td>
                      <td>{a.outcome}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Loadable>
        {cursor && (
          <button
            type="button"
            onClick={async () => {
              const r = await getAudit(cursor);
              if (r.ok) setMore({ items: [...(more?.items ?? []), ...r.data.items], cursor: r.data.nextCursor });
            }}
          >
            {t('common.loadMore')}
          </button>
        )}
      </Section>
    </div>
  );
}
