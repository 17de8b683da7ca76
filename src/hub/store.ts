/**
 * What a Hub cache offers the snapshot resolver: refs, snapshot files, markers of absent files,
 * and verified downloads into the cache. Two stores: `disk_cache.ts` (huggingface_hub's layout)
 * and `browser_cache.ts` (the Cache API).
 *
 * @module
 */

import type { FileSource } from "../io/files.ts";
import type { ProgressSink } from "./progress.ts";
import type { RemoteFile } from "./transfer.ts";

/** Transfer settings a store passes on to `transfer()`. */
export interface StoreContext {
  fetch: typeof fetch;
  headers: Record<string, string>;
  maxRetries: number;
  progress: ProgressSink | false;
}

/** One repo's cache. Paths are repo paths (`/`-separated). */
export interface HubStore {
  /** Where the repo's cache is, for messages. */
  readonly where: string;
  /** The commit a branch or tag resolved to when last fetched, or null. */
  readRef(revision: string): Promise<string | null>;
  writeRef(revision: string, commit: string): Promise<void>;
  /** Whether the snapshot of `commit` holds `path`. */
  has(commit: string, path: string): Promise<boolean>;
  /** Whether `path` is known to be absent from `commit`. */
  isMissing(commit: string, path: string): Promise<boolean>;
  markMissing(commit: string, path: string): Promise<void>;
  /** Downloads (resuming), verifies and adds `f` to the snapshot of `commit`; reuses a blob already held. */
  fetchInto(commit: string, f: RemoteFile, ctx: StoreContext): Promise<void>;
  /** The snapshot as a directory to load from. */
  snapshot(commit: string): { dir: string; files: FileSource };
}
