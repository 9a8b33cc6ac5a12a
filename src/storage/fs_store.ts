/**
 * An ObjectStore over a local folder with `node:fs` only (Deno, Bun, Node). It replaces OpenDAL's fs
 * backend in the server and the single executable: loading OpenDAL's native addon costs about 55 MB of
 * resident memory and tens of milliseconds at start-up, for writes `node:fs` does as well. The layout is
 * OpenDAL's: objects are plain files under the root at their keys, written first into
 * {@linkcode FS_STAGING_DIR} under the root and renamed into place, so a folder written by either reads
 * the same.
 *
 * @module
 */

import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import {
  type ObjectInfo,
  type ObjectStore,
  toStorageError,
  validateKey,
  validatePrefix,
} from "./object_store.ts";

/**
 * Folder under the root where objects are written before being renamed into place (same filesystem, so
 * the rename is atomic). `list()` hides it and keys may not start with it. The name OpenDAL's fs backend
 * is given in `opendal_store.ts`, so either store reads a folder the other wrote.
 */
export const FS_STAGING_DIR = ".otlp2parquet-staging";

/** Options of {@linkcode FsStore}. */
export interface FsStoreOptions {
  /** Folder holding the objects; relative paths resolve against the working directory. Created on first use. */
  root: string;
}

/** Codes of a path that is not there (or whose parent is a file): a missing object, not a failure. */
const MISSING = new Set(["ENOENT", "ENOTDIR"]);

function isMissing(error: unknown): boolean {
  return MISSING.has((error as { code?: string })?.code ?? "");
}

/**
 * Objects as files under a folder. `put` writes a staging file, fsyncs it, renames it over the key and
 * fsyncs the key's folder: when it resolves, the object survives a crash of the machine, which is what
 * the write-ahead log counts on before it drops the records. Construction does no I/O.
 */
export class FsStore implements ObjectStore {
  readonly description: string;
  readonly #root: string;
  readonly #staging: string;
  #sequence = 0;
  readonly #tag = crypto.randomUUID().slice(0, 8);

  constructor(options: FsStoreOptions) {
    this.#root = resolve(options.root);
    this.#staging = join(this.#root, FS_STAGING_DIR);
    this.description = `fs:${this.#root}`;
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    this.#validate(key);
    const target = join(this.#root, key);
    // Unique per store and call: concurrent puts of the same key each rename a whole file of their own.
    const temp = join(this.#staging, `${this.#tag}-${++this.#sequence}`);
    try {
      await mkdir(this.#staging, { recursive: true });
      await mkdir(dirname(target), { recursive: true });
      const file = await open(temp, "w");
      try {
        await file.writeFile(bytes);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temp, target);
      await syncFolder(dirname(target));
    } catch (error) {
      await rm(temp, { force: true }).catch(() => {});
      throw toStorageError(error, `cannot put ${key} on ${this.description}`);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.#validate(key);
    try {
      const buffer = await readFile(join(this.#root, key));
      // A plain Uint8Array view: callers compare and slice without meeting Buffer's differences.
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    } catch (error) {
      if (isMissing(error) || (error as { code?: string }).code === "EISDIR") return undefined;
      throw toStorageError(error, `cannot get ${key} on ${this.description}`);
    }
  }

  async list(prefix: string): Promise<string[]> {
    validatePrefix(prefix);
    // The string prefix may end inside a name: walk its folder and filter.
    const folder = prefix.slice(0, prefix.lastIndexOf("/") + 1);
    const keys: string[] = [];
    const walk = async (relative: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(join(this.#root, relative), { withFileTypes: true });
      } catch (error) {
        if (isMissing(error)) return;
        throw error;
      }
      for (const entry of entries) {
        const path = relative + entry.name;
        if (path === FS_STAGING_DIR) continue;
        if (entry.isDirectory()) {
          // Only folders that can hold a matching key: those on the way to the prefix or under it.
          if ((path + "/").startsWith(prefix) || prefix.startsWith(path + "/")) await walk(path + "/");
        } else if (entry.isFile() && path.startsWith(prefix)) {
          keys.push(path);
        }
      }
    };
    try {
      await walk(folder);
    } catch (error) {
      throw toStorageError(error, `cannot list ${prefix} on ${this.description}`);
    }
    return keys.sort();
  }

  async listInfo(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    for (const key of await this.list(prefix)) {
      try {
        const s = await stat(join(this.#root, key));
        out.push({ key, size: s.size, modifiedMs: s.mtimeMs });
      } catch (error) {
        if (isMissing(error)) continue; // deleted since the listing
        throw toStorageError(error, `cannot stat ${key} on ${this.description}`);
      }
    }
    return out;
  }

  async delete(key: string): Promise<void> {
    this.#validate(key);
    try {
      await unlink(join(this.#root, key));
    } catch (error) {
      if (isMissing(error)) return;
      throw toStorageError(error, `cannot delete ${key} on ${this.description}`);
    }
  }

  /** Creates the root (and its staging folder) if needed and proves a file can be written there. */
  async check(): Promise<void> {
    try {
      await mkdir(this.#staging, { recursive: true });
      const probe = join(this.#staging, `${this.#tag}-check`);
      await (await open(probe, "w")).close();
      await unlink(probe);
    } catch (error) {
      throw toStorageError(error, `cannot check ${this.description}`);
    }
  }

  #validate(key: string): void {
    validateKey(key);
    if ((key + "/").startsWith(`${FS_STAGING_DIR}/`)) {
      throw new RangeError(`invalid object key: ${FS_STAGING_DIR} is reserved: ${JSON.stringify(key)}`);
    }
  }
}

/** fsync of a folder, so a rename into it is on disk; a no-op where folders cannot be opened (Windows). */
async function syncFolder(path: string): Promise<void> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    if ((error as { code?: string }).code === "EISDIR" || (error as { code?: string }).code === "EPERM") {
      return;
    }
    throw error;
  }
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
