/**
 * Every statement of the leadership plugin. The lease is one row of `<schema>.leadership_lease`;
 * all times are the database's clock (`now()`), so workers on different machines agree on expiry.
 */
import type { Migration, SqlClient } from '@docket/core';

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'leadership lease',
    up: ({ schema }) => `
      CREATE TABLE ${schema}.leadership_lease (
        -- One lease per schema: a single row.
        id           boolean PRIMARY KEY DEFAULT true CHECK (id),
        -- Worker id of the holder, for people; NULL once released.
        holder       text,
        -- Identifies one run of one worker (a restarted worker with the same id is a new holder).
        token        text,
        -- The fencing token: grows by one every time a different holder takes the lease.
        term         bigint NOT NULL,
        acquired_at  timestamptz NOT NULL,
        renewed_at   timestamptz NOT NULL,
        expires_at   timestamptz NOT NULL
      );
    `,
  },
]);

export interface LeaseRow {
  /** True when the caller holds the lease after the statement. */
  mine: boolean;
  holder: string | null;
  term: string;
  /** Milliseconds until the lease expires, on the database clock (negative when expired). */
  remaining_ms: number;
}

/**
 * Takes the lease if it is free or expired, or renews it if the caller holds it; increments the
 * term when a different holder takes it. One statement: it answers with the caller's lease, or,
 * when someone else holds it, with theirs.
 */
export async function leaseRenew(sql: SqlClient, schema: string, params: { holder: string; token: string; leaseMs: number }): Promise<LeaseRow> {
  const rows = await sql.unsafe<LeaseRow[]>(
    `WITH taken AS (
       INSERT INTO ${schema}.leadership_lease AS l (id, holder, token, term, acquired_at, renewed_at, expires_at)
       VALUES (true, $1, $2, 1, now(), now(), now() + $3::int * interval '1 millisecond')
       ON CONFLICT (id) DO UPDATE SET
         holder      = excluded.holder,
         token       = excluded.token,
         term        = CASE WHEN l.token IS NOT DISTINCT FROM excluded.token THEN l.term ELSE l.term + 1 END,
         acquired_at = CASE WHEN l.token IS NOT DISTINCT FROM excluded.token THEN l.acquired_at ELSE now() END,
         renewed_at  = now(),
         expires_at  = excluded.expires_at
       WHERE l.token = excluded.token OR l.expires_at <= now()
       RETURNING l.holder, l.term, l.expires_at
     )
     SELECT true AS mine, holder, term::text AS term,
            (extract(epoch FROM expires_at - now()) * 1000)::float8 AS remaining_ms
       FROM taken
     UNION ALL
     SELECT false, holder, term::text, (extract(epoch FROM expires_at - now()) * 1000)::float8
       FROM ${schema}.leadership_lease
      WHERE NOT EXISTS (SELECT 1 FROM taken)`,
    [params.holder, params.token, params.leaseMs],
  );
  const [row] = rows;
  if (!row) throw new Error('leadership: renewing the lease returned no row.');
  return row;
}

/** Gives the lease up at once (expires now) if the caller still holds it; returns its term then. */
export async function leaseRelease(sql: SqlClient, schema: string, params: { token: string }): Promise<string | null> {
  const rows = await sql.unsafe<Array<{ term: string }>>(
    `UPDATE ${schema}.leadership_lease
        SET holder = NULL, token = NULL, expires_at = now()
      WHERE token = $1
      RETURNING term::text AS term`,
    [params.token],
  );
  return rows[0]?.term ?? null;
}

export interface LeaseRecord {
  holder: string | null;
  term: string;
  acquiredAt: Date;
  renewedAt: Date;
  expiresAt: Date;
  /** Whether the lease is held now (by the database clock). */
  live: boolean;
}

/** The lease as stored, or null before any worker took it. */
export async function leaseRead(sql: SqlClient, schema: string): Promise<LeaseRecord | null> {
  const rows = await sql.unsafe<Array<{ holder: string | null; term: string; acquired_at: Date; renewed_at: Date; expires_at: Date; live: boolean }>>(
    `SELECT holder, term::text AS term, acquired_at, renewed_at, expires_at, (holder IS NOT NULL AND expires_at > now()) AS live
       FROM ${schema}.leadership_lease`,
  );
  const row = rows[0];
  if (!row) return null;
  return { holder: row.holder, term: row.term, acquiredAt: row.acquired_at, renewedAt: row.renewed_at, expiresAt: row.expires_at, live: row.live };
}
