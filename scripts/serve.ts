/**
 * `deno task serve [--port N] [--dir D]`: serves the tuning page (`dist/web/`, built by
 * `deno task build`) as static files with the headers a browser needs for multi-threaded wasm:
 * `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp` make
 * the page cross-origin isolated (`SharedArrayBuffer`, so ORT can start its wasm threads), and
 * `Cross-Origin-Resource-Policy: same-origin` lets the isolated page load our own files. Any static
 * host that sends the first two headers serves the page as well.
 *
 * The browser tests start the same server in-process with extra mounts (`/fixtures/`).
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Content types of the files the page loads. */
const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".jsonl": "application/jsonl; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".md": "text/markdown; charset=utf-8",
};

/** The headers of every response: cross-origin isolation and no caching (a rebuilt page is seen at once). */
export const ISOLATION_HEADERS: Record<string, string> = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Cache-Control": "no-store",
};

/** What to serve: the site's folder and other folders under URL prefixes. */
export interface ServeOptions {
  /** The folder served at `/`. */
  root: string;
  /** Extra folders by URL prefix, e.g. `{ "/fixtures/": "tests/fixtures" }`. */
  mounts?: Record<string, string>;
  /** Port (0: any free port). Default 8000. */
  port?: number;
  hostname?: string;
  /** Called with each request's method, path and status (default: nothing). */
  log?: (line: string) => void;
}

/** A running server. */
export interface StaticServer {
  /** `http://host:port/`. */
  url: string;
  port: number;
  close(): Promise<void>;
}

function extension(path: string): string {
  const i = path.lastIndexOf(".");
  return i > path.lastIndexOf("/") ? path.slice(i) : "";
}

/** Maps a URL path to a file under a mount, refusing `..` and hidden segments. */
function resolvePath(urlPath: string, root: string, mounts: Record<string, string>): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  const segments = decoded.split("/").filter((s) => s !== "");
  if (segments.some((s) => s === ".." || s === "." || s.includes("\\"))) return null;
  const path = "/" + segments.join("/") + (decoded.endsWith("/") && segments.length ? "/" : "");
  for (const [prefix, dir] of Object.entries(mounts)) {
    if (path.startsWith(prefix)) return `${dir}/${path.slice(prefix.length)}`;
  }
  return `${root}${path}`;
}

/** Starts the static server and waits until it listens. */
export async function serve(o: ServeOptions): Promise<StaticServer> {
  const mounts = o.mounts ?? {};
  const log = o.log ?? (() => {});
  const host = o.hostname ?? "127.0.0.1";
  const { promise: listening, resolve } = Promise.withResolvers<number>();
  const server = Deno.serve({ port: o.port ?? 8000, hostname: host, onListen: ({ port }) => resolve(port) }, (req) => {
    return handle(req, o.root, mounts, log);
  });
  const port = await listening;
  return { url: `http://${host}:${port}/`, port, close: () => server.shutdown() };
}

async function handle(
  req: Request,
  root: string,
  mounts: Record<string, string>,
  log: (line: string) => void,
): Promise<Response> {
  const url = new URL(req.url);
  const respond = (status: number, body: BodyInit | null, type?: string, extra: Record<string, string> = {}) => {
    log(`${req.method} ${url.pathname} ${status}`);
    return new Response(body, {
      status,
      headers: { ...ISOLATION_HEADERS, ...(type ? { "Content-Type": type } : {}), ...extra },
    });
  };
  if (req.method !== "GET" && req.method !== "HEAD") return respond(405, "Method not allowed", "text/plain");
  let file = resolvePath(url.pathname, root, mounts);
  if (file === null) return respond(400, "Bad path", "text/plain");
  if (file.endsWith("/")) file += "index.html";
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(file);
  } catch {
    return respond(404, `Not found: ${url.pathname}`, "text/plain");
  }
  if (info.isDirectory) return respond(301, null, undefined, { Location: url.pathname.replace(/\/?$/, "/") });
  const type = MIME[extension(file)] ?? "application/octet-stream";
  const length = { "Content-Length": String(info.size) };
  if (req.method === "HEAD") return respond(200, null, type, length);
  const f = await Deno.open(file, { read: true });
  return respond(200, f.readable, type, length);
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string", default: "8000" },
      dir: { type: "string", default: "dist/web" },
      host: { type: "string", default: "127.0.0.1" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log("Usage: deno task serve [--port N] [--dir dist/web] [--host 127.0.0.1]");
    Deno.exit(0);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port must be an integer in 0..65535, got ${values.port}`);
    Deno.exit(2);
  }
  try {
    await Deno.stat(`${values.dir}/index.html`);
  } catch {
    console.error(
      `${values.dir}/index.html not found: run \`deno task build\` first (it writes the page to dist/web/)`,
    );
    Deno.exit(2);
  }
  const s = await serve({ root: values.dir, port, hostname: values.host });
  console.log(`Serving ${values.dir} at ${s.url} (cross-origin isolated: COOP same-origin, COEP require-corp)`);
}
