/**
 * Least-recently-used map bounded by the total byte length of its values. A Map keeps
 * insertion order, so re-inserting on access makes the first key the least recently used.
 */
export class MemoryLru<K, V extends { byteLength: number }> {
  private readonly items = new Map<K, V>();
  private total = 0;

  constructor(private readonly budgetBytes: number) {}

  get(key: K): V | undefined {
    const value = this.items.get(key);
    if (value !== undefined) {
      this.items.delete(key);
      this.items.set(key, value);
    }
    return value;
  }

  /** Membership without counting as a use. */
  has(key: K): boolean {
    return this.items.has(key);
  }

  set(key: K, value: V): void {
    if (value.byteLength > this.budgetBytes) return;
    this.delete(key);
    this.items.set(key, value);
    this.total += value.byteLength;
    for (const [oldKey, old] of this.items) {
      if (this.total <= this.budgetBytes) break;
      this.items.delete(oldKey);
      this.total -= old.byteLength;
    }
  }

  delete(key: K): void {
    const old = this.items.get(key);
    if (old === undefined) return;
    this.items.delete(key);
    this.total -= old.byteLength;
  }

  get bytes(): number {
    return this.total;
  }

  get size(): number {
    return this.items.size;
  }
}
