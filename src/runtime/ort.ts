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
import { installDenoThreadShim } from "./deno_threads.ts";

/** The ORT module type (both builds share the onnxruntime-common API). */
export type OrtModule = typeof Ort;

/** A backend our engine runs graphs on. */
export type BackendName = "webgpu" | "wasm";

/** Global runtime settings; set them before the first session is created. */
export interface RuntimeConfig {
  /** wasm threads (default 1: see {@link defaultThreads}). */
  wasmThreads?: number;
  /** ORT log level for session creation (0 verbose ... 4 fatal; default 3). */
  logLevel?: 0 | 1 | 2 | 3 | 4;
}

const config: Required<RuntimeConfig> = { wasmThreads: defaultThreads(), logLevel: 3 };
const loaded = new Map<BackendName, Promise<OrtModule>>();

/**
 * One thread by default. Multi-threaded wasm starts under Deno and Bun (see deno_threads.ts), but
 * on this project's 2-core machines it was slower than one thread for training-step graphs, and a
 * fused step with 2 threads hung inside ORT on batches of 16 x 48 tokens. Ask for more with
 * `configureRuntime({ wasmThreads })` and measure (`deno task bench` runs 1 and 2).
 */
function defaultThreads(): number {
  return 1;
}

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
 * Creates a session while the thread shim is active (ORT starts its workers on the first one).
 * Deno and Bun both refuse ORT's `blob:` worker URLs; browsers and Node need no shim.
 */
export async function withThreadShim<T>(fn: () => Promise<T>): Promise<T> {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  const needsShim = g.Deno !== undefined || g.Bun !== undefined;
  if (!needsShim || config.wasmThreads <= 1) return await fn();
  const restore = installDenoThreadShim();
  try {
    return await fn();
  } finally {
    restore();
  }
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
