/**
 * The Hub cache in a browser (or any runtime with the Cache API and no file system): one Cache
 * Storage cache, `exo-tune-hub`, keyed by URL on the Hub's host:
 *
 * | key | body |
 * |---|---|
 * | `<endpoint>/<repo>/resolve/<commit>/<path>` | the verified file |
 * | `<endpoint>/<repo>/refs/<revision>` | the commit a branch or tag resolved to |
 * | `<endpoint>/<repo>/no_exist/<commit>/<path>` | empty: the file is not in that commit |
 *
 * A transfer cut in the middle resumes with a range request within the same call (the bytes so far
 * are held in memory); a file enters the cache only whole and verified. The snapshot reads as the
 * directory `models--org--name/snapshots/<commit>` of a {@link FileSource}.
 *
 * @module
 */

import type { FileSource } from "../io/files.ts";
import { HubError, repoFolderName } from "./settings.ts";
import type { HubStore, StoreContext } from "./store.ts";
import { type RemoteFile, transfer } from "./transfer.ts";

/** The Cache Storage cache that holds Hub files. */
export const CACHE_NAME = "exo-tune-hub";

function hex(buf: ArrayBuffer): string {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The etag of bytes, as the Hub computes it (sha256, or git's sha1 of `blob <size>\0` + bytes). */
export async function etagOf(bytes: Uint8Array<ArrayBuffer>, hash: RemoteFile["hash"]): Promise<string> {
  if (hash === "sha256") return hex(await crypto.subtle.digest("SHA-256", bytes));
  const head = new TextEncoder().encode(`blob ${bytes.length}\0`);
  const all = new Uint8Array(head.length + bytes.length);
  all.set(head);
  all.set(bytes, head.length);
  return hex(await crypto.subtle.digest("SHA-1", all));
}

/** The Cache API store of one repo. */
export async function cacheApiStore(endpoint: string, repo: string): Promise<HubStore> {
  const storage = (globalThis as { caches?: CacheStorage }).caches;
  if (!storage) {
    throw new HubError(
      "no place to cache Hub files: this runtime has neither a file system nor the Cache API; load the model from URLs (urlFiles) or memory instead",
    );
  }
  const cache = await storage.open(CACHE_NAME);
  const base = `${endpoint}/${repo}`;
  const fileKey = (commit: string, path: string) => `${base}/resolve/${commit}/${path}`;
  const missingKey = (commit: string, path: string) => `${base}/no_exist/${commit}/${path}`;
  const prefix = `${repoFolderName(repo)}/snapshots/`;

  return {
    where: `the Cache API cache "${CACHE_NAME}" (${base})`,
    async readRef(revision) {
      const r = await cache.match(`${base}/refs/${revision}`);
      return r ? (await r.text()).trim() || null : null;
    },
    async writeRef(revision, commit) {
      await cache.put(`${base}/refs/${revision}`, new Response(commit));
    },
    async has(commit, path) {
      return (await cache.match(fileKey(commit, path))) !== undefined;
    },
    async isMissing(commit, path) {
      return (await cache.match(missingKey(commit, path))) !== undefined;
    },
    async markMissing(commit, path) {
      await cache.put(missingKey(commit, path), new Response(""));
    },
    async fetchInto(commit: string, f: RemoteFile, ctx: StoreContext) {
      let chunks: Uint8Array[] = [];
      let offset = 0;
      await transfer(f, {
        get offset() {
          return offset;
        },
        write(chunk) {
          chunks.push(chunk);
          offset += chunk.length;
          return Promise.resolve();
        },
        reset() {
          chunks = [];
          offset = 0;
          return Promise.resolve();
        },
      }, { ...ctx, partialAt: "memory (the Cache API keeps whole files only)" });
      const bytes = new Uint8Array(offset);
      let at = 0;
      for (const c of chunks) {
        bytes.set(c, at);
        at += c.length;
      }
      const got = await etagOf(bytes, f.hash);
      if (got !== f.etag) {
        throw new HubError(
          `${f.path}: the downloaded bytes hash to ${got} but the Hub lists ${f.hash} ${f.etag}; nothing entered the cache. Run again; if it repeats, the mirror serves a corrupt file`,
        );
      }
      await cache.put(
        fileKey(commit, f.path),
        new Response(bytes, { headers: { "content-type": "application/octet-stream", etag: `"${f.etag}"` } }),
      );
    },
    snapshot(commit) {
      const dir = `${prefix}${commit}`;
      const keyOf = (p: string) => {
        if (!p.startsWith(`${dir}/`)) throw new Error(`File not found: ${p}`);
        return fileKey(commit, p.slice(dir.length + 1));
      };
      const files: FileSource = {
        async readBytes(p) {
          const r = await cache.match(keyOf(p));
          if (!r) throw new Error(`File not found: ${p}`);
          return new Uint8Array(await r.arrayBuffer());
        },
        async readText(p) {
          return new TextDecoder().decode(await this.readBytes(p));
        },
        async exists(p) {
          return p.startsWith(`${dir}/`) && (await cache.match(keyOf(p))) !== undefined;
        },
      };
      return { dir, files };
    },
  };
}
