/**
 * Operators and the audit log (who did what, where, when), for admins; the hub limits both to the caller's node.
 * User management: create (a one-time password shown once), reset password, disable / enable, and each user's API
 * tokens (create narrowed, revoke). The pickers offer only what the operator may grant; the hub enforces it anyway.
 */
import { useMemo, useState } from 'preact/hooks';
import {
  createUser,
  createUserToken,
  getAudit,
  getMe,
  getUsers,
  getUserTokens,
  resetUserPassword,
  revokeToken,
  setUserDisabled,
  verifyAudit,
  type AuditRow,
  type Me,
  type RoleName,
  type UserRow,
} from '../api.ts';
import { useResource } from '../hooks.ts';
import { hasKey, pickName, t, type MessageKey } from '../i18n/index.ts';
import { nodeName, useTree, type Tree } from '../nodes.ts';
import { formatDateTime } from '../format.ts';
import { Loadable, Section } from '../components/ui.tsx';
import { CopyButton } from '../components/copy.tsx';
import { SearchPick, type PickItem } from '../components/picker.tsx';
import { errorText } from '../hub-text.ts';

/** The hub's rules (auth/permissions.ts: RANK, ROLE_LEVELS), so the pickers offer only what it would accept. */
const ROLE_RANK: Record<RoleName, number> = { 'city-admin': 3, 'district-admin': 2, technician: 1, viewer: 0 };
const ROLE_LEVELS: Record<RoleName, readonly ('all' | 'city' | 'district' | 'station')[]> = {
  'city-admin': ['all', 'city'],
  'district-admin': ['district'],
  technician: ['district', 'station'],
  viewer: ['all', 'city', 'district', 'station'],
};
const ALL = '*';

function grantableRoles(role: string): RoleName[] {
  const mine = ROLE_RANK[role as RoleName] ?? -1;
  return (Object.keys(ROLE_RANK) as RoleName[]).filter((r) => ROLE_RANK[r] <= mine);
}

/** Nodes a role may be bound to, within `scope` (null: the whole installation, which is then offered too). */
function nodeItems(tree: Tree | null, role: RoleName, scope: string | null): PickItem[] {
  const levels = ROLE_LEVELS[role];
  const items: PickItem[] = [];
  if (scope === null && levels.includes('all')) items.push({ value: ALL, text: t('users.nodeAll') });
  for (const n of [...(tree?.byId.values() ?? [])].sort((a, b) => a.id.localeCompare(b.id))) {
    if (!levels.includes(n.level)) continue;
    if (scope !== null && n.id !== scope && !n.id.startsWith(`${scope}-`)) continue;
    items.push({ value: n.id, text: `${pickName(n.name, n.id)} · ${n.id}`, search: `${n.name.zh} ${n.name.en}` });
  }
  return items;
}

function Secret(props: { text: string; value: string; testid: string }) {
  return (
    <div class="secret" role="status" data-testid={props.testid}>
      <p>{props.text}</p>
      <p class="secret-line">
        <code data-testid={`${props.testid}-value`}>{props.value}</code> <CopyButton text={props.value} />
      </p>
    </div>
  );
}

function CreateUser(props: { me: Me; tree: Tree | null; onDone: () => void }) {
  const roles = grantableRoles(props.me.role);
  const [username, setUsername] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [role, setRole] = useState<RoleName>(roles.includes('technician') ? 'technician' : (roles[0] ?? 'viewer'));
  const [node, setNode] = useState('');
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  const [made, setMade] = useState<{ username: string; password: string } | null>(null);
  const items = useMemo(() => nodeItems(props.tree, role, props.me.nodeId), [props.tree, role, props.me.nodeId]);
  return (
    <form
      class="stack"
      data-testid="create-user"
      onSubmit={async (e) => {
        e.preventDefault();
        if (!node) return;
        setBusy(true);
        setErr(null);
        setMade(null);
        const r = await createUser({ username: username.trim(), ...(displayName.trim() ? { displayName: displayName.trim() } : {}), role, nodeId: node === ALL ? null : node });
        setBusy(false);
        if (r.ok) {
          setMade({ username: username.trim(), password: r.data.password ?? '' });
          setUsername('');
          setDisplayName('');
          props.onDone();
        } else setErr(t('common.failed', { message: errorText(r.error) }));
      }}
    >
      <h3>{t('users.create')}</h3>
      <label for="nu-username">{t('users.username')}</label>
      <input id="nu-username" required minLength={3} maxLength={64} pattern="[A-Za-z0-9][A-Za-z0-9._\-]{2,63}" value={username} onInput={(e) => setUsername((e.currentTarget as HTMLInputElement).value)} />
      <label for="nu-display">{t('users.displayName')}</label>
      <input id="nu-display" maxLength={128} value={displayName} onInput={(e) => setDisplayName((e.currentTarget as HTMLInputElement).value)} />
      <label for="nu-role">{t('users.role')}</label>
      <select
        id="nu-role"
        value={role}
        onChange={(e) => {
          setRole((e.currentTarget as HTMLSelectElement).value as RoleName);
          setNode('');
        }}
      >
        {roles.map((r) => (
          <option key={r} value={r}>
            {roleLabel(r)}
          </option>
        ))}
      </select>
      <label for="nu-node">{t('users.node')}</label>
      <SearchPick id="nu-node" required items={items} value={node} onChange={setNode} />
      <button type="submit" class="primary" disabled={busy || !node}>
        {busy ? t('common.saving') : t('users.submitCreate')}
      </button>
      {err && (
        <p class="note error" role="alert">
          {err}
        </p>
      )}
      {made && <Secret testid="one-time-password" text={t('users.oneTime', { user: made.username })} value={made.password} />}
    </form>
  );
}

function Tokens(props: { user: UserRow; tree: Tree | null }) {
  const { user } = props;
  const tokens = useResource(() => getUserTokens(user.id), [user.id]);
  const roles = (Object.keys(ROLE_RANK) as RoleName[]).filter((r) => ROLE_RANK[r] <= (ROLE_RANK[user.role as RoleName] ?? -1));
  const [name, setName] = useState('');
  const [role, setRole] = useState<RoleName>(user.role as RoleName);
  const [node, setNode] = useState(user.nodeId ?? ALL);
  const [days, setDays] = useState('90');
  const [err, setErr] = useState<string | null>(null);
  const [made, setMade] = useState<string | null>(null);
  const items = useMemo(() => nodeItems(props.tree, role, user.nodeId), [props.tree, role, user.nodeId]);
  return (
    <div class="tokens" data-testid="tokens">
      <h3>{t('users.tokensOf', { user: user.username })}</h3>
      <Loadable res={tokens} what={t('users.tokens')}>
        {(list) =>
          list.length === 0 ? (
            <p class="muted">{t('users.noTokens')}</p>
          ) : (
            <div class="table-wrap">
              <table class="results">
                <thead>
                  <tr>
                    <th scope="col">{t('users.tokenName')}</th>
                    <th scope="col">{t('users.role')}</th>
                    <th scope="col">{t('users.scope')}</th>
                    <th scope="col">{t('users.expires')}</th>
                    <th scope="col">{t('users.actions')}</th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((tk) => (
                    <tr key={tk.id} data-token={tk.name}>
                      <th scope="row">{tk.name}</th>
                      <td>{roleLabel(tk.role)}</td>
                      <td>{tk.nodeId ? nodeName(props.tree, tk.nodeId) : t('users.everywhere')}</td>
                      <td>{formatDateTime(tk.expiresAt)}</td>
                      <td>
                        {tk.active ? (
                          <button
                            type="button"
                            class="danger"
                            onClick={async () => {
                              if (!confirm(t('users.revokeConfirm', { name: tk.name }))) return;
                              const r = await revokeToken(tk.id);
                              if (!r.ok) setErr(t('common.failed', { message: errorText(r.error) }));
                              tokens.reload();
                            }}
                          >
                            {t('users.revoke')}
                          </button>
                        ) : (
                          <span class="muted">{t('users.revoked')}</span>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Loadable>
      <form
        class="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          setErr(null);
          setMade(null);
          const r = await createUserToken(user.id, { name: name.trim(), role, nodeId: node === ALL ? null : node, expiresInDays: Number(days) });
          if (r.ok) {
            setMade(r.data.token);
            setName('');
            tokens.reload();
          } else setErr(t('common.failed', { message: errorText(r.error) }));
        }}
      >
        <label for="tk-name">{t('users.tokenName')}</label>
        <input id="tk-name" required maxLength={128} value={name} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />
        <label for="tk-role">{t('users.tokenRole')}</label>
        <select
          id="tk-role"
          value={role}
          onChange={(e) => {
            setRole((e.currentTarget as HTMLSelectElement).value as RoleName);
            setNode('');
          }}
        >
          {roles.map((r) => (
            <option key={r} value={r}>
              {roleLabel(r)}
            </option>
          ))}
        </select>
        <label for="tk-node">{t('users.tokenNode')}</label>
        <SearchPick id="tk-node" required items={items} value={node} onChange={setNode} />
        <label for="tk-days">{t('users.tokenDays')}</label>
        <input id="tk-days" type="number" min={1} max={366} required value={days} onInput={(e) => setDays((e.currentTarget as HTMLInputElement).value)} />
        <button type="submit" class="primary" disabled={!node}>
          {t('users.submitToken')}
        </button>
      </form>
      {err && (
        <p class="note error" role="alert">
          {err}
        </p>
      )}
      {made && <Secret testid="new-token" text={t('users.tokenOnce')} value={made} />}
    </div>
  );
}

function UserActions(props: { u: UserRow; me: Me; onDone: () => void; onTokens: () => void }) {
  const { u } = props;
  const [password, setPassword] = useState<string | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const self = props.me.username === u.username;
  return (
    <div class="actions">
      <button
        type="button"
        onClick={async () => {
          if (!confirm(t('users.resetConfirm', { user: u.username }))) return;
          setErr(null);
          const r = await resetUserPassword(u.id);
          if (r.ok) setPassword(r.data);
          else setErr(t('common.failed', { message: errorText(r.error) }));
          props.onDone();
        }}
      >
        {t('users.reset')}
      </button>
      {!self && (
        <button
          type="button"
          class={u.disabled ? '' : 'danger'}
          onClick={async () => {
            if (!u.disabled && !confirm(t('users.disableConfirm', { user: u.username }))) return;
            setErr(null);
            const r = await setUserDisabled(u.id, !u.disabled);
            if (!r.ok) setErr(t('common.failed', { message: errorText(r.error) }));
            props.onDone();
          }}
        >
          {u.disabled ? t('users.enable') : t('users.disable')}
        </button>
      )}
      <button type="button" onClick={props.onTokens}>
        {t('users.tokens')}
      </button>
      {password && <Secret testid="reset-password" text={t('users.oneTime', { user: u.username })} value={password} />}
      {err && (
        <p class="note error" role="alert">
          {err}
        </p>
      )}
    </div>
  );
}

function roleLabel(role: string): string {
  const key = `role.${role}`;
  return hasKey(key) ? t(key as MessageKey) : role;
}

export function UsersPage() {
  const tree = useTree();
  const me = useResource(() => getMe(), []);
  const users = useResource(() => getUsers(), []);
  const [tokensOf, setTokensOf] = useState<string | null>(null);
  const manages = me.data?.permissions.includes('user:manage') ?? false;
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
                    {manages && <th scope="col">{t('users.actions')}</th>}
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
                      {manages && me.data && (
                        <td>
                          <UserActions u={u} me={me.data} onDone={users.reload} onTokens={() => setTokensOf(tokensOf === u.id ? null : u.id)} />
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Loadable>
        {manages && users.data && tokensOf && users.data.some((u) => u.id === tokensOf) && (
          <Tokens key={tokensOf} user={users.data.find((u) => u.id === tokensOf)!} tree={tree} />
        )}
        {manages && me.data && <CreateUser me={me.data} tree={tree} onDone={users.reload} />}
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
                  : t('common.failed', { message: errorText(r.error) }),
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
