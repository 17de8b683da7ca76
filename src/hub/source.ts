/**
 * A model given by name: a local directory, or a Hugging Face Hub id fetched into the cache.
 * `loadModel` and `loadTokenizer` call this first, so everything after it reads a directory.
 *
 * A name is a local directory when the directory (or its `config.json` / `tokenizer.json`) exists,
 * as in transformers' `from_pretrained`; otherwise a name shaped like a Hub id (`org/name`) is looked
 * up on the Hub (or in the cache, offline); anything else goes on to the directory loader, whose
 * error names the missing file.
 *
 * @module
 */

import { type FileSource, joinPath } from "../io/files.ts";
import { cacheApiStore } from "./browser_cache.ts";
import { diskStore, readTokenFile } from "./disk_cache.ts";
import type { ProgressSink } from "./progress.ts";
import { fetchSnapshot, type HubNeed } from "./snapshot.ts";
import { HubError, type HubOptions, isHubId, processEnv, resolveHubSettings } from "./settings.ts";

/** Where a model's files are. */
export interface ModelSource {
  dir: string;
  files: FileSource;
  /** Set when the name was a Hub id. */
  hub: { repo: string; revision: string; commit: string; downloaded: string[] } | null;
}

interface NodeProcess {
  versions?: { node?: string };
  stderr?: { isTTY?: boolean; write(s: string): unknown };
}

function nodeProcess(): NodeProcess | undefined {
  return (globalThis as { process?: NodeProcess }).process;
}

/** A bar on stderr when it is a terminal (Deno, Node, Bun), else nothing. */
function defaultProgress(): ProgressSink | false {
  const err = nodeProcess()?.stderr;
  return err?.isTTY ? { write: (t) => void err.write(t), isTTY: true } : false;
}

/**
 * Resolves `name` to a directory and the {@link FileSource} that reads it. `files` reads local
 * directories; Hub snapshots come with their own source (the disk cache, or the Cache API).
 */
export async function resolveModelSource(
  name: string,
  files: FileSource,
  need: HubNeed,
  options: HubOptions = {},
): Promise<ModelSource> {
  const probe = need === "tokenizer" ? "tokenizer.json" : "config.json";
  const local = { dir: name, files, hub: null };
  if (!isHubId(name) || (await files.exists(joinPath(name, probe))) || (await files.exists(name))) return local;
  const env = processEnv();
  const hasDisk = typeof nodeProcess()?.versions?.node === "string";
  const settings = await resolveHubSettings(
    { ...options, progress: options.progress ?? defaultProgress() },
    env,
    env.HOME ?? env.USERPROFILE ?? null,
    readTokenFile,
    hasDisk,
  );
  let store;
  if (settings.store === "disk") {
    if (settings.cacheDir === null) {
      throw new HubError("no Hub cache directory: set HF_HOME or HF_HUB_CACHE, or pass cacheDir");
    }
    store = await diskStore(settings.cacheDir, name);
  } else store = await cacheApiStore(settings.endpoint, name);
  try {
    const snap = await fetchSnapshot(name, need, settings, store);
    return {
      dir: snap.dir,
      files: snap.files,
      hub: { repo: name, revision: snap.revision, commit: snap.commit, downloaded: snap.downloaded },
    };
  } catch (e) {
    if (e instanceof HubError) {
      throw new HubError(
        `${name} is not a local model directory, so it was looked up as a Hub id: ${e.message}`,
        e.status,
      );
    }
    throw e;
  }
}
