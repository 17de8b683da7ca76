/**
 * A Hugging Face Hub on 127.0.0.1 for the tests, serving fixture repos in the Hub's URL layout:
 *
 * - `GET /api/models/<repo>/revision/<rev>`: `{id, sha, ...}` (what `modelInfo` reads)
 * - `POST /api/models/<repo>/paths-info/<rev>`: `[{type, path, oid, size, lfs?}]` for the paths that exist
 * - `GET|HEAD /<repo>/resolve/<rev>/<path>`: plain files with `ETag` (their git blob id) and
 *   `X-Repo-Commit`; LFS files answer 302 to `/cdn/<sha256>` with `X-Linked-Etag` / `X-Linked-Size`
 * - `GET /cdn/<sha256>` on a second server addressed as `localhost` (another host, as the Hub's CDN
 *   is: huggingface_hub then reads the file's metadata from the redirect itself): the bytes, with
 *   `Range` support (206 + `Content-Range`)
 * - a renamed repo answers 307 to its new name (relative `Location`), as the Hub does;
 * - a gated repo answers 401 without the right `Authorization: Bearer` token; unknown repos and
 *   revisions 404 with the Hub's `X-Error-Code`.
 *
 * Faults on demand: `cut` ends the next transfers of a file in the middle (the connection drops),
 * `corrupt` serves a file with one byte changed. Every request is logged for the assertions.
 */

import { createHash } from "node:crypto";

export interface RepoFile {
  path: string;
  bytes: Uint8Array;
  /** Stored with Git LFS (weights): served through the CDN redirect, named by sha256. */
  lfs: boolean;
}

export interface FakeRepo {
  /** Files by commit. */
  commits: Record<string, RepoFile[]>;
  /** Branches and tags -> commit. */
  refs: Record<string, string>;
  /** When set, the token every request must carry. */
  token?: string;
}

export interface LoggedRequest {
  method: string;
  path: string;
  range: string | null;
  auth: string | null;
}

export function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

export function gitOid(b: Uint8Array): string {
  return createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function hubError(status: number, code: string, message: string): Response {
  return json({ error: message }, status, { "x-error-code": code, "x-error-message": message });
}

/** Serves `bytes` honouring a `Range: bytes=N-` header. */
function ranged(req: Request, bytes: Uint8Array, headers: Record<string, string>, cutAt: number | null): Response {
  const m = req.headers.get("range")?.match(/^bytes=(\d+)-(\d*)$/);
  let start = 0, status = 200;
  const h: Record<string, string> = { ...headers, "accept-ranges": "bytes" };
  if (m) {
    start = Number(m[1]);
    if (start >= bytes.length) {
      return new Response(null, { status: 416, headers: { "content-range": `bytes */${bytes.length}` } });
    }
    status = 206;
    h["content-range"] = `bytes ${start}-${bytes.length - 1}/${bytes.length}`;
  }
  const body = new Uint8Array(bytes.subarray(start));
  h["content-length"] = String(body.length);
  if (req.method === "HEAD") return new Response(null, { status, headers: h });
  if (cutAt === null || cutAt <= start) return new Response(body, { status, headers: h });
  // Send up to `cutAt` of the file, then drop the connection.
  let sent = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (!sent) {
        c.enqueue(body.subarray(0, cutAt - start));
        sent = true;
      } else c.error(new Error("transfer cut by the test"));
    },
  });
  return new Response(stream, { status, headers: h });
}

export class FakeHub {
  readonly requests: LoggedRequest[] = [];
  /** Repo id -> new id (the Hub redirects renamed repos). */
  readonly renamed: Record<string, string> = {};
  /** Path of a file -> how many more transfers of it to cut, and where. */
  readonly cuts = new Map<string, { times: number; fraction: number }>();
  /** Paths served with one byte changed. */
  readonly corrupt = new Set<string>();
  #server: Deno.HttpServer<Deno.NetAddr>;
  #cdn: Deno.HttpServer<Deno.NetAddr>;
  #blobs = new Map<string, RepoFile>();

  private constructor(readonly repos: Record<string, FakeRepo>) {
    for (const repo of Object.values(repos)) {
      for (const files of Object.values(repo.commits)) for (const f of files) this.#blobs.set(sha256(f.bytes), f);
    }
    const options = {
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
      onError: () => new Response(null, { status: 500 }),
    };
    this.#server = Deno.serve(options, (req) => this.#handle(req));
    this.#cdn = Deno.serve(options, (req) => this.#handle(req));
  }

  static start(repos: Record<string, FakeRepo>): FakeHub {
    return new FakeHub(repos);
  }

  get url(): string {
    return `http://127.0.0.1:${this.#server.addr.port}`;
  }

  /** Requests since `from`, e.g. `hub.since(n)` after noting `n = hub.requests.length`. */
  since(from: number): LoggedRequest[] {
    return this.requests.slice(from);
  }

  /** The CDN's base URL: another port and host name (localhost), so another origin and host. */
  get cdnUrl(): string {
    return `http://localhost:${this.#cdn.addr.port}`;
  }

  async close(): Promise<void> {
    await Promise.all([this.#server.shutdown(), this.#cdn.shutdown()]);
  }

  #repo(id: string, req: Request): { repo: FakeRepo } | Response {
    const repo = this.repos[id];
    if (!repo) return hubError(404, "RepoNotFound", `Repository Not Found for url: ${req.url}.`);
    if (repo.token && req.headers.get("authorization") !== `Bearer ${repo.token}`) {
      return hubError(
        401,
        "GatedRepo",
        `Access to model ${id} is restricted. You must have access to it and be authenticated to access it. Please log in.`,
      );
    }
    return { repo };
  }

  #commit(repo: FakeRepo, rev: string): string | null {
    const r = decodeURIComponent(rev);
    return repo.commits[r] ? r : repo.refs[r] ?? null;
  }

  #bytesOf(f: RepoFile): Uint8Array {
    if (!this.corrupt.has(f.path)) return f.bytes;
    const b = f.bytes.slice();
    b[b.length >> 1] ^= 0xff;
    return b;
  }

  #cutAt(f: RepoFile): number | null {
    const c = this.cuts.get(f.path);
    if (!c || c.times <= 0) return null;
    c.times--;
    return Math.floor(f.bytes.length * c.fraction);
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    this.requests.push({
      method: req.method,
      path: url.pathname,
      range: req.headers.get("range"),
      auth: req.headers.get("authorization"),
    });
    const parts = url.pathname.split("/").slice(1);
    if (parts[0] === "cdn") {
      const f = this.#blobs.get(parts[1]);
      if (!f) return new Response("no such blob", { status: 404 });
      return ranged(req, this.#bytesOf(f), { etag: `"${sha256(f.bytes)}"` }, this.#cutAt(f));
    }
    const api = parts[0] === "api" && parts[1] === "models";
    const [org, name, verb, rev, ...rest] = api ? parts.slice(2) : parts;
    const id = `${org}/${name}`;
    if (this.renamed[id]) {
      const to = url.pathname.replace(`/${id}/`, `/${this.renamed[id]}/`) + url.search;
      return new Response(null, { status: 307, headers: { location: to } });
    }
    const found = this.#repo(id, req);
    if (found instanceof Response) return found;
    const { repo } = found;
    const commit = rev === undefined ? null : this.#commit(repo, rev);
    if (commit === null) return hubError(404, "RevisionNotFound", `Invalid rev id: ${rev}`);
    const files = repo.commits[commit];
    if (api && verb === "revision") {
      return json({
        _id: id,
        id,
        sha: commit,
        private: false,
        gated: repo.token ? "manual" : false,
        downloads: 0,
        likes: 0,
        lastModified: "2026-11-01T00:00:00.000Z",
        pipeline_tag: "text-generation",
      });
    }
    if (api && verb === "paths-info" && req.method === "POST") {
      const body = await req.json() as { paths: string[] };
      return json(
        files.filter((f) => body.paths.includes(f.path)).map((f) => ({
          type: "file",
          path: f.path,
          oid: gitOid(f.bytes),
          size: f.bytes.length,
          ...(f.lfs ? { lfs: { oid: sha256(f.bytes), size: f.bytes.length, pointerSize: 134 } } : {}),
        })),
      );
    }
    if (!api && verb === "resolve") {
      const path = rest.map(decodeURIComponent).join("/");
      const f = files.find((x) => x.path === path);
      if (!f) {
        const r = hubError(404, "EntryNotFound", `${path} does not exist on "${rev}"`);
        r.headers.set("x-repo-commit", commit);
        return r;
      }
      if (f.lfs) {
        return new Response(null, {
          status: 302,
          headers: {
            location: `${this.cdnUrl}/cdn/${sha256(f.bytes)}`,
            "x-linked-etag": `"${sha256(f.bytes)}"`,
            "x-linked-size": String(f.bytes.length),
            "x-repo-commit": commit,
          },
        });
      }
      return ranged(req, this.#bytesOf(f), { etag: `"${gitOid(f.bytes)}"`, "x-repo-commit": commit }, this.#cutAt(f));
    }
    return new Response("not found", { status: 404 });
  }
}

/** The files of a fixture model directory as a repo commit (safetensors through LFS). */
export async function repoFiles(dir: string, names: string[]): Promise<RepoFile[]> {
  return await Promise.all(names.map(async (path) => ({
    path,
    bytes: await Deno.readFile(`${dir}/${path}`),
    lfs: path.endsWith(".safetensors"),
  })));
}
