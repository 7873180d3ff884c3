/**
 * KF_DATABASE_URL: which engine holds the fleet. Unset, empty or `sqlite:` is the embedded default, one SQLite file
 * under KF_DATA_DIR; `postgres://user[:password]@host[:port]/db[?sslmode=…]` (or `postgresql://`) is PostgreSQL 15 or
 * later. Anything else is refused at start with the reason. A password never appears in an error or a log line:
 * `redacted` is what the hub prints.
 */

export type DatabaseTarget =
  | { engine: 'sqlite' }
  | {
      engine: 'postgres';
      /** The URL as given, password included: only for the driver. */
      url: string;
      /** host[:port]/db, for messages. Several hosts (a standby failover list) are kept as given. */
      redacted: string;
      hosts: string[];
      database: string;
      user: string;
    };

export class DatabaseUrlError extends Error {
  override name = 'DatabaseUrlError';
}

const SSL_MODES = new Set(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']);
const TARGET_SESSION_ATTRS = new Set(['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby']);

export function parseDatabaseUrl(raw: string | undefined): DatabaseTarget {
  const value = raw?.trim() ?? '';
  if (value === '' || value === 'sqlite:') return { engine: 'sqlite' };
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(value)?.[1]?.toLowerCase();
  if (scheme === undefined) throw new DatabaseUrlError('expected sqlite: or postgres://user@host[:port]/database');
  if (scheme === 'sqlite') {
    throw new DatabaseUrlError('sqlite: takes no path (the file lives under KF_DATA_DIR); write just "sqlite:" or leave it unset');
  }
  if (scheme !== 'postgres' && scheme !== 'postgresql') {
    throw new DatabaseUrlError(`unknown scheme "${scheme}:" (expected sqlite: or postgres://)`);
  }
  // Several hosts (`postgres://u@h1:5432,h2:5432/db`) are legal for postgres.js; WHATWG URL would refuse the comma, so
  // the authority is split by hand and the rest checked with URL.
  const m = /^[a-z]+:\/\/(?:([^@/?#]*)@)?([^/?#]*)(\/[^?#]*)?(\?[^#]*)?$/i.exec(value);
  if (!m) throw new DatabaseUrlError('malformed URL: expected postgres://user[:password]@host[:port]/database');
  const userInfo = m[1] ?? '';
  const hostPart = m[2] ?? '';
  const database = decodeURIComponent((m[3] ?? '').replace(/^\//, ''));
  const query = new URLSearchParams(m[4] ?? '');
  const user = decodeURIComponent(userInfo.split(':')[0] ?? '');
  if (hostPart === '') throw new DatabaseUrlError('malformed URL: no host (postgres://user@host[:port]/database)');
  if (database === '' || database.includes('/')) throw new DatabaseUrlError('malformed URL: no database name (postgres://user@host[:port]/database)');
  if (user === '') throw new DatabaseUrlError('malformed URL: no user name (postgres://user@host[:port]/database)');
  const hosts = hostPart.split(',');
  for (const h of hosts) {
    const hm = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/i.exec(h);
    if (!hm) throw new DatabaseUrlError(`malformed host "${h}"`);
    if (hm[2] !== undefined && (Number(hm[2]) < 1 || Number(hm[2]) > 65535)) throw new DatabaseUrlError(`port out of range in "${h}"`);
  }
  const sslmode = query.get('sslmode');
  if (sslmode !== null && !SSL_MODES.has(sslmode)) throw new DatabaseUrlError(`unknown sslmode "${sslmode}" (${[...SSL_MODES].join(', ')})`);
  const tsa = query.get('target_session_attrs');
  if (tsa !== null && !TARGET_SESSION_ATTRS.has(tsa)) {
    throw new DatabaseUrlError(`unknown target_session_attrs "${tsa}" (${[...TARGET_SESSION_ATTRS].join(', ')})`);
  }
  return { engine: 'postgres', url: value, redacted: `${user}@${hostPart}/${database}`, hosts, database, user };
}
