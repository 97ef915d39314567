import { InvalidOptionError } from './errors.js';
import { describe } from './options.js';

/**
 * A statement parameter as PostgreSQL's text input form, or null: how Docket hands parameters to a
 * TransactionAdapter, so that every library sends the same thing whatever it would make of a
 * JavaScript array, Date or object (node-postgres, Prisma, Knex and Drizzle each have their own
 * rules for those). Every statement that may run through an adapter casts each parameter
 * (`$1::int`, `$2::text[]`), so a library that sends text as `text` rather than untyped still fits.
 *
 * The forms are node-postgres's: a Date as ISO 8601 with its zone, an array as an array literal
 * (elements quoted and escaped, nested arrays nested), bytes as `\x…` hex, any other object as JSON.
 */
export function toSqlText(value: unknown): string | null {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      return Number.isFinite(value) ? String(value) : Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
      return null;
    case 'object':
      if (value === null) return null;
      if (value instanceof Date) return dateText(value);
      if (value instanceof Uint8Array) return `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`;
      if (Array.isArray(value)) return arrayLiteral(value);
      return JSON.stringify(value);
    default:
      throw new InvalidOptionError(
        `A statement parameter cannot be ${describe(value)}: pass text, a number, a boolean, a Date, an array or a JSON object.`,
      );
  }
}

function dateText(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new InvalidOptionError('A statement parameter is an invalid Date.');
  return date.toISOString();
}

/** `{"a","b",NULL}`: every element quoted (so 'NULL' stays text), `"` and `\` escaped; nested arrays nest. */
function arrayLiteral(values: readonly unknown[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    if (Array.isArray(v)) {
      out += arrayLiteral(v);
      continue;
    }
    const text = toSqlText(v);
    out += text === null ? 'NULL' : `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  }
  return `${out}}`;
}
