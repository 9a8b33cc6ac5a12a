import {
  type ObjectStore,
  StorageError,
  toStorageError,
  validateKey,
  validatePrefix,
} from "./object_store.ts";

/** Options of {@linkcode MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Upper bound on the bytes held. A put that would exceed it fails with a retryable StorageError
   * (code "ENOSPC"), as a full disk would. Default: 1 GiB.
   */
  maxBytes?: number;
  /** Shown in banners. Default: "memory". */
  description?: string;
}

/** An ObjectStore in a Map, for tests and benchmarks. Stored bytes are copies, so callers may reuse buffers. */
export class MemoryStore implements ObjectStore {
  readonly description: string;
  readonly #objects = new Map<string, Uint8Array>();
  readonly #maxBytes: number;
  #bytes = 0;
  #failure: StorageError | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    this.#maxBytes = options.maxBytes ?? 1024 ** 3;
    this.description = options.description ?? "memory";
  }

  /** Total bytes currently stored. */
  get byteLength(): number {
    return this.#bytes;
  }

  /** Number of objects currently stored. */
  get size(): number {
    return this.#objects.size;
  }

  /**
   * Simulates an outage: while set, every operation (check included) throws this error, wrapped into a
   * StorageError classified like a real one (e.g. `{ code: "ECONNREFUSED" }` is retryable). `undefined` heals.
   */
  failWith(error: unknown): void {
    this.#failure = error === undefined ? undefined : toStorageError(error, "memory store unavailable");
  }

  put(key: string, bytes: Uint8Array): Promise<void> {
    return this.#run(() => {
      validateKey(key);
      this.#throwIfFailing();
      const previous = this.#objects.get(key)?.byteLength ?? 0;
      const next = this.#bytes - previous + bytes.byteLength;
      if (next > this.#maxBytes) {
        throw new StorageError(`cannot put ${key}: memory store full (${this.#maxBytes} bytes)`, {
          retryable: true,
          code: "ENOSPC",
        });
      }
      this.#objects.set(key, bytes.slice());
      this.#bytes = next;
    });
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.#run(() => {
      validateKey(key);
      this.#throwIfFailing();
      return this.#objects.get(key)?.slice();
    });
  }

  list(prefix: string): Promise<string[]> {
    return this.#run(() => {
      validatePrefix(prefix);
      this.#throwIfFailing();
      return [...this.#objects.keys()].filter((key) => key.startsWith(prefix)).sort();
    });
  }

  delete(key: string): Promise<void> {
    return this.#run(() => {
      validateKey(key);
      this.#throwIfFailing();
      const existing = this.#objects.get(key);
      if (existing !== undefined) {
        this.#bytes -= existing.byteLength;
        this.#objects.delete(key);
      }
    });
  }

  check(): Promise<void> {
    return this.#run(() => this.#throwIfFailing());
  }

  // Every failure, invalid keys included, arrives as a rejection as it would from a real backend.
  #run<T>(operation: () => T): Promise<T> {
    return new Promise((resolve) => resolve(operation()));
  }

  #throwIfFailing(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }
}
