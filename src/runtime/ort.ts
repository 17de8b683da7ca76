/**
 * Loads ONNX Runtime Web for a backend. Nothing is loaded at import time: the first call picks the
 * build, sets its wasm thread count and initializes it once.
 *
 * - `webgpu`: `onnxruntime-web/webgpu` (the native WebGPU EP plus wasm for the ops it leaves to CPU).
 *   The bare specifier would resolve to ORT's Node build under Deno, which has no WebGPU.
 * - `wasm`: `onnxruntime-web/wasm`, the plain wasm build. It also carries ORT's float64 kernels,
 *   which the WebGPU bundle lacks (our float64 gradient checks need them).
 *
 * @module
 */

import type * as Ort from "onnxruntime-web";
import { loadNativeOrt } from "./ort_native.ts";
import { defaultWasmThreads, withWasmThreadHooks } from "./wasm_threads.ts";

/** The ORT module type (both builds share the onnxruntime-common API). */
export type OrtModule = typeof Ort;

/**
 * A backend our engine runs graphs on: ORT Web's `webgpu` and `wasm`, or onnxruntime-node's
 * `native-cpu` (MLAS) and `native-webgpu` (Dawn). What each one can do is in `backends.ts`.
 */
export type BackendName = "webgpu" | "wasm" | "native-cpu" | "native-webgpu";

/** The backends that run on onnxruntime-node. */
export type NativeBackendName = Extract<BackendName, `native-${string}`>;

/** True for `native-cpu` and `native-webgpu`. */
export function isNative(backend: BackendName): backend is NativeBackendName {
  return backend.startsWith("native-");
}

/** Global runtime settings; set them before the first session is created. */
export interface RuntimeConfig {
  /** wasm threads (default: the cores, at most 4; see wasm_threads.ts). */
  wasmThreads?: number;
  /** ORT log level for session creation (0 verbose ... 4 fatal; default 3). */
  logLevel?: 0 | 1 | 2 | 3 | 4;
}

const config: Required<RuntimeConfig> = { wasmThreads: defaultWasmThreads(), logLevel: 3 };
const loaded = new Map<BackendName, Promise<OrtModule>>();

/** Changes runtime settings. Thread count changes are refused once ORT is loaded. */
export function configureRuntime(c: RuntimeConfig): void {
  if (c.wasmThreads !== undefined) {
    if (!Number.isInteger(c.wasmThreads) || c.wasmThreads < 1) {
      throw new RangeError(`wasmThreads must be a positive integer, got ${c.wasmThreads}`);
    }
    if (loaded.size > 0 && c.wasmThreads !== config.wasmThreads) {
      throw new Error(
        `Cannot change wasmThreads to ${c.wasmThreads}: ONNX Runtime is already loaded with ${config.wasmThreads}. Call configureRuntime() before creating any session`,
      );
    }
    config.wasmThreads = c.wasmThreads;
  }
  if (c.logLevel !== undefined) config.logLevel = c.logLevel;
}

/** The settings in force. */
export function runtimeConfig(): Readonly<Required<RuntimeConfig>> {
  return config;
}

/** Loads (once) the ORT build for a backend. */
export function loadOrt(backend: BackendName): Promise<OrtModule> {
  // onnxruntime-node: its own cache, and no wasm threads (so configureRuntime stays free to set them).
  if (isNative(backend)) return loadNativeOrt(config.logLevel);
  let p = loaded.get(backend);
  if (!p) {
    p = (async () => {
      const mod = (backend === "webgpu"
        ? await import("onnxruntime-web/webgpu")
        : await import("onnxruntime-web/wasm")) as unknown as OrtModule;
      mod.env.wasm.numThreads = config.wasmThreads;
      mod.env.logLevel = (["verbose", "info", "warning", "error", "fatal"] as const)[config.logLevel];
      return mod;
    })();
    loaded.set(backend, p);
  }
  return p;
}

/**
 * Creates a session with what multi-threaded wasm needs in this runtime (ORT loads its wasm and
 * starts its worker threads on the first session; see wasm_threads.ts).
 */
export function withThreadShim<T>(fn: () => Promise<T>): Promise<T> {
  return withWasmThreadHooks(config.wasmThreads, fn);
}

/**
 * The ORT Web version this package was written and tested against. What actually runs is what
 * {@link ortVersions} reports (the installed package may differ); `doctor` prints that.
 */
export const ORT_VERSION = "1.30.0";

/** The versions the loaded ORT build reports about itself (`env.versions`: `common`, `web`, ...). */
export async function ortVersions(backend: BackendName = "wasm"): Promise<Readonly<Record<string, string>>> {
  const ort = await loadOrt(backend);
  return { ...(ort.env.versions as Record<string, string>) };
}
