/**
 * A model repo's snapshot in the cache, fetched as needed: which commit a revision names, which of
 * the files exo-tune reads exist at that commit, and their download.
 *
 * The Hub API calls go through the maintained `@huggingface/hub` package: `modelInfo` turns a
 * branch or tag into a commit (`/api/models/<repo>/revision/<rev>`), `pathsInfo` lists the wanted
 * files with their sizes and hashes (`/api/models/<repo>/paths-info/<commit>`, one request for
 * all). Its download helpers (`snapshotDownload`, `downloadFileToCacheDir`) are not used: they
 * fetch every file of a repo (ONNX exports and `.bin` weights included), do not resume, and move a
 * blob into the cache before any check; the transfer here resumes and verifies (`transfer.ts`).
 *
 * Only the files a load reads are fetched: `config.json`, `generation_config.json`, the
 * safetensors weights (`model.safetensors`, or the index and its shards), `tokenizer.json`,
 * `tokenizer_config.json`, `special_tokens_map.json`, `chat_template.jinja`. A branch or tag found
 * in `refs/` is used without asking the Hub again (so a second load makes no request); `refresh`
 * asks again. Files absent at a commit are recorded (`.no_exist`, as huggingface_hub does), so
 * offline loads know they are not missing.
 *
 * @module
 */

import { HubApiError, modelInfo, pathsInfo } from "@huggingface/hub";
import type { PathInfo } from "@huggingface/hub";
import { joinPath } from "../io/files.ts";
import type { FileSource } from "../io/files.ts";
import { HubError, type HubSettings, isCommitHash } from "./settings.ts";
import type { HubStore, StoreContext } from "./store.ts";
import type { RemoteFile } from "./transfer.ts";

/** What a load reads: a whole model, its tokenizer, or only `config.json`. */
export type HubNeed = "model" | "tokenizer" | "config";

const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"];
const WEIGHTS = "model.safetensors";
const INDEX = "model.safetensors.index.json";

/** Files of a need, and which of them must exist. */
function wanted(need: HubNeed): { files: string[]; required: string[] } {
  if (need === "config") return { files: ["config.json"], required: ["config.json"] };
  if (need === "tokenizer") return { files: TOKENIZER_FILES, required: ["tokenizer.json"] };
  return {
    files: ["config.json", "generation_config.json", ...TOKENIZER_FILES, WEIGHTS, INDEX],
    required: ["config.json", "tokenizer.json"],
  };
}

/** A resolved snapshot. */
export interface Snapshot {
  repo: string;
  revision: string;
  commit: string;
  dir: string;
  files: FileSource;
  /** Files downloaded by this call. */
  downloaded: string[];
}

/** The shard file names of a safetensors index. */
async function shardsOf(files: FileSource, indexPath: string): Promise<string[]> {
  let map: unknown;
  try {
    map = JSON.parse(await files.readText(indexPath)).weight_map;
  } catch (e) {
    throw new HubError(`${indexPath} is not valid JSON: ${(e as Error).message}`);
  }
  if (!map || typeof map !== "object") throw new HubError(`${indexPath} has no "weight_map"`);
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  for (const s of shards) {
    if (typeof s !== "string" || s.includes("..") || s.startsWith("/")) {
      throw new HubError(`${indexPath}: weight_map names a bad shard file ${JSON.stringify(s)}`);
    }
  }
  return shards as string[];
}

/**
 * What the snapshot of `commit` lacks for `need` (empty when it is complete). Optional files count
 * as present when known to be absent (`.no_exist`), or always when `offline`: a cache written by
 * another tool may not record them, and transformers too goes on without them offline.
 */
async function missingFiles(store: HubStore, commit: string, need: HubNeed, offline: boolean): Promise<string[]> {
  const missing: string[] = [];
  const { files, required } = wanted(need);
  for (const f of files.filter((f) => f !== WEIGHTS && f !== INDEX)) {
    if (await store.has(commit, f)) continue;
    if (!required.includes(f) && (offline || (await store.isMissing(commit, f)))) continue;
    missing.push(f);
  }
  if (need === "model") {
    if (await store.has(commit, WEIGHTS)) return missing;
    if (await store.has(commit, INDEX)) {
      const snap = store.snapshot(commit);
      for (const s of await shardsOf(snap.files, joinPath(snap.dir, INDEX))) {
        if (!(await store.has(commit, s))) missing.push(s);
      }
    } else missing.push(WEIGHTS);
  }
  return missing;
}

/** The Hub's answer as a message that says what to do. */
function apiError(e: unknown, repo: string, s: HubSettings): Error {
  if (e instanceof HubApiError) {
    const hub = e.message.replace(/\. URL: .*$/s, "");
    if (e.statusCode === 401) {
      return new HubError(
        `${s.endpoint} answered 401 for ${repo} (${hub}): ${
          s.token
            ? "the token does not give access to this repo"
            : "the repo is gated or private, or does not exist; set HF_TOKEN to a token with access"
        }`,
        401,
      );
    }
    if (e.statusCode === 403) {
      return new HubError(
        `${s.endpoint} answered 403 for ${repo} (${hub}): this token has no access to the gated repo; accept its conditions on the model page`,
        403,
      );
    }
    if (e.statusCode === 404) {
      return new HubError(
        `${s.endpoint} has no model ${repo} at revision ${s.revision} (404: ${hub}); check the id and --revision`,
        404,
      );
    }
    return new HubError(`${s.endpoint} answered ${e.statusCode} for ${repo}: ${hub}`, e.statusCode);
  }
  if (e instanceof TypeError) {
    return new HubError(
      `cannot reach ${s.endpoint} for ${repo} (${e.message}); check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache`,
    );
  }
  return e as Error;
}

/** The blob a path-info entry describes: LFS files by sha256, plain files by git object id. */
function remoteOf(info: PathInfo, repo: string, commit: string, s: HubSettings): RemoteFile {
  const url = `${s.endpoint}/${repo}/resolve/${commit}/${info.path.split("/").map(encodeURIComponent).join("/")}`;
  if (info.lfs) return { path: info.path, url, size: info.lfs.size, etag: info.lfs.oid, hash: "sha256" };
  if (!info.oid) throw new HubError(`${s.endpoint} lists ${repo}/${info.path} without a hash; cannot verify it`);
  return { path: info.path, url, size: info.size, etag: info.oid, hash: "git-sha1" };
}

/**
 * The snapshot of `repo` at `s.revision` holding what `need` reads, downloading what the cache
 * lacks (nothing when it is complete). Throws a {@link HubError} saying what to do.
 */
export async function fetchSnapshot(repo: string, need: HubNeed, s: HubSettings, store: HubStore): Promise<Snapshot> {
  const rev = s.revision;
  let commit = isCommitHash(rev) ? rev : s.refresh && !s.offline ? null : await store.readRef(rev);
  if (commit !== null) {
    const missing = await missingFiles(store, commit, need, s.offline);
    if (missing.length === 0) return { repo, revision: rev, commit, ...store.snapshot(commit), downloaded: [] };
    if (s.offline) {
      throw new HubError(
        `offline (HF_HUB_OFFLINE): ${repo}@${rev} is only partly in the cache ${store.where}: ${
          missing.join(", ")
        } missing; run once online, or unset HF_HUB_OFFLINE`,
      );
    }
  } else if (s.offline) {
    throw new HubError(
      `offline (HF_HUB_OFFLINE): ${repo}@${rev} is not in the cache ${store.where}; run once online (or with Python's huggingface_hub), or unset HF_HUB_OFFLINE`,
    );
  }

  // The token goes in through our fetch: the package would insist on the hf_ prefix that mirrors may not use.
  const headers: Record<string, string> = s.token ? { Authorization: `Bearer ${s.token}` } : {};
  const api = {
    hubUrl: s.endpoint,
    fetch: (u: RequestInfo | URL, init?: RequestInit) =>
      s.fetch(u, { ...init, headers: { ...(init?.headers as Record<string, string>), ...headers } }),
  };
  try {
    if (commit === null || !isCommitHash(rev)) {
      const info = await modelInfo({ ...api, name: repo, revision: rev, additionalFields: ["sha"] });
      if (typeof info.sha !== "string" || !isCommitHash(info.sha)) {
        throw new HubError(`${s.endpoint} gave no commit for ${repo}@${rev}`);
      }
      commit = info.sha;
      if (commit !== rev) await store.writeRef(rev, commit);
    }
    const c = commit!;
    const ctx: StoreContext = { fetch: s.fetch, headers, maxRetries: s.maxRetries, progress: s.progress };
    const downloaded: string[] = [];
    const fetchAll = async (paths: string[], required: string[]) => {
      const todo: string[] = [];
      for (const p of paths) {
        if (!(await store.has(c, p)) && !(await store.isMissing(c, p))) todo.push(p);
      }
      if (todo.length === 0) return;
      const infos = new Map(
        (await pathsInfo({ ...api, repo: { type: "model", name: repo }, paths: todo, revision: c }))
          .filter((i) => i.type === "file")
          .map((i) => [i.path, i]),
      );
      for (const p of todo) {
        const info = infos.get(p);
        if (!info) {
          if (required.includes(p)) {
            throw new HubError(
              `${repo}@${rev} has no ${p}${
                p === "tokenizer.json"
                  ? " (exo-tune needs the fast tokenizer file)"
                  : ": is it a transformers model repo?"
              }`,
            );
          }
          if (p !== WEIGHTS && p !== INDEX) await store.markMissing(c, p);
          continue;
        }
        await store.fetchInto(c, remoteOf(info, repo, c, s), ctx);
        downloaded.push(p);
      }
    };
    const { files, required } = wanted(need);
    await fetchAll(files.filter((f) => f !== WEIGHTS && f !== INDEX), required);
    if (need === "model" && !(await store.has(c, WEIGHTS))) {
      await fetchAll([WEIGHTS], []);
      if (!(await store.has(c, WEIGHTS))) await fetchAll([INDEX], []);
      if (!(await store.has(c, WEIGHTS)) && (await store.has(c, INDEX))) {
        const snap = store.snapshot(c);
        const shards = await shardsOf(snap.files, joinPath(snap.dir, INDEX));
        await fetchAll(shards, shards);
      } else if (!(await store.has(c, WEIGHTS))) {
        throw new HubError(
          `${repo}@${rev} has no safetensors weights (${WEIGHTS} or ${INDEX}); exo-tune does not read pytorch_model.bin: convert the checkpoint with save_pretrained(safe_serialization=True)`,
        );
      }
    }
    return { repo, revision: rev, commit: c, ...store.snapshot(c), downloaded };
  } catch (e) {
    throw apiError(e, repo, s);
  }
}
