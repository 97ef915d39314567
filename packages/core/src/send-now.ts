/**
 * Sends a postgres.js query now and answers its result. A postgres.js query goes out only when
 * something first asks for its result (`then`, `await`), so two statements issued without awaiting
 * — to share a round trip on a transaction's connection — could go out in another order than they
 * were written (an `await` asks a microtask later than a direct `then`). Statements that must run in
 * order (a lock before the statement that relies on it, a write before the COMMIT) are sent through
 * this, in that order. Any other promise passes through unchanged in effect.
 */
export function sendNow<T>(query: PromiseLike<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => void query.then(resolve, reject));
}
