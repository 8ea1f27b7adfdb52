/*
 * Test helpers for PostgreSQL: the schema and grants of the example,
 * connection strings for its non-owner roles.  The test itself connects as
 * the PG* / DATABASE_URL user, who must be able to create roles and
 * schemas (the owner); the applications under test connect as orders_app
 * and billing_app, as in production.
 */
import { readFileSync } from 'fs';
import { join } from 'path';
import { Pool } from 'pg';
import { parse } from 'pg-connection-string';

export const haveDatabase = !!(
  process.env.DATABASE_URL || process.env.PGDATABASE
);

export function adminPool(): Pool {
  return new Pool({ connectionString: process.env.DATABASE_URL, max: 4 });
}

/** The test database, as `role` (trust or peer authentication, or PGPASSWORD). */
export function urlAs(role: string): string {
  const base = process.env.DATABASE_URL
    ? parse(process.env.DATABASE_URL)
    : {
        host: process.env.PGHOST ?? 'localhost',
        port: process.env.PGPORT ?? '5432',
        database: process.env.PGDATABASE,
      };
  const host = encodeURIComponent(base.host ?? 'localhost');
  return `postgresql://${role}@${host}:${base.port ?? 5432}/${base.database}`;
}

/** The text of a file of db/. */
export const sqlFile = (name: string) =>
  readFileSync(join(__dirname, '..', '..', 'db', name), 'utf8');

/**
 * Drop and re-create shop, billing and billing_inbox (the inbox variant,
 * db/inbox.sql, not yet subscribed: test/support/inbox.ts), apply
 * db/grants.sql, add test data.
 */
export async function resetSchema(pool: Pool): Promise<void> {
  // the subscription first: its handler is about to be dropped
  await pool.query(`
    DO $$
    BEGIN
      IF to_regclass('outbox.subscriptions') IS NOT NULL THEN
        PERFORM outbox.unsubscribe(subscription)
           FROM outbox.subscriptions WHERE subscription = 'billing';
      END IF;
    END
    $$`);
  await pool.query(
    'DROP SCHEMA IF EXISTS shop, billing, billing_inbox CASCADE',
  );
  await pool.query(sqlFile('schema.sql'));
  await pool.query(sqlFile('grants.sql'));
  await pool.query(sqlFile('inbox.sql'));
  await pool.query(`
    INSERT INTO shop.products (sku, price_cents, stock) VALUES
      ('apple', 250, 1000), ('pear', 199, 1000), ('rare-book', 12000, 1);
    INSERT INTO billing.accounts (customer_id, status) VALUES
      (1, 'active'), (2, 'active'), (3, 'active'), (4, 'active'), (6, 'suspended');
    -- customer 5 has no billing account
  `);
}
