/**
 * Hugging Face Hub settings: repo ids, and where the endpoint, token, offline switch and cache come
 * from. Defaults and environment variables follow Python's `huggingface_hub` (`constants.py`), so a
 * model cached by either is found by the other:
 *
 * | setting | option | environment | default |
 * |---|---|---|---|
 * | endpoint | `endpoint` | `HF_ENDPOINT` | `https://huggingface.co` |
 * | token | `token` | `HF_TOKEN`, `HUGGING_FACE_HUB_TOKEN`, else the file `$HF_HOME/token` | none |
 * | offline | `offline` | `HF_HUB_OFFLINE=1` | false |
 * | cache | `cacheDir` | `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `$HF_HOME/hub` | `$XDG_CACHE_HOME/huggingface/hub`, `~/.cache/huggingface/hub` |
 *
 * Environment variables are read through `process.env` where the runtime has it (Deno, Node, Bun);
 * a browser passes options.
 *
 * @module
 */

import type { ProgressSink } from "./progress.ts";

/** Options of a Hub download (see the module table for defaults). */
export interface HubOptions {
  /** Branch, tag or commit (default `main`). */
  revision?: string;
  /** Hub or mirror base URL. */
  endpoint?: string;
  /** Access token for gated or private repos; null for none. */
  token?: string | null;
  /** Use only the cache; never ask the network. */
  offline?: boolean;
  /** The hub cache directory (disk store). */
  cacheDir?: string;
  /** `disk`: the Python-compatible cache on disk (default where `node:fs` exists); `cache-api`: the browser Cache API. */
  store?: "disk" | "cache-api";
  /** Ask the Hub again for the commit of a branch or tag already in the cache (default false: the cache is used as is). */
  refresh?: boolean;
  /** Progress of downloads; default a bar on stderr when stderr is a terminal, `false` for none. */
  progress?: ProgressSink | false;
  /** Attempts after a transfer is cut before giving up (default 5); the partial file is kept either way. */
  maxRetries?: number;
  /** The fetch to use (tests, proxies). */
  fetch?: typeof fetch;
}

/** Settings with every default filled in. */
export interface HubSettings {
  revision: string;
  endpoint: string;
  token: string | null;
  offline: boolean;
  cacheDir: string | null;
  store: "disk" | "cache-api";
  refresh: boolean;
  progress: ProgressSink | false;
  maxRetries: number;
  fetch: typeof fetch;
}

/** A model id on the Hub: `org/name`. */
export interface RepoId {
  /** The id as the Hub spells it, e.g. `Qwen/Qwen2.5-0.5B-Instruct`. */
  name: string;
}

/** The error of a Hub id that cannot be fetched or is not in the cache. */
export class HubError extends Error {
  /** HTTP status when the Hub answered with one. */
  readonly status: number | null;
  constructor(message: string, status: number | null = null) {
    super(message);
    this.name = "HubError";
    this.status = status;
  }
}

const REPO_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;

/**
 * Whether a string reads as a Hub model id, `org/name`, as opposed to a path: exactly one `/`, no
 * leading `.`, `/` or `~`, no `..`, the Hub's allowed characters. Legacy ids without an org (`gpt2`)
 * are not taken: a bare name is a local directory (the Hub redirects them to `openai-community/gpt2`
 * and the like anyway). A string that is also an existing local directory is read as the directory
 * (see `source.ts`).
 */
export function isHubId(s: string): boolean {
  const parts = s.split("/");
  return parts.length === 2 && parts.every((p) => REPO_PART.test(p) && !p.includes("..") && !p.endsWith(".")) &&
    !s.endsWith(".git");
}

/** The cache folder of a model repo, as huggingface_hub names it: `models--org--name`. */
export function repoFolderName(id: string): string {
  return ["models", ...id.split("/")].join("--");
}

/** A 40-hex commit id (revisions that are commits need no network to resolve). */
export function isCommitHash(revision: string): boolean {
  return /^[0-9a-f]{40}$/.test(revision);
}

type Env = Record<string, string | undefined>;

/** `process.env` where the runtime has one (Deno, Node, Bun), else empty. */
export function processEnv(): Env {
  const p = (globalThis as { process?: { env?: Env } }).process;
  try {
    return p?.env ? { ...p.env } : {};
  } catch {
    return {}; // Deno without --allow-env
  }
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && ["1", "on", "yes", "true"].includes(v.trim().toLowerCase());
}

/** The default cache directory from the environment (huggingface_hub's order), or null without one. */
export function defaultCacheDir(env: Env, home: string | null): string | null {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE;
  if (env.HF_HOME) return `${env.HF_HOME}/hub`;
  if (env.XDG_CACHE_HOME) return `${env.XDG_CACHE_HOME}/huggingface/hub`;
  return home ? `${home}/.cache/huggingface/hub` : null;
}

/** Where huggingface_hub keeps the token written by `hf auth login`. */
export function tokenPath(env: Env, home: string | null): string | null {
  if (env.HF_TOKEN_PATH) return env.HF_TOKEN_PATH;
  if (env.HF_HOME) return `${env.HF_HOME}/token`;
  if (env.XDG_CACHE_HOME) return `${env.XDG_CACHE_HOME}/huggingface/token`;
  return home ? `${home}/.cache/huggingface/token` : null;
}

/**
 * Fills in the settings from options, then the environment, then the defaults. `readTokenFile`
 * reads the login token file (disk store only); it returns null when there is none.
 */
export async function resolveHubSettings(
  options: HubOptions,
  env: Env,
  home: string | null,
  readTokenFile: (path: string) => Promise<string | null>,
  hasDisk: boolean,
): Promise<HubSettings> {
  const store = options.store ?? (hasDisk ? "disk" : "cache-api");
  let token = options.token !== undefined ? options.token : env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN ?? null;
  if (token === null && options.token === undefined && store === "disk") {
    const path = tokenPath(env, home);
    token = path ? (await readTokenFile(path))?.trim() || null : null;
  }
  const endpoint = (options.endpoint ?? env.HF_ENDPOINT ?? "https://huggingface.co").replace(/\/+$/, "");
  return {
    revision: options.revision ?? "main",
    endpoint,
    token: token === "" ? null : token,
    offline: options.offline ?? truthy(env.HF_HUB_OFFLINE),
    cacheDir: options.cacheDir ?? defaultCacheDir(env, home),
    store,
    refresh: options.refresh ?? false,
    progress: options.progress ?? false,
    maxRetries: options.maxRetries ?? 5,
    fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
  };
}
