/**
 * Lets ONNX Runtime Web start its wasm worker threads outside browsers (Deno, Bun, Node).
 *
 * With more than one thread, ORT "preloads" its worker script: it fetches the local
 * `ort-wasm-simd-threaded.mjs`, wraps it in a `blob:` URL and imports that. Deno refuses `blob:`
 * imports of npm code (ERR_UNSUPPORTED_ESM_URL_SCHEME), Bun's worker_threads cannot resolve them,
 * and Node's `fetch` cannot read `file:` URLs at all, so multi-threaded wasm fails in all three.
 * While installed, this answers a fetch of a local `.mjs` file with a placeholder blob that
 * `URL.createObjectURL` turns back into the original `file:` URL, which every one of them imports
 * (and starts as a worker) happily. Every other URL goes to the real `fetch`.
 *
 * @module
 */

/** Installs the shim; returns a function that restores `fetch` and `URL.createObjectURL`. */
export function installWorkerUrlShim(): () => void {
  const origFetch = globalThis.fetch;
  const origCreate = URL.createObjectURL;
  const fromFile = new WeakMap<Blob, string>();
  globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    if (url.startsWith("file:") && url.endsWith(".mjs")) {
      // ORT only turns the body into an object URL; the placeholder stands for the file itself.
      const blob = new Blob([], { type: "text/javascript" });
      fromFile.set(blob, url);
      return Promise.resolve({ ok: true, status: 200, blob: () => Promise.resolve(blob) } as Response);
    }
    return origFetch(input, init);
  }) as typeof fetch;
  URL.createObjectURL = (obj: Blob | MediaSource) => fromFile.get(obj as Blob) ?? origCreate(obj as Blob);
  return () => {
    globalThis.fetch = origFetch;
    URL.createObjectURL = origCreate;
  };
}
