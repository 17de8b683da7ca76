import assert from "node:assert/strict";
import { installWorkerUrlShim } from "../../src/runtime/deno_threads.ts";
import {
  canShareMemory,
  defaultWasmThreads,
  installFullHeapHook,
  MAX_HEAP_PAGES,
  threadHooksFor,
  WASM_THREADS_CAP,
  withWasmThreadHooks,
} from "../../src/runtime/wasm_threads.ts";

Deno.test("default wasm threads: the cores, at most the cap, at least 1", () => {
  assert.equal(WASM_THREADS_CAP, 4);
  assert.deepEqual([1, 2, 3, 4, 8, 64].map((c) => defaultWasmThreads(c)), [1, 2, 3, 4, 4, 4]);
  assert.equal(defaultWasmThreads(0), 1);
  // A page that is not cross-origin isolated has no SharedArrayBuffer: ORT could only warn and use 1.
  assert.equal(defaultWasmThreads(8, false), 1);
  assert.equal(canShareMemory({ SharedArrayBuffer, crossOriginIsolated: false }), false);
  assert.equal(canShareMemory({ crossOriginIsolated: true }), false);
  assert.equal(canShareMemory({ SharedArrayBuffer, crossOriginIsolated: true }), true);
  assert.equal(canShareMemory({ SharedArrayBuffer }), true); // Deno, Bun, Node: no crossOriginIsolated at all
  // This runtime reports its cores; the default follows them.
  assert.equal(defaultWasmThreads(), Math.min(navigator.hardwareConcurrency, WASM_THREADS_CAP));
});

Deno.test("thread hooks: worker-URL shim off the web, full heap under Deno only, nothing for 1 thread", () => {
  const deno = { Deno: {}, process: { versions: { node: "22" } } };
  const bun = { Bun: {}, process: { versions: { node: "22" } } };
  const node = { process: { versions: { node: "20.20.2" } } };
  const page = { navigator: {} };
  assert.deepEqual(threadHooksFor(2, deno), { fileWorkerUrl: true, fullHeap: true });
  assert.deepEqual(threadHooksFor(2, bun), { fileWorkerUrl: true, fullHeap: false });
  assert.deepEqual(threadHooksFor(4, node), { fileWorkerUrl: true, fullHeap: false });
  assert.deepEqual(threadHooksFor(4, page), { fileWorkerUrl: false, fullHeap: false });
  for (const g of [deno, bun, node, page]) {
    assert.deepEqual(threadHooksFor(1, g), { fileWorkerUrl: false, fullHeap: false });
  }
});

Deno.test("full-heap hook: ORT's heap starts at the wasm32 maximum, other memories are untouched", () => {
  const Original = WebAssembly.Memory;
  const restore = installFullHeapHook();
  try {
    assert.notEqual(WebAssembly.Memory, Original);
    const other = new WebAssembly.Memory({ initial: 1, maximum: 10, shared: true });
    assert.equal(other.buffer.byteLength, 65536);
    // Emscripten's glue in ORT 1.30 creates exactly this heap.
    const heap = new WebAssembly.Memory({ initial: 256, maximum: 65536, shared: true });
    assert.ok(heap instanceof Original);
    assert.equal(heap.buffer.byteLength, MAX_HEAP_PAGES * 65536);
    // The descriptor's maximum (4 GiB) is kept.
    assert.throws(() => heap.grow(2), RangeError);
    // The constructor is put back as soon as the heap exists.
    assert.equal(WebAssembly.Memory, Original);
    assert.equal(new WebAssembly.Memory({ initial: 256, maximum: 65536, shared: true }).buffer.byteLength, 256 * 65536);
  } finally {
    restore();
  }
  assert.equal(WebAssembly.Memory, Original);
});

Deno.test("worker-URL shim: a local .mjs fetch comes back as its own file URL; everything else is fetched", async () => {
  const origFetch = globalThis.fetch, origCreate = URL.createObjectURL;
  const restore = installWorkerUrlShim();
  try {
    const url = "file:///opt/ort/ort-wasm-simd-threaded.mjs"; // need not exist: ORT only wants a URL
    const res = await fetch(url);
    assert.equal(res.ok, true);
    assert.equal(URL.createObjectURL(await res.blob()), url);
    const data = await fetch("data:text/plain,hello");
    assert.equal(await data.text(), "hello");
    const blobUrl = URL.createObjectURL(new Blob(["x"]));
    assert.match(blobUrl, /^blob:/);
    URL.revokeObjectURL(blobUrl);
  } finally {
    restore();
  }
  assert.equal(globalThis.fetch, origFetch);
  assert.equal(URL.createObjectURL, origCreate);
});

Deno.test("overlapping session creations share one hook installation", async () => {
  const origFetch = globalThis.fetch, Original = WebAssembly.Memory;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const first = withWasmThreadHooks(2, async () => {
    await gate;
    return globalThis.fetch !== origFetch;
  });
  // The second call ends first; the hooks must stay for the first one.
  const second = await withWasmThreadHooks(2, () => Promise.resolve(globalThis.fetch !== origFetch));
  assert.equal(second, true);
  assert.notEqual(globalThis.fetch, origFetch, "the hooks were removed while a creation was still running");
  release();
  assert.equal(await first, true);
  assert.equal(globalThis.fetch, origFetch);
  assert.equal(WebAssembly.Memory, Original);
  // One thread needs no hooks at all.
  assert.equal(await withWasmThreadHooks(1, () => Promise.resolve(globalThis.fetch === origFetch)), true);
});
