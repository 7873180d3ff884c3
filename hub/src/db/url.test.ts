import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../config.ts';
import { parseDatabaseUrl } from './url.ts';

describe('KF_DATABASE_URL', () => {
  it('unset, empty or sqlite: is the embedded SQLite', () => {
    expect(parseDatabaseUrl(undefined)).toEqual({ engine: 'sqlite' });
    expect(parseDatabaseUrl('  ')).toEqual({ engine: 'sqlite' });
    expect(parseDatabaseUrl('sqlite:')).toEqual({ engine: 'sqlite' });
    expect(parseConfig({}).database).toEqual({ engine: 'sqlite' });
  });

  it('reads a postgres URL, several hosts included, and keeps the password out of what it prints', () => {
    const t = parseDatabaseUrl('postgres://kf:s3cret@db1:5432,db2:5433/fleet?sslmode=require&target_session_attrs=read-write');
    expect(t).toMatchObject({ engine: 'postgres', hosts: ['db1:5432', 'db2:5433'], database: 'fleet', user: 'kf' });
    if (t.engine !== 'postgres') throw new Error('engine');
    expect(t.redacted).toBe('kf@db1:5432,db2:5433/fleet');
    expect(t.redacted).not.toContain('s3cret');
    expect(parseDatabaseUrl('postgresql://kf@127.0.0.1/fleet')).toMatchObject({ engine: 'postgres', hosts: ['127.0.0.1'] });
  });

  it.each([
    ['mysql://u@h/db', /unknown scheme "mysql:"/],
    ['sqlite:/tmp/x.db', /takes no path/],
    ['localhost:5432', /unknown scheme/],
    ['just words', /expected sqlite: or postgres/],
    ['postgres://u:pw@/db', /no host/],
    ['postgres://u:pw@h:5432', /no database/],
    ['postgres://h:5432/db', /no user/],
    ['postgres://u@h:99999/db', /port out of range/],
    ['postgres://u@h/db?sslmode=sometimes', /unknown sslmode "sometimes"/],
    ['postgres://u@h/db?target_session_attrs=any-old', /unknown target_session_attrs/],
  ])('refuses %s with the reason', (url, reason) => {
    expect(() => parseDatabaseUrl(url)).toThrow(reason);
  });

  it('is a config error naming the key, without the password', () => {
    let err: unknown;
    try {
      parseConfig({ KF_DATABASE_URL: 'postgres://kf:hunter2hunter2@db/fleet?sslmode=maybe' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).key).toBe('KF_DATABASE_URL');
    expect((err as Error).message).toMatch(/^KF_DATABASE_URL: unknown sslmode/);
    expect((err as Error).message).not.toContain('hunter2');
  });
});
