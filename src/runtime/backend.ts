/**
 * Backend choice: `auto | webgpu | wasm`, always with the reason.
 *
 * `auto` takes WebGPU only on a hardware adapter: a software fallback (`isFallbackAdapter`, e.g.
 * Mesa's lavapipe, ~10x slower than wasm on the same CPU) or no adapter at all means wasm. `webgpu`
 * forces WebGPU even on a fallback adapter (that is how CI tests the WebGPU path); it fails when no
 * adapter exists. `wasm` always works.
 *
 * Training may also ask for `ort-training`: ONNX Runtime's training API (src/ort_training/, wasm
 * only), an engine of its own that the trainer runs instead of the fused step. It is listed here
 * so that every table checks `--backend` against one list, but `auto` never picks it and
 * {@link resolveBackend} (the inference engines' choice) refuses it.
 *
 * @module
 */

import type { BackendName } from "./ort.ts";

/** What the caller of an inference engine (scoring, generation, the fused training step) asks for. */
export type BackendPreference = "auto" | BackendName;

/** What a training run may ask for: a {@link BackendPreference}, or the `ort-training` engine. */
export type TrainBackendPreference = BackendPreference | "ort-training";

/**
 * Every preference, typed over {@link TrainBackendPreference} so that a backend name added to the
 * runtime without an entry here does not compile; `runtime` is false for what only the trainer runs.
 * Option tables and CLI flags check `--backend` against it.
 */
const PREFERENCES: { readonly [P in TrainBackendPreference]: { runtime: boolean } } = {
  auto: { runtime: true },
  webgpu: { runtime: true },
  wasm: { runtime: true },
  "ort-training": { runtime: false },
};

/** Every backend name a caller may ask for, `auto` first (`train --backend`). */
export const BACKEND_PREFERENCES: readonly TrainBackendPreference[] = Object.keys(
  PREFERENCES,
) as TrainBackendPreference[];

/** The backend names an inference engine resolves (`score`, `generate`, `doctor`), `auto` first. */
export const RUNTIME_BACKEND_PREFERENCES: readonly BackendPreference[] = BACKEND_PREFERENCES.filter(
  (p): p is BackendPreference => PREFERENCES[p].runtime,
);

/** True when `x` names a backend preference that {@link resolveBackend} resolves. */
export function isBackendPreference(x: unknown): x is BackendPreference {
  return typeof x === "string" && Object.hasOwn(PREFERENCES, x) && PREFERENCES[x as TrainBackendPreference].runtime;
}

/** A summary of a WebGPU adapter, as `doctor` prints it. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  features: string[];
  limits: Record<string, number>;
}

/** What we found out about WebGPU on this machine. */
export interface WebGpuProbe {
  available: boolean;
  adapter: AdapterSummary | null;
  /** Why WebGPU is unavailable, or a one-line description of the adapter. */
  reason: string;
}

/** The backend taken and why. */
export interface BackendChoice {
  backend: BackendName;
  reason: string;
  webgpu: WebGpuProbe;
}

const KEY_LIMITS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
];

let probeCache: Promise<WebGpuProbe> | undefined;

/** Asks the platform for a WebGPU adapter (once per process) and summarizes it. */
export function probeWebGpu(): Promise<WebGpuProbe> {
  probeCache ??= (async (): Promise<WebGpuProbe> => {
    const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
    if (!gpu) {
      return { available: false, adapter: null, reason: "navigator.gpu is not defined in this runtime" };
    }
    let adapter: GPUAdapter | null;
    try {
      adapter = await gpu.requestAdapter();
    } catch (e) {
      return { available: false, adapter: null, reason: `requestAdapter() failed: ${(e as Error).message}` };
    }
    if (!adapter) {
      return {
        available: false,
        adapter: null,
        reason:
          "requestAdapter() returned null: no GPU driver (on Linux without a GPU, install Mesa's lavapipe: apt-get install mesa-vulkan-drivers libvulkan1)",
      };
    }
    const info = adapter.info ?? ({} as GPUAdapterInfo);
    const fallback = Boolean(
      (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
        (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter,
    );
    const limits: Record<string, number> = {};
    for (const k of KEY_LIMITS) {
      const v = (adapter.limits as unknown as Record<string, number>)[k];
      if (typeof v === "number") limits[k] = v;
    }
    const summary: AdapterSummary = {
      vendor: info.vendor ?? "",
      architecture: info.architecture ?? "",
      device: info.device ?? "",
      description: info.description ?? "",
      isFallbackAdapter: fallback,
      features: [...adapter.features].map(String).sort(),
      limits,
    };
    const desc = summary.description || summary.vendor || "unnamed adapter";
    return {
      available: true,
      adapter: summary,
      reason: fallback ? `software fallback adapter: ${desc}` : `hardware adapter: ${desc}`,
    };
  })();
  return probeCache;
}

/** Resolves a preference to a backend, with the reason. Throws when `webgpu` is forced but absent. */
export async function resolveBackend(preference: BackendPreference = "auto"): Promise<BackendChoice> {
  if (!isBackendPreference(preference)) {
    if ((preference as string) === "ort-training") {
      throw new RangeError(
        `ort-training is a training engine (train --backend ort-training); here use ${
          RUNTIME_BACKEND_PREFERENCES.join(", ")
        }`,
      );
    }
    throw new RangeError(
      `Unknown backend ${JSON.stringify(preference)}: use ${RUNTIME_BACKEND_PREFERENCES.join(", ")}`,
    );
  }
  const webgpu = await probeWebGpu();
  if (preference === "wasm") return { backend: "wasm", reason: "wasm requested", webgpu };
  if (preference === "webgpu") {
    if (!webgpu.available) {
      throw new Error(`WebGPU was requested but is not available: ${webgpu.reason}. Use --backend wasm or auto`);
    }
    return { backend: "webgpu", reason: `webgpu requested (${webgpu.reason})`, webgpu };
  }
  if (!webgpu.available) return { backend: "wasm", reason: `no WebGPU: ${webgpu.reason}`, webgpu };
  if (webgpu.adapter?.isFallbackAdapter) {
    return {
      backend: "wasm",
      reason: `WebGPU passed over: ${webgpu.reason} is slower than wasm on the same CPU`,
      webgpu,
    };
  }
  return { backend: "webgpu", reason: webgpu.reason, webgpu };
}
