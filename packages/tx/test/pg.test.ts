import pg from 'pg';
import { pgTransaction } from '../src/pg.js';
import { adapterSuite } from './suite.js';

adapterSuite('node-postgres (PoolClient)', async (url) => {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  return {
    async transaction(body) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await body({
          adapter: pgTransaction(client),
          insertOrder: async (id) => void (await client.query('INSERT INTO orders (id) VALUES ($1)', [id])),
          exec: (text) => client.query(text),
        });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
});
