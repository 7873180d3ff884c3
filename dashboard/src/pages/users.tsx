import { getList } from '../api.ts';
import { useResource } from '../hooks.ts';
import { t } from '../i18n/index.ts';
import { formatDateTime } from '../format.ts';
import { Loadable, Section } from '../components/ui.tsx';

export function UsersPage() {
  const users = useResource(() => getList('users'), []);
  const audit = useResource(() => getList('audit', { limit: '100' }), []);
  return (
    <div class="page" data-page="users">
      <h1>{t('users.title')}</h1>
      <Section title={t('users.users')} id="users">
        <Loadable res={users} what={t('users.users')}>
          {(page) => (
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">{t('users.name')}</th>
                    <th scope="col">{t('users.role')}</th>
                    <th scope="col">{t('users.scope')}</th>
                  </tr>
                </thead>
                <tbody>
                  {page.items.map((u) => (
                    <tr key={String(u.id ?? u.username)}>
                      <td>{String(u.username ?? u.name ?? u.id)}</td>
                      <td>{String(u.role ?? '')}</td>
                      <td>{String(u.scope ?? u.nodeId ?? '')}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Loadable>
      </Section>
      <Section title={t('users.audit')} id="audit">
        <Loadable res={audit} what={t('users.audit')}>
          {(page) => (
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">{t('users.when')}</th>
                    <th scope="col">{t('users.actor')}</th>
                    <th scope="col">{t('users.action')}</th>
                    <th scope="col">{t('users.subject')}</th>
                  </tr>
                </thead>
                <tbody>
                  {page.items.map((a, i) => (
                    <tr key={String(a.id ?? i)}>
                      <td>{formatDateTime(String(a.at ?? a.createdAt ?? ''))}</td>
                      <td>{String(a.actor ?? '')}</td>
                      <td>{String(a.action ?? '')}</td>
                      <td>{String(a.subject ?? a.target ?? '')}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Loadable>
      </Section>
    </div>
  );
}
