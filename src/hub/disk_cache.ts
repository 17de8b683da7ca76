/**
 * The Hub cache on disk, in the layout Python's huggingface_hub writes and reads, so a model
 * downloaded by either is used by the other:
 *
 * ```
 * $HF_HUB_CACHE/models--org--name/
 *   blobs/<etag>                      the bytes, named by sha256 (LFS) or git blob id (plain files)
 *   blobs/<etag>.incomplete           a transfer in progress (kept to resume)
 *   snapshots/<commit>/<path>         relative symlinks to ../../blobs/<etag> (a copy where symlinks fail)
 *   refs/<branch or tag>              the commit it resolved to
 *   .no_exist/<commit>/<path>         empty markers: the file is not in that commit
 * ```
 *
 * A blob enters `blobs/` only by an atomic rename after its hash matched; a mismatch deletes the
 * partial file, so nothing half-written or corrupt is ever visible in the cache.
 *
 * @module
 */

import { type FileSource, localFiles } from "../io/files.ts";
import { HubError, repoFolderName } from "./settings.ts";
import type { HubStore, StoreContext } from "./store.ts";
import { type RemoteFile, transfer } from "./transfer.ts";

type Fs = typeof import("node:fs/promises");
type Crypto = typeof import("node:crypto");
type Hash = ReturnType<Crypto["createHash"]>;

async function exists(fs: Fs, path: string): Promise<boolean> {
  try {
    await fs.stat(path); // follows symlinks: a dangling link is absent
    return true;
  } catch {
    return false;
  }
}

function newHash(crypto: Crypto, f: RemoteFile): Hash {
  if (f.hash === "sha256") return crypto.createHash("sha256");
  const h = crypto.createHash("sha1");
  h.update(`blob ${f.size}\0`); // git's blob header: the etag of a plain file is its git object id
  return h;
}

/** The disk store of one repo under `cacheDir`. */
export async function diskStore(cacheDir: string, repo: string): Promise<HubStore> {
  const fs: Fs = await import("node:fs/promises");
  const path = await import("node:path");
  const crypto: Crypto = await import("node:crypto");
  const root = path.join(cacheDir, repoFolderName(repo));
  const blobs = path.join(root, "blobs");
  const pointer = (commit: string, file: string) => path.join(root, "snapshots", commit, ...file.split("/"));
  const marker = (commit: string, file: string) => path.join(root, ".no_exist", commit, ...file.split("/"));

  async function writeAtomic(target: string, text: string): Promise<void> {
    await fs.mkdir(path.dirname(target), { recursive: true });
    const tmp = `${target}.${crypto.randomUUID()}.tmp`;
    await fs.writeFile(tmp, text);
    await fs.rename(tmp, target);
  }

  /** snapshots/<commit>/<path> -> ../../blobs/<etag> (relative, as huggingface_hub makes them). */
  async function link(commit: string, file: string, blob: string): Promise<void> {
    const at = pointer(commit, file);
    await fs.mkdir(path.dirname(at), { recursive: true });
    await fs.rm(at, { force: true });
    try {
      await fs.symlink(path.relative(path.dirname(at), blob), at);
    } catch {
      await fs.copyFile(blob, at); // no symlinks here (Windows without developer mode): copy, as Python does
    }
  }

  return {
    where: root,
    async readRef(revision) {
      try {
        return (await fs.readFile(path.join(root, "refs", ...revision.split("/")), "utf8")).trim() || null;
      } catch {
        return null;
      }
    },
    async writeRef(revision, commit) {
      await writeAtomic(path.join(root, "refs", ...revision.split("/")), commit);
    },
    has: (commit, file) => exists(fs, pointer(commit, file)),
    isMissing: (commit, file) => exists(fs, marker(commit, file)),
    async markMissing(commit, file) {
      await writeAtomic(marker(commit, file), "");
    },
    async fetchInto(commit: string, f: RemoteFile, ctx: StoreContext) {
      const blob = path.join(blobs, f.etag);
      if (await exists(fs, blob)) return await link(commit, f.path, blob); // the same bytes under another commit
      await fs.mkdir(blobs, { recursive: true });
      const partial = `${blob}.incomplete`;
      const handle = await fs.open(partial, "a+");
      let hash = newHash(crypto, f);
      let offset = (await handle.stat()).size;
      if (offset > f.size) {
        await handle.truncate(0);
        offset = 0;
      }
      // Resuming: hash what an earlier run left, then go on from its end.
      for (let at = 0; at < offset;) {
        const buf = new Uint8Array(Math.min(1 << 20, offset - at));
        const { bytesRead } = await handle.read(buf, 0, buf.length, at);
        if (bytesRead === 0) break;
        hash.update(buf.subarray(0, bytesRead));
        at += bytesRead;
      }
      try {
        await transfer(f, {
          get offset() {
            return offset;
          },
          async write(chunk) {
            await handle.write(chunk, 0, chunk.length, offset);
            hash.update(chunk);
            offset += chunk.length;
          },
          async reset() {
            await handle.truncate(0);
            hash = newHash(crypto, f);
            offset = 0;
          },
        }, { ...ctx, partialAt: partial });
      } finally {
        await handle.close();
      }
      const got = hash.digest("hex");
      if (got !== f.etag) {
        await fs.rm(partial, { force: true });
        throw new HubError(
          `${f.path}: the downloaded bytes hash to ${got} but the Hub lists ${f.hash} ${f.etag}; the download was discarded and nothing entered the cache. Run again; if it repeats, the mirror (HF_ENDPOINT) serves a corrupt file`,
        );
      }
      await fs.rename(partial, blob);
      await link(commit, f.path, blob);
    },
    snapshot(commit): { dir: string; files: FileSource } {
      return { dir: path.join(root, "snapshots", commit), files: localFiles() };
    },
  };
}

/** Reads the login token file, or null when there is none. */
export async function readTokenFile(p: string): Promise<string | null> {
  const fs: Fs = await import("node:fs/promises");
  try {
    return await fs.readFile(p, "utf8");
  } catch {
    return null;
  }
}
