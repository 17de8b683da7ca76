/**
 * Multi-threaded wasm: the default thread count, and what ORT's wasm start-up needs in each runtime
 * for its worker threads to start and never hang.
 *
 * Why a 2-thread step hung under Deno (probed: logging ORT's Emscripten glue, and the process's OS
 * threads while hung): when the main thread grows the shared wasm heap (`memory.grow`, e.g. a first
 * `run` allocating its activations) and then hands a pool worker work in the new pages, the worker
 * traps with "memory access out of bounds". Deno does not enable V8's wasm trap handler, so V8
 * compiles explicit bounds checks against a per-thread copy of the heap size, which another thread
 * only refreshes when its wasm code calls out to JS or returns (denoland/deno#35658); an ORT pool
 * worker loops inside wasm. The worker dies with the trap (its report is a message the main thread
 * never reads) and the main thread waits for its share of the work forever. Node and browsers use
 * guard pages instead (the size is checked by the hardware), Bun's JavaScriptCore too.
 *
 * The fix: under Deno the heap never grows once threads exist. ORT's heap is created at its
 * maximum (4 GiB less one 64 KiB page, Emscripten's limit) instead of 16 MiB. That is address
 * space, not memory: pages are only backed when first written, so the resident size is unchanged
 * (measured, see README), and wasm32 could never use more anyway.
 *
 * @module
 */

import { installWorkerUrlShim } from "./deno_threads.ts";

/**
 * The most threads the default takes. More threads than cores only slow ORT down (its pool spins
 * while waiting), and every thread is a Worker with its own JS engine instance (~20 MB resident
 * each). Measured on 2 cores only (README, Performance); 4 is also ORT's own cap.
 */
export const WASM_THREADS_CAP = 4;

/** Emscripten's largest wasm32 heap in 64 KiB pages: 4 GiB would overflow its 32-bit size. */
export const MAX_HEAP_PAGES = 65535;

/** ORT's wasm heap, as its Emscripten glue creates it: shared, 4 GiB maximum. */
const ORT_HEAP_MAX_PAGES = 65536;

/** Logical cores the runtime reports (at least 1). */
export function availableCores(): number {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  if (nav?.hardwareConcurrency && nav.hardwareConcurrency > 0) return nav.hardwareConcurrency;
  // Node 20 has no navigator; getBuiltinModule (Node >= 20.16) keeps this synchronous and bundler-safe.
  const proc = (globalThis as { process?: { getBuiltinModule?: (m: string) => unknown } }).process;
  const os = proc?.getBuiltinModule?.("node:os") as { availableParallelism?: () => number } | undefined;
  return Math.max(1, os?.availableParallelism?.() ?? 1);
}

/**
 * Whether this context can share wasm memory with workers: a browser page that is not
 * cross-origin isolated (COOP/COEP headers) has no SharedArrayBuffer, and ORT would fall back to
 * 1 thread with a console warning. Deno, Bun and Node always can.
 */
export function canShareMemory(g: object = globalThis): boolean {
  const c = g as { SharedArrayBuffer?: unknown; crossOriginIsolated?: boolean };
  return typeof c.SharedArrayBuffer === "function" && c.crossOriginIsolated !== false;
}

/**
 * The default wasm thread count: the cores, at most {@link WASM_THREADS_CAP}; 1 where memory
 * cannot be shared with workers.
 */
export function defaultWasmThreads(cores: number = availableCores(), shared: boolean = canShareMemory()): number {
  if (!shared) return 1;
  return Math.max(1, Math.min(Math.floor(cores), WASM_THREADS_CAP));
}

/** What this runtime needs while ORT starts its wasm threads. */
export interface ThreadHooks {
  /** ORT's `blob:` worker URL fails (Deno, Bun, Node): hand back the file URL (deno_threads.ts). */
  fileWorkerUrl: boolean;
  /** Growing the shared heap is unsafe with threads running (Deno): create it at full size. */
  fullHeap: boolean;
}

/** The hooks the current runtime needs for `threads` wasm threads. */
export function threadHooksFor(threads: number, g: object = globalThis): ThreadHooks {
  const rt = g as { Deno?: unknown; Bun?: unknown; process?: { versions?: { node?: string } } };
  const multi = threads > 1;
  // Deno and Bun define process.versions.node too; browsers and their workers have no process.
  const serverSide = rt.Deno !== undefined || rt.Bun !== undefined || rt.process?.versions?.node !== undefined;
  return {
    fileWorkerUrl: multi && serverSide,
    fullHeap: multi && rt.Deno !== undefined,
  };
}

/**
 * Until restored, ORT's shared wasm heap (the first shared `WebAssembly.Memory` with a 4 GiB
 * maximum) is created at {@link MAX_HEAP_PAGES} instead of its initial size; the constructor is
 * put back as soon as that heap exists. Returns the restore function.
 */
export function installFullHeapHook(): () => void {
  const wasm = globalThis.WebAssembly;
  const Original = wasm.Memory;
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    wasm.Memory = Original;
  };
  const Hooked = function (this: unknown, descriptor: WebAssembly.MemoryDescriptor) {
    if (!new.target) throw new TypeError("WebAssembly.Memory must be called with new");
    if (descriptor?.shared && descriptor.maximum === ORT_HEAP_MAX_PAGES) {
      restore();
      return new Original({ ...descriptor, initial: Math.max(descriptor.initial, MAX_HEAP_PAGES) });
    }
    return new Original(descriptor);
  } as unknown as typeof WebAssembly.Memory;
  Object.defineProperty(Hooked, "prototype", { value: Original.prototype });
  wasm.Memory = Hooked;
  return restore;
}

let active = 0;
let restoreActive: (() => void)[] = [];

/**
 * Runs `fn` (a session creation: ORT loads its wasm and starts its threads on the first one) with
 * the hooks this runtime needs for `threads` wasm threads. Overlapping calls share one
 * installation, removed when the last one ends.
 */
export async function withWasmThreadHooks<T>(threads: number, fn: () => Promise<T>): Promise<T> {
  const hooks = threadHooksFor(threads);
  if (!hooks.fileWorkerUrl && !hooks.fullHeap) return await fn();
  if (active++ === 0) {
    if (hooks.fileWorkerUrl) restoreActive.push(installWorkerUrlShim());
    if (hooks.fullHeap) restoreActive.push(installFullHeapHook());
  }
  try {
    return await fn();
  } finally {
    if (--active === 0) {
      for (const r of restoreActive.reverse()) r();
      restoreActive = [];
    }
  }
}
