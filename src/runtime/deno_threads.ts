/**
 * Lets ONNX Runtime Web start its wasm worker threads under Deno (and Bun).
 *
 * ORT "preloads" its worker script by fetching the `.mjs` file and importing it from a `blob:` URL,
 * which Deno refuses for npm code (ERR_UNSUPPORTED_ESM_URL_SCHEME) and Bun's worker_threads cannot
 * resolve, so multi-threaded wasm fails.
 * While ORT initializes, this hands back the original `file:` URL for blobs made from local `.mjs`
 * files, which Deno imports happily. Nothing changes for any other URL. The patch is undone by the
 * returned function once ORT's wasm module is up.
 *
 * @module
 */

/** Installs the shim; returns a function that restores `fetch` and `URL.createObjectURL`. */
export function installDenoThreadShim(): () => void {
  const origFetch = globalThis.fetch;
  const origCreate = URL.createObjectURL;
  const fromFile = new WeakMap<Blob, string>();
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const res = await origFetch(input, init);
    if (url.startsWith("file:") && url.endsWith(".mjs")) {
      const blob = await res.blob();
      fromFile.set(blob, url);
      return { ok: true, status: 200, blob: () => Promise.resolve(blob) } as Response;
    }
    return res;
  }) as typeof fetch;
  URL.createObjectURL = (obj: Blob | MediaSource) => fromFile.get(obj as Blob) ?? origCreate(obj as Blob);
  return () => {
    globalThis.fetch = origFetch;
    URL.createObjectURL = origCreate;
  };
}
