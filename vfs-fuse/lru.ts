/**
 * A map that keeps the most recently used entries within a byte budget; `onEvict` is told of each
 * entry it drops (the disk cache deletes the file there).
 */
export class LruMap<K, V> {
  readonly #map = new Map<K, { value: V; bytes: number }>();
  #bytes = 0;
  constructor(
    readonly capacityBytes: number,
    private readonly onEvict: (key: K, value: V) => void = () => {},
  ) {}

  get bytes(): number {
    return this.#bytes;
  }
  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    const e = this.#map.get(key);
    if (e === undefined) return undefined;
    this.#map.delete(key);
    this.#map.set(key, e);
    return e.value;
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  set(key: K, value: V, bytes: number): void {
    this.delete(key);
    this.#map.set(key, { value, bytes });
    this.#bytes += bytes;
    for (const [k, e] of this.#map) {
      if (this.#bytes <= this.capacityBytes || k === key) break;
      this.#map.delete(k);
      this.#bytes -= e.bytes;
      this.onEvict(k, e.value);
    }
  }

  delete(key: K): boolean {
    const e = this.#map.get(key);
    if (e === undefined) return false;
    this.#map.delete(key);
    this.#bytes -= e.bytes;
    return true;
  }

  keys(): IterableIterator<K> {
    return this.#map.keys();
  }

  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
  }
}
