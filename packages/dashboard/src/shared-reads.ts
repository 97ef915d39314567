/**
 * Reads shared by every request for a short while: when a change reaches many open tabs at once,
 * each refetches its page, and the tabs showing the same thing ask the same questions. The first
 * request runs the query; the others get its answer (in flight or fresh for `ttlMs`), so the
 * database sees one query per distinct view per refresh, however many tabs are open.
 */
export class SharedReads {
  readonly #entries = new Map<string, { at: number; value: Promise<unknown> }>();
  /** Queries actually run (for tests and the dashboard's own stats). */
  runs = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 500,
  ) {}

  get<T>(key: string, read: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const entry = this.#entries.get(key);
    if (entry && now - entry.at < this.ttlMs) return entry.value as Promise<T>;
    this.runs++;
    const value = read();
    this.#entries.set(key, { at: now, value });
    // A failed read is not shared beyond the requests already waiting for it.
    value.catch(() => {
      if (this.#entries.get(key)?.value === value) this.#entries.delete(key);
    });
    if (this.#entries.size > this.maxEntries) this.#evict(now);
    return value;
  }

  /** Forgets everything (after an action, so the redirect shows its effect). */
  clear(): void {
    this.#entries.clear();
  }

  #evict(now: number): void {
    for (const [key, entry] of this.#entries) if (now - entry.at >= this.ttlMs) this.#entries.delete(key);
    // Still full of fresh entries (many distinct views at once): drop the oldest.
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }
}
