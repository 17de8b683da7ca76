/**
 * A browser's Origin Private File System (OPFS) as a {@link FileSource} and {@link FileSink}: where a
 * browser run keeps its adapter, `metrics.jsonl` and checkpoints, so they survive a reload.
 *
 * Writes are atomic: the bytes go to a temporary file beside the target, which is then moved onto
 * it (`FileSystemFileHandle.move`, which replaces an existing file), so a reader never sees a
 * half-written file (a read racing the move itself may find no file for that instant, as observed in
 * Chromium 156; it never finds part of one). OPFS cannot move a directory (Chromium 156 has `move()` on files only), so
 * {@link FileSink.rename} of a directory moves its files one by one under a journal: the journal
 * (`.exo-tune-rename.json` in the sink's root, itself written atomically) names the move before it
 * starts and is removed when it ends; a sink that finds a journal (a tab closed mid-move) finishes
 * that move before it does anything else. Seen through the sink, a checkpoint directory therefore
 * appears whole or not at all.
 *
 * Works in window and worker contexts; uses `createWritable()` where the browser has it and a sync
 * access handle (workers only) otherwise.
 *
 * @example
 * ```ts ignore
 * import { opfsFiles, Trainer } from "exo-tune";
 * const files = opfsFiles("exo-tune"); // a folder in this origin's private file system
 * const trainer = await Trainer.create({ model, data: "data.jsonl", out: "runs/a", files });
 * ```
 *
 * @module
 */

import type { FileSink, FileSource } from "./types.ts";

const JOURNAL = ".exo-tune-rename.json";

/** Splits a `/`-separated path into names; refuses `..` (OPFS has no parent links). */
function splitPath(path: string): string[] {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.some((p) => p === "..")) throw new Error(`Path ${JSON.stringify(path)}: ".." is not allowed in OPFS paths`);
  return parts;
}

function isNotFound(e: unknown): boolean {
  const name = (e as { name?: string }).name;
  return name === "NotFoundError" || name === "TypeMismatchError";
}

type WritableFile = FileSystemFileHandle & {
  createWritable?(options?: { keepExistingData?: boolean }): Promise<FileSystemWritableFileStream>;
  createSyncAccessHandle?(): Promise<{
    getSize(): number;
    truncate(n: number): void;
    write(data: Uint8Array, options?: { at?: number }): number;
    flush(): void;
    close(): void;
  }>;
  move?(parent: FileSystemDirectoryHandle, name: string): Promise<void>;
};

/** Writes bytes into a file, replacing (or, with `append`, extending) its content. */
async function writeInto(handle: WritableFile, data: Uint8Array, append: boolean): Promise<void> {
  if (handle.createWritable) {
    const w = await handle.createWritable({ keepExistingData: append });
    try {
      if (append) await w.seek((await handle.getFile()).size);
      await w.write(data as Uint8Array<ArrayBuffer>);
      await w.close();
    } catch (e) {
      await w.abort().catch(() => {});
      throw e;
    }
    return;
  }
  if (!handle.createSyncAccessHandle) {
    throw new Error("This browser's OPFS has neither createWritable() nor sync access handles: use it from a Worker");
  }
  const h = await handle.createSyncAccessHandle();
  try {
    const at = append ? h.getSize() : 0;
    if (!append) h.truncate(0);
    h.write(data, { at });
    h.flush();
  } finally {
    h.close();
  }
}

/**
 * Files in the Origin Private File System, under `base` (a folder path inside OPFS, created on
 * first write; or a directory handle). Paths are `/`-separated and relative to it.
 */
export function opfsFiles(base: string | FileSystemDirectoryHandle = ""): FileSource & FileSink {
  let rootPromise: Promise<FileSystemDirectoryHandle> | undefined;
  /** The base directory, after any interrupted directory move has been finished. */
  const root = (): Promise<FileSystemDirectoryHandle> => {
    rootPromise ??= (async () => {
      let dir: FileSystemDirectoryHandle;
      if (typeof base === "string") {
        const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
        if (!storage?.getDirectory) {
          throw new Error("OPFS is not available here (navigator.storage.getDirectory): it needs a secure context");
        }
        dir = await storage.getDirectory();
        for (const name of splitPath(base)) dir = await dir.getDirectoryHandle(name, { create: true });
      } else dir = base;
      await recover(dir);
      return dir;
    })();
    return rootPromise;
  };

  const dirAt = async (parts: string[], create: boolean): Promise<FileSystemDirectoryHandle> => {
    let dir = await root();
    for (const name of parts) dir = await dir.getDirectoryHandle(name, { create });
    return dir;
  };
  const parentOf = async (path: string, create: boolean) => {
    const parts = splitPath(path);
    if (parts.length === 0) throw new Error(`Path ${JSON.stringify(path)} names the root, not a file`);
    return { dir: await dirAt(parts.slice(0, -1), create), name: parts[parts.length - 1] };
  };

  /** Writes `data` to a temporary file beside `name`, then moves it onto `name`. */
  const atomicWrite = async (dir: FileSystemDirectoryHandle, name: string, data: Uint8Array) => {
    const tmpName = `.${name}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`;
    const tmp = await dir.getFileHandle(tmpName, { create: true }) as WritableFile;
    try {
      await writeInto(tmp, data, false);
    } catch (e) {
      await dir.removeEntry(tmpName).catch(() => {});
      throw e;
    }
    if (tmp.move) {
      await tmp.move(dir, name);
      return;
    }
    // No move() (older browsers): the write is still all-or-nothing per file, not atomic.
    await writeInto(await dir.getFileHandle(name, { create: true }) as WritableFile, data, false);
    await dir.removeEntry(tmpName);
  };

  const files: FileSource & FileSink = {
    async readBytes(path) {
      for (let attempt = 1;; attempt++) {
        try {
          const { dir, name } = await parentOf(path, false);
          const file = await (await dir.getFileHandle(name)).getFile();
          return new Uint8Array(await file.arrayBuffer());
        } catch (e) {
          if (isNotFound(e)) throw new Error(`File not found: ${path}`);
          // A write that replaced the file between getFile() and the read makes the old File
          // unreadable: read again, which gets the new bytes.
          if ((e as { name?: string }).name === "NotReadableError" && attempt < 5) continue;
          throw e;
        }
      }
    },
    async readText(path) {
      return new TextDecoder().decode(await this.readBytes(path));
    },
    async exists(path) {
      const parts = splitPath(path);
      if (parts.length === 0) return true;
      try {
        const dir = await dirAt(parts.slice(0, -1), false);
        const name = parts[parts.length - 1];
        for await (const key of dir.keys()) if (key === name) return true;
        return false;
      } catch (e) {
        if (isNotFound(e)) return false;
        throw e;
      }
    },
    async writeBytes(path, data) {
      const { dir, name } = await parentOf(path, true);
      await atomicWrite(dir, name, data);
    },
    async writeText(path, text) {
      await this.writeBytes(path, new TextEncoder().encode(text));
    },
    async appendText(path, text) {
      // createWritable() writes to a swap file that replaces the original on close(), so an append
      // is all-or-nothing too.
      const { dir, name } = await parentOf(path, true);
      const handle = await dir.getFileHandle(name, { create: true }) as WritableFile;
      await writeInto(handle, new TextEncoder().encode(text), true);
    },
    async mkdir(path) {
      await dirAt(splitPath(path), true);
    },
    async remove(path) {
      try {
        const { dir, name } = await parentOf(path, false);
        await dir.removeEntry(name, { recursive: true });
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    },
    async rename(from, to) {
      const src = await parentOf(from, false);
      const dst = await parentOf(to, true);
      const kind = await kindOf(src.dir, src.name);
      if (kind === null) throw new Error(`Cannot rename ${from}: not found`);
      if (kind === "file") {
        const handle = await src.dir.getFileHandle(src.name) as WritableFile;
        if (handle.move) return await handle.move(dst.dir, dst.name);
        await atomicWrite(dst.dir, dst.name, new Uint8Array(await (await handle.getFile()).arrayBuffer()));
        await src.dir.removeEntry(src.name);
        return;
      }
      if ((await kindOf(dst.dir, dst.name)) !== null) {
        throw new Error(`Cannot rename ${from} to ${to}: ${to} exists (remove it first)`);
      }
      const base = await root();
      await atomicWrite(base, JOURNAL, new TextEncoder().encode(JSON.stringify({ from, to })));
      await moveTree(base, splitPath(from), splitPath(to));
      await base.removeEntry(JOURNAL);
    },
    async list(path) {
      try {
        const dir = await dirAt(splitPath(path), false);
        const names: string[] = [];
        for await (const key of dir.keys()) names.push(key);
        return names.filter((n) => n !== JOURNAL);
      } catch (e) {
        if (isNotFound(e)) return [];
        throw e;
      }
    },
  };
  return files;
}

async function kindOf(dir: FileSystemDirectoryHandle, name: string): Promise<"file" | "directory" | null> {
  for await (const [key, handle] of dir.entries()) if (key === name) return handle.kind;
  return null;
}

async function openDir(root: FileSystemDirectoryHandle, parts: string[], create: boolean) {
  let dir = root;
  for (const name of parts) dir = await dir.getDirectoryHandle(name, { create });
  return dir;
}

/**
 * Moves every file of directory `from` into `to` (created), then removes `from`. Safe to run again
 * on a partly moved tree: it moves what is left.
 */
async function moveTree(root: FileSystemDirectoryHandle, from: string[], to: string[]): Promise<void> {
  let src: FileSystemDirectoryHandle;
  try {
    src = await openDir(root, from, false);
  } catch (e) {
    if (isNotFound(e)) return; // already moved and removed
    throw e;
  }
  const dst = await openDir(root, to, true);
  const entries: [string, FileSystemHandle][] = [];
  for await (const entry of src.entries()) entries.push(entry);
  for (const [name, handle] of entries) {
    if (handle.kind === "directory") await moveTree(root, [...from, name], [...to, name]);
    else {
      const f = handle as WritableFile;
      if (f.move) await f.move(dst, name);
      else {
        await writeInto(
          await dst.getFileHandle(name, { create: true }) as WritableFile,
          new Uint8Array(await (await f.getFile()).arrayBuffer()),
          false,
        );
        await src.removeEntry(name);
      }
    }
  }
  const parent = await openDir(root, from.slice(0, -1), false);
  await parent.removeEntry(from[from.length - 1], { recursive: true });
}

/** Finishes a directory move that a closed tab left half done (see the module doc). */
async function recover(root: FileSystemDirectoryHandle): Promise<void> {
  let text: string;
  try {
    text = await (await (await root.getFileHandle(JOURNAL)).getFile()).text();
  } catch (e) {
    if (isNotFound(e)) return;
    throw e;
  }
  const { from, to } = JSON.parse(text) as { from: string; to: string };
  await moveTree(root, splitPath(from), splitPath(to));
  await root.removeEntry(JOURNAL);
}
