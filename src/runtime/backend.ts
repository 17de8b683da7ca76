/**
 * Backend choice: `auto`, or one of the backends in `backends.ts`, always with the reasons.
 *
 * `auto` walks {@link AUTO_ORDER}: ORT Web's `webgpu` on a hardware adapter (a software fallback
 * such as Mesa's lavapipe, `isFallbackAdapter`, is ~10x slower than wasm on the same CPU), then
 * `native-webgpu` (onnxruntime-node's Dawn; probed where the runtime has no navigator.gpu, since a
 * runtime that has one and found no hardware adapter leaves Dawn nothing either), then
 * `native-cpu` where onnxruntime-node loads (Deno needs FFI permission; never in browsers), then
 * `wasm`, which always works. Every backend considered is reported with why it was taken or passed
 * over (`doctor` prints them). A backend asked for by name that cannot run fails with
 * {@link BackendUnavailableError}, saying what to install or allow.
 *
 * Training may also ask for `ort-training`: ONNX Runtime's training API (src/ort_training/, wasm
 * only), an engine of its own that the trainer runs instead of the fused step. It is listed here
 * so that every table checks `--backend` against one list, but `auto` never picks it and
 * {@link resolveBackend} (the inference engines' choice) refuses it.
 *
 * @module
 */

import { AUTO_ORDER, BACKENDS } from "./backends.ts";
import type { BackendName } from "./ort.ts";
import { type NativeProbe, type NativeWebGpuProbe, probeNative, probeNativeWebGpu } from "./probe_native.ts";

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
  "native-cpu": { runtime: true },
  "native-webgpu": { runtime: true },
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

/** One backend as `auto` (or a request by name) saw it. */
export interface BackendTrial {
  backend: BackendName;
  /** `taken`; `passed-over` (probed, or ruled out, and not used); `not-tried` (an earlier one was taken). */
  status: "taken" | "passed-over" | "not-tried";
  /** Whether it can run here (null when it was not probed). */
  available: boolean | null;
  reason: string;
}

/** The backend taken and why. */
export interface BackendChoice {
  backend: BackendName;
  reason: string;
  webgpu: WebGpuProbe;
  /** Every backend considered, in `auto`'s order. */
  tried: BackendTrial[];
  /** onnxruntime-node, when it was probed. */
  native?: NativeProbe;
  /** onnxruntime-node's WebGPU EP, when it was probed. */
  nativeWebgpu?: NativeWebGpuProbe;
}

/** A backend asked for by name cannot run here; the message says what to install or allow. */
export class BackendUnavailableError extends Error {
  readonly backend: BackendName;
  constructor(backend: BackendName, message: string) {
    super(message);
    this.name = "BackendUnavailableError";
    this.backend = backend;
  }
}

/** Options of {@link resolveBackend}. */
export interface ResolveOptions {
  /** Probe every backend even after one is taken (what `doctor` shows). Default false. */
  survey?: boolean;
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

/**
 * Resolves a preference to a backend, with the reason and every backend considered. Throws
 * {@link BackendUnavailableError} when a backend asked for by name cannot run here.
 */
export async function resolveBackend(
  preference: BackendPreference = "auto",
  options: ResolveOptions = {},
): Promise<BackendChoice> {
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
  const choice: BackendChoice = { backend: "wasm", reason: "", webgpu, tried: [] };
  if (preference !== "auto") {
    const why = await availability(preference, choice);
    if (!why.available) {
      // A failed load already says what to install or allow; otherwise add the backend's remedy.
      const loadFailed = choice.native !== undefined && !choice.native.available;
      throw new BackendUnavailableError(preference, unavailableMessage(preference, why.reason, !loadFailed));
    }
    choice.backend = preference;
    choice.reason = preference === "wasm" ? "wasm requested" : `${preference} requested (${why.reason})`;
    choice.tried.push({ backend: preference, status: "taken", available: true, reason: choice.reason });
    return choice;
  }
  let taken: BackendName | null = null;
  for (const b of AUTO_ORDER) {
    if (taken && !options.survey) {
      choice.tried.push({ backend: b, status: "not-tried", available: null, reason: `${taken} was taken first` });
      continue;
    }
    const gate = autoGate(b, choice, options.survey ?? false);
    if (gate) {
      choice.tried.push({ backend: b, status: "passed-over", available: null, reason: gate });
      continue;
    }
    const why = await availability(b, choice);
    const pass = why.available ? autoPassOver(b, choice) : why.reason;
    if (why.available && !pass && !taken) {
      taken = b;
      choice.backend = b;
      choice.reason = why.reason;
      choice.tried.push({ backend: b, status: "taken", available: true, reason: why.reason });
    } else {
      const reason = pass ?? `${taken} was taken first (${why.reason})`;
      choice.tried.push({ backend: b, status: "passed-over", available: why.available, reason });
    }
  }
  // The old one-line reason of a wasm choice named WebGPU's problem; keep that (the CLIs print it).
  if (choice.backend === "wasm") {
    const w = choice.tried.find((t) => t.backend === "webgpu")!;
    const others = choice.tried.filter((t) => t.backend.startsWith("native-") && t.status === "passed-over");
    choice.reason = [w.reason, ...others.map((t) => `${t.backend}: ${t.reason}`)].join("; ");
  }
  return choice;
}

/** Can backend `b` run here? Probes lazily and records the probes on `choice`. */
async function availability(b: BackendName, choice: BackendChoice): Promise<{ available: boolean; reason: string }> {
  switch (b) {
    case "wasm":
      return { available: true, reason: "always available" };
    case "webgpu": {
      const w = choice.webgpu;
      return { available: w.available, reason: w.reason };
    }
    case "native-cpu": {
      choice.native = await probeNative();
      return { available: choice.native.available, reason: choice.native.reason };
    }
    case "native-webgpu": {
      choice.native = await probeNative();
      choice.nativeWebgpu = await probeNativeWebGpu();
      const p = choice.nativeWebgpu;
      return {
        available: p.available,
        reason: p.available ? `${p.reason}; device-resident state: ${p.deviceOutputs ? "yes" : "no"}` : p.reason,
      };
    }
  }
}

/** Why `auto` does not even probe `b` (null: probe it). */
function autoGate(b: BackendName, choice: BackendChoice, survey: boolean): string | null {
  if (b !== "native-webgpu" || survey) return null;
  const w = choice.webgpu;
  // A runtime with navigator.gpu (Deno, browsers) that found no hardware adapter leaves Dawn none either
  // (and on Mesa's lavapipe Dawn refuses the adapter, printing warnings): do not pay for the probe.
  if ((globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu !== undefined && !isHardware(w)) {
    return `not probed: this runtime's WebGPU found no hardware adapter (${w.reason}); --backend native-webgpu tries it`;
  }
  return null;
}

/** Why `auto` passes over an available backend (null: take it). */
function autoPassOver(b: BackendName, choice: BackendChoice): string | null {
  if (b === "webgpu" && !isHardware(choice.webgpu)) {
    return `${choice.webgpu.reason} is slower than the CPU backends on the same CPU`;
  }
  return null;
}

function isHardware(w: WebGpuProbe): boolean {
  return w.available && w.adapter !== null && !w.adapter.isFallbackAdapter;
}

function unavailableMessage(b: BackendName, reason: string, withRemedy: boolean): string {
  if (b === "webgpu") return `WebGPU was requested but is not available: ${reason}. Use --backend wasm or auto`;
  const remedy = withRemedy ? ` ${b} ${BACKENDS[b].remedy}.` : "";
  return `${b} was requested but is not available: ${reason}.${remedy} Or use --backend auto or wasm`;
}
