/**
 * The `$n` placeholders of a PostgreSQL statement, for the libraries whose raw-SQL call does not
 * take `$n` as it is: Knex (`?` bindings) and Drizzle (a template whose values it numbers itself).
 * Both number parameters by order of appearance, one value per placeholder, so a statement that
 * uses `$1` twice sends its value twice.
 *
 * Only real placeholders are found: `$n` inside a string literal ('…', E'…' with backslash
 * escapes), a quoted identifier ("…"), a dollar-quoted body ($tag$…$tag$, as in a DO block) or a
 * comment (-- …, nested /* … *\/) is text, and so is `$n` glued to an identifier (`a$1`).
 */
export interface SplitStatement {
  /** The text around the placeholders: `chunks.length === indexes.length + 1`. */
  readonly chunks: string[];
  /** For each placeholder in order, the 0-based parameter it names (`$1` → 0). */
  readonly indexes: number[];
}

const IDENT = /[A-Za-z0-9_$\u0080-\uffff]/;

export function splitPlaceholders(text: string): SplitStatement {
  const chunks: string[] = [];
  const indexes: number[] = [];
  let from = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    const next = text[i + 1];
    if (c === "'") {
      // E'…' (or e'…') takes backslash escapes; a standard literal only doubles its quotes.
      const escapes = i > 0 && (text[i - 1] === 'E' || text[i - 1] === 'e') && (i < 2 || !IDENT.test(text[i - 2] ?? ''));
      i++;
      while (i < n) {
        if (escapes && text[i] === '\\') i += 2;
        else if (text[i] === "'" && text[i + 1] === "'") i += 2;
        else if (text[i] === "'") break;
        else i++;
      }
      i++;
    } else if (c === '"') {
      i++;
      while (i < n && !(text[i] === '"' && text[i + 1] !== '"')) i += text[i] === '"' ? 2 : 1;
      i++;
    } else if (c === '-' && next === '-') {
      const end = text.indexOf('\n', i);
      i = end === -1 ? n : end + 1;
    } else if (c === '/' && next === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (text[i] === '/' && text[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (text[i] === '*' && text[i + 1] === '/') {
          depth--;
          i += 2;
        } else i++;
      }
    } else if (c === '$' && (i === 0 || !IDENT.test(text[i - 1] ?? ''))) {
      const digits = /^\$(\d+)/.exec(text.slice(i, i + 12));
      if (digits) {
        chunks.push(text.slice(from, i));
        indexes.push(Number(digits[1]) - 1);
        i += digits[0].length;
        from = i;
        continue;
      }
      const tag = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(text.slice(i, i + 70));
      if (tag) {
        const end = text.indexOf(tag[0], i + tag[0].length);
        i = end === -1 ? n : end + tag[0].length;
      } else i++;
    } else i++;
  }
  chunks.push(text.slice(from));
  return { chunks, indexes };
}

/** The values in placeholder order: `params[indexes[k]]` for each placeholder (a `$n` beyond the parameters is an error, as PostgreSQL would say). */
export function valuesInOrder(split: SplitStatement, params: readonly (string | null)[]): Array<string | null> {
  return split.indexes.map((index) => {
    if (index < 0 || index >= params.length) {
      throw new RangeError(`The statement uses $${index + 1} but has ${params.length} parameter(s).`);
    }
    return params[index] ?? null;
  });
}

const splits = new Map<string, SplitStatement>();

/** `splitPlaceholders`, remembered per text: the core's statements are a handful of fixed texts. */
export function splitCached(text: string): SplitStatement {
  let split = splits.get(text);
  if (split === undefined) {
    if (splits.size >= 256) splits.clear();
    split = splitPlaceholders(text);
    splits.set(text, split);
  }
  return split;
}
