/**
 * How the library reaches files. The core never calls `Deno.*`: it takes a {@link FileSource}, so
 * the same code reads model directories from disk (Deno, Bun, Node) or from URLs and in-memory
 * bytes (browsers, edge workers).
 *
 * @module
 */

import type { FileSink, FileSource } from "./types.ts";

export type { FileSink, FileSource } from "./types.ts";

/** Joins path pieces with `/`, dropping empty pieces and doubled separators. */
export function joinPath(...parts: string[]): string {
  const joined = parts.filter((p) => p !== "").join("/");
  return joined.replace(/\/{2,}/g, "/");
}

type NodeFs = typeof import("node:fs/promises");
let fsPromise: Promise<NodeFs> | undefined;
function nodeFs(): Promise<NodeFs> {
  fsPromise ??= import("node:fs/promises");
  return fsPromise;
}

/** Local files through `node:fs` (works in Deno, Bun and Node). */
export function localFiles(): FileSource & FileSink {
  return {
    async readBytes(path) {
      const fs = await nodeFs();
      try {
        const b = await fs.readFile(path);
        return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
      } catch (e) {
        if ((e as { code?: string }).code === "ENOENT") throw new Error(`File not found: ${path}`);
        throw e;
      }
    },
    async readText(path) {
      return new TextDecoder().decode(await this.readBytes(path));
    },
    async exists(path) {
      const fs = await nodeFs();
      try {
        await fs.stat(path);
        return true;
      } catch {
        return false;
      }
    },
    async writeBytes(path, data) {
      const fs = await nodeFs();
      const tmp = `${path}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`;
      await fs.writeFile(tmp, data);
      try {
        await fs.rename(tmp, path);
      } catch (e) {
        await fs.rm(tmp, { force: true }); // e.g. a directory at `path`: leave no temporary file behind
        throw e;
      }
    },
    async writeText(path, text) {
      await this.writeBytes(path, new TextEncoder().encode(text));
    },
    async appendText(path, text) {
      const fs = await nodeFs();
      await fs.appendFile(path, text);
    },
    async mkdir(path) {
      const fs = await nodeFs();
      await fs.mkdir(path, { recursive: true });
    },
    async remove(path) {
      const fs = await nodeFs();
      await fs.rm(path, { recursive: true, force: true });
    },
    async rename(from, to) {
      const fs = await nodeFs();
      await fs.rename(from, to);
    },
    async list(path) {
      const fs = await nodeFs();
      try {
        return await fs.readdir(path);
      } catch (e) {
        if ((e as { code?: string }).code === "ENOENT") return [];
        throw e;
      }
    },
  };
}

/** Files fetched from a base URL (browsers, edge workers). Read-only. */
export function urlFiles(base: string | URL): FileSource {
  const root = new URL(base.toString().endsWith("/") ? base.toString() : `${base}/`);
  return {
    async readBytes(path) {
      const res = await fetch(new URL(path, root));
      if (!res.ok) throw new Error(`Cannot fetch ${new URL(path, root)}: HTTP ${res.status}`);
      return new Uint8Array(await res.arrayBuffer());
    },
    async readText(path) {
      return new TextDecoder().decode(await this.readBytes(path));
    },
    async exists(path) {
      const res = await fetch(new URL(path, root), { method: "HEAD" });
      return res.ok;
    },
  };
}

/**
 * Files held in memory, keyed by path: read-only bytes an app already has, and a writable sink with
 * the same atomic-write semantics as {@link localFiles} (see `memory.ts`).
 */
export { type MemoryFiles, memoryFiles } from "./memory.ts";
