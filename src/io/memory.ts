/**
 * A file tree held in memory that is both a {@link FileSource} and a {@link FileSink}: where a run
 * on Deno Deploy, in a browser tab or in a test keeps its adapter, metrics and checkpoints without a
 * disk (an app that wants them to outlive the process writes them to a real sink too, e.g. with
 * `writeAdapter`).
 *
 * It behaves as {@link localFiles} does, so code tested against it behaves the same on disk:
 * - a write replaces the whole file at once (the sink stores its own copy of the bytes, so a later
 *   change to the caller's array does not reach the file) and a reader sees the old or the new
 *   content, never part of one;
 * - a file can only be written into a directory that exists (`mkdir` makes parents, as
 *   `mkdir -p`); writing where a directory is, or making a directory where a file is, fails;
 * - `rename` moves a file or a whole directory in one step, replacing a file or an empty
 *   directory at the target (a non-empty one is refused, as POSIX `rename` refuses it);
 * - `remove` is recursive and ignores a missing path; `list` of a missing directory is empty.
 *
 * Reads return the stored bytes without copying (large model files are not duplicated): treat
 * them as read-only.
 *
 * @example
 * ```ts
 * import { memoryFiles } from "./memory.ts";
 * const files = memoryFiles();
 * await files.mkdir("runs/a");
 * await files.writeText("runs/a/note.txt", "hello");
 * console.log(await files.list("runs/a")); // ["note.txt"]
 * ```
 *
 * @module
 */

import type { FileSink, FileSource } from "./types.ts";

/** A writable in-memory file tree (see the module doc for its semantics). */
export interface MemoryFiles extends FileSource, FileSink {
  /** Every file's path, sorted. */
  paths(): string[];
  /** Total bytes held in files. */
  byteLength(): number;
}

/** A file's bytes: `data` may have spare capacity beyond `size`, so appends are amortized O(1). */
interface Entry {
  data: Uint8Array;
  size: number;
}

/**
 * `a//b/./c/` → `a/b/c`; `..` steps back a level; a leading `/` is kept. The root is `""`
 * (`.`, `./` and `""` name it).
 */
function normalize(path: string): string {
  const abs = path.startsWith("/");
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length === 0) throw new Error(`Path ${JSON.stringify(path)} climbs above the root of the memory files`);
      out.pop();
    } else out.push(part);
  }
  return (abs ? "/" : "") + out.join("/");
}

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  if (i < 0) return "";
  return i === 0 ? "/" : path.slice(0, i);
}

function isRoot(path: string): boolean {
  return path === "" || path === "/";
}

/** True when `path` lies under directory `dir`. */
function under(path: string, dir: string): boolean {
  if (isRoot(dir)) return dir === "/" ? path.startsWith("/") && path !== "/" : !path.startsWith("/") && path !== "";
  return path.startsWith(dir + "/");
}

/**
 * A writable file tree in memory, optionally filled from `initial` (path → bytes or UTF-8 text;
 * the directories of those paths exist). Without arguments it starts empty.
 */
export function memoryFiles(initial: Record<string, Uint8Array | string> = {}): MemoryFiles {
  const enc = new TextEncoder(), dec = new TextDecoder();
  const files = new Map<string, Entry>();
  const dirs = new Set<string>();

  const addParents = (path: string) => {
    for (let p = parentOf(path); !isRoot(p); p = parentOf(p)) dirs.add(p);
  };
  const isDir = (path: string) => isRoot(path) || dirs.has(path);
  const needParent = (path: string, doing: string) => {
    const parent = parentOf(path);
    if (!isDir(parent)) {
      throw new Error(`Directory not found: ${parent} (${doing} ${path}); create it first with mkdir`);
    }
  };
  const put = (path: string, data: Uint8Array) => {
    files.set(path, { data, size: data.length });
  };

  for (const [p, v] of Object.entries(initial)) {
    const path = normalize(p);
    put(path, typeof v === "string" ? enc.encode(v) : v);
    addParents(path);
  }

  const sink: MemoryFiles = {
    readBytes(path) {
      const f = files.get(normalize(path));
      if (f === undefined) return Promise.reject(new Error(`File not found: ${path}`));
      return Promise.resolve(f.size === f.data.length ? f.data : f.data.subarray(0, f.size));
    },
    async readText(path) {
      return dec.decode(await this.readBytes(path));
    },
    exists(path) {
      const p = normalize(path);
      return Promise.resolve(files.has(p) || isDir(p));
    },
    writeBytes(path, data) {
      try {
        const p = normalize(path);
        if (isDir(p)) throw new Error(`Cannot write ${path}: it is a directory`);
        needParent(p, "writing");
        put(p, data.slice()); // the sink's own copy, swapped in at once
        return Promise.resolve();
      } catch (e) {
        return Promise.reject(e);
      }
    },
    async writeText(path, text) {
      await this.writeBytes(path, enc.encode(text));
    },
    appendText(path, text) {
      try {
        const p = normalize(path);
        if (isDir(p)) throw new Error(`Cannot append to ${path}: it is a directory`);
        needParent(p, "appending to");
        const add = enc.encode(text);
        const f = files.get(p) ?? { data: new Uint8Array(0), size: 0 };
        if (f.size + add.length > f.data.length) {
          // Bytes already handed out as views stay as they were: appends only write past `size`.
          const grown = new Uint8Array(Math.max(f.size + add.length, 2 * f.data.length, 256));
          grown.set(f.data.subarray(0, f.size));
          f.data = grown;
        }
        f.data.set(add, f.size);
        f.size += add.length;
        files.set(p, f);
        return Promise.resolve();
      } catch (e) {
        return Promise.reject(e);
      }
    },
    mkdir(path) {
      const p = normalize(path);
      for (let q = p; !isRoot(q); q = parentOf(q)) {
        if (files.has(q)) return Promise.reject(new Error(`Cannot create directory ${path}: ${q} is a file`));
      }
      if (!isRoot(p)) dirs.add(p);
      addParents(p);
      return Promise.resolve();
    },
    remove(path) {
      const p = normalize(path);
      if (isRoot(p)) return Promise.reject(new Error("Cannot remove the root of the memory files"));
      files.delete(p);
      dirs.delete(p);
      for (const f of [...files.keys()]) if (under(f, p)) files.delete(f);
      for (const d of [...dirs]) if (under(d, p)) dirs.delete(d);
      return Promise.resolve();
    },
    rename(from, to) {
      try {
        const a = normalize(from), b = normalize(to);
        if (a === b) return Promise.resolve();
        if (under(b, a)) throw new Error(`Cannot move ${from} into itself (${to})`);
        needParent(b, "moving to");
        if (files.has(a)) {
          if (isDir(b)) throw new Error(`Cannot move file ${from} onto directory ${to}`);
          files.set(b, files.get(a)!);
          files.delete(a);
          return Promise.resolve();
        }
        if (!dirs.has(a)) throw new Error(`File not found: ${from}`);
        if (files.has(b)) throw new Error(`Cannot move directory ${from} onto file ${to}`);
        if (dirs.has(b) && [...files.keys(), ...dirs].some((x) => under(x, b))) {
          throw new Error(`Cannot move ${from} onto ${to}: the directory is not empty`);
        }
        // Collect first, then move: nothing is visible half-moved between two awaits.
        const movedFiles = [...files].filter(([k]) => under(k, a));
        const movedDirs = [...dirs].filter((d) => under(d, a));
        for (const [k] of movedFiles) files.delete(k);
        for (const d of movedDirs) dirs.delete(d);
        dirs.delete(a);
        dirs.add(b);
        for (const [k, v] of movedFiles) files.set(b + k.slice(a.length), v);
        for (const d of movedDirs) dirs.add(b + d.slice(a.length));
        return Promise.resolve();
      } catch (e) {
        return Promise.reject(e);
      }
    },
    list(path) {
      const p = normalize(path);
      const names = new Set<string>();
      const prefix = isRoot(p) ? p : p + "/";
      for (const k of [...files.keys(), ...dirs]) {
        if (!under(k, p)) continue;
        names.add(k.slice(prefix.length).split("/")[0]);
      }
      return Promise.resolve([...names].sort());
    },
    paths() {
      return [...files.keys()].sort();
    },
    byteLength() {
      let n = 0;
      for (const f of files.values()) n += f.size;
      return n;
    },
  };
  return sink;
}
