/**
 * One file's transfer from the Hub: a GET that resumes with `Range: bytes=N-` after the
 * connection is cut (and across runs, from whatever the store kept), streaming into a store's
 * sink, which hashes as it writes. The store verifies the hash before the file enters the cache.
 *
 * What the answers mean: 206 with `Content-Range: bytes N-...` continues at N; 200 to a ranged
 * request means the server ignored the range, so the sink starts over; 416 means there is nothing
 * past N (complete when N is the size). 401/403/404 are not retried.
 *
 * @module
 */

import { HubError } from "./settings.ts";
import { DownloadProgress, type ProgressSink } from "./progress.ts";

/** A file to fetch: where, how big, and what it must hash to. */
export interface RemoteFile {
  /** Path in the repo, e.g. `model.safetensors`. */
  path: string;
  /** The `resolve/<commit>/<path>` URL. */
  url: string;
  size: number;
  /**
   * The blob's name in the cache (huggingface_hub's etag): the sha256 of an LFS file, the git blob
   * id (sha1 of `blob <size>\0` + content) of a plain file.
   */
  etag: string;
  /** How `etag` is computed from the bytes. */
  hash: "sha256" | "git-sha1";
}

/** Where the bytes go. `offset` is how many are already held (the resume point). */
export interface TransferSink {
  readonly offset: number;
  write(chunk: Uint8Array): Promise<void>;
  /** Forgets what is held (the server ignored the range, or sent more than expected). */
  reset(): Promise<void>;
}

/** Options of {@link transfer}. */
export interface TransferOptions {
  fetch: typeof fetch;
  /** Extra request headers (the token). */
  headers: Record<string, string>;
  maxRetries: number;
  progress: ProgressSink | false;
  /** Where the partial file stays, for the message when the transfer gives up. */
  partialAt: string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The start of a `Content-Range: bytes start-end/total` header, or null. */
function rangeStart(header: string | null): number | null {
  const m = header?.match(/^bytes (\d+)-\d+\/(\d+|\*)$/);
  return m ? Number(m[1]) : null;
}

function httpError(f: RemoteFile, status: number, hubMessage: string): HubError {
  const detail = hubMessage ? ` (${hubMessage})` : "";
  if (status === 401 || status === 403) {
    return new HubError(
      `${f.url}: HTTP ${status}${detail}: the repo is gated or private; set HF_TOKEN to a token with access`,
      status,
    );
  }
  if (status === 404) return new HubError(`${f.url}: HTTP 404${detail}: the file is not on the Hub`, status);
  return new HubError(`${f.url}: HTTP ${status}${detail}`, status);
}

/**
 * Fetches `f` into `sink` from `sink.offset` on, retrying with a range after a cut (up to
 * `maxRetries` times, backing off). Throws a {@link HubError}; the sink keeps what it got.
 */
export async function transfer(f: RemoteFile, sink: TransferSink, o: TransferOptions): Promise<void> {
  const bar = new DownloadProgress(o.progress, f.path, f.size, sink.offset);
  let failures = 0;
  let lastError = "";
  while (true) {
    if (sink.offset > f.size) await sink.reset();
    if (sink.offset === f.size && f.size > 0) break;
    const headers: Record<string, string> = { ...o.headers, "Accept-Encoding": "identity" };
    const from = sink.offset;
    if (from > 0) headers.Range = `bytes=${from}-`;
    let res: Response;
    try {
      res = await o.fetch(f.url, { headers });
    } catch (e) {
      lastError = (e as Error).message;
      if (++failures > o.maxRetries) break;
      await sleep(Math.min(2000, 100 * 2 ** failures));
      continue;
    }
    if (res.status === 416) {
      await res.body?.cancel();
      if (from === f.size) break;
      await sink.reset();
      continue;
    }
    if (!res.ok) {
      const text = await res.text().catch(() => "");
      const hubMessage = res.headers.get("x-error-message") ?? text.slice(0, 200);
      throw httpError(f, res.status, hubMessage);
    }
    if (from > 0 && (res.status !== 206 || rangeStart(res.headers.get("content-range")) !== from)) {
      await sink.reset(); // the server sent the whole file (or another range): start over
      if (res.status === 206) {
        await res.body?.cancel();
        continue;
      }
    }
    try {
      for await (const chunk of res.body!) {
        await sink.write(chunk);
        bar.update(sink.offset);
        if (sink.offset > f.size) break;
      }
    } catch (e) {
      lastError = (e as Error).message;
    }
    if (sink.offset === f.size) break;
    if (sink.offset > f.size) {
      throw new HubError(`${f.url}: the server sent more than the ${f.size} bytes the Hub lists; nothing was kept`);
    }
    lastError ||= "the connection closed early";
    if (++failures > o.maxRetries) break;
    await sleep(Math.min(2000, 100 * 2 ** failures));
  }
  if (sink.offset !== f.size) {
    bar.finish("(interrupted)");
    throw new HubError(
      `${f.path}: the transfer was cut at ${sink.offset} of ${f.size} bytes (${lastError}) after ${failures} ${
        failures === 1 ? "try" : "tries"
      }; ${
        sink.offset > 0 ? `the partial file stays at ${o.partialAt} and the next run resumes from it` : "run again"
      }`,
    );
  }
  bar.finish();
}
