import { Pool, PoolClient } from 'pg';

/**
 * Run `work` in one database transaction on a connection of `pool`: COMMIT
 * when it returns, ROLLBACK when it throws (and rethrow).  Everything the
 * callback does through `client` - business rows and outbox.enqueue() - is
 * committed or rolled back together.
 */
export async function inTransaction<T>(
  pool: Pool,
  work: (client: PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    // a connection that cannot even roll back is not given back to the pool
    await client.query('ROLLBACK').catch((e: Error) => (broken = e));
    throw err;
  } finally {
    client.release(broken);
  }
}
