/**
 * What OutboxService needs from the caller's transaction: run one
 * parameterised statement on the SAME connection, inside the SAME
 * transaction as the business writes.  The three shapes below cover the
 * common data layers; they are recognised by duck typing, so the outbox
 * module depends on none of them.
 */

/** pg: a PoolClient (or Client) between BEGIN and COMMIT. */
export interface PgQueryable {
  query(
    text: string,
    values: unknown[],
  ): Promise<{ rows: Record<string, unknown>[] }>;
}

/**
 * TypeORM: the EntityManager given to `dataSource.transaction(...)`, or a
 * QueryRunner after startTransaction().  Their query() returns the rows.
 */
export interface TypeOrmQueryable {
  query(text: string, parameters?: unknown[]): Promise<unknown>;
}

/**
 * Kysely: the Transaction given to `db.transaction().execute(...)` (any
 * Kysely instance works, but only a Transaction makes it atomic).
 */
export interface KyselyQueryable {
  // Kysely's CompiledQuery, typed loosely so that this file needs no kysely
  executeQuery(query: any): Promise<{ rows: unknown[] }>;
}

export type OutboxTransaction =
  PgQueryable | TypeOrmQueryable | KyselyQueryable;

/** Run `text` on `tx` and return the rows, whatever the data layer. */
export async function queryRows(
  tx: OutboxTransaction,
  text: string,
  values: unknown[],
): Promise<Record<string, unknown>[]> {
  if ('executeQuery' in tx && typeof tx.executeQuery === 'function') {
    // Kysely's CompiledQuery.raw(), without importing kysely
    const { rows } = await tx.executeQuery({
      sql: text,
      parameters: values,
      query: { kind: 'RawNode', sqlFragments: [text], parameters: [] },
    });
    return rows as Record<string, unknown>[];
  }
  const result = await (tx as TypeOrmQueryable).query(text, values);
  // pg returns a Result with rows; TypeORM returns the rows themselves
  return Array.isArray(result)
    ? (result as Record<string, unknown>[])
    : (result as { rows: Record<string, unknown>[] }).rows;
}
