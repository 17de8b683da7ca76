/**
 * What each backend is: which ORT build runs it, which execution providers its sessions ask for,
 * whether outputs can stay on the device between runs and how they come back, how threads are set,
 * and what to do when it is missing. One typed table, so a new backend is one entry and a missing
 * field is a compile error; the code that runs graphs (`session.ts`) and the code that chooses
 * (`backend.ts`) read it instead of comparing names.
 *
 * @module
 */

import type { BackendName } from "./ort.ts";
import { NATIVE_INSTALL_HINT } from "./ort_native.ts";

/** One backend's description. */
export interface BackendSpec {
  /** The npm package whose ORT build runs it. */
  readonly package: "onnxruntime-web" | "onnxruntime-node";
  /** Where the arithmetic runs. */
  readonly device: "gpu" | "cpu";
  /** The `executionProviders` of every session (ORT's EP names). */
  readonly executionProviders: readonly string[];
  /**
   * Whether outputs can stay on the device (`preferredOutputLocation: "gpu-buffer"`) and be fed
   * back as inputs, so parameters, optimizer moments and KV caches never leave the GPU.
   */
  readonly deviceOutputs: boolean;
  /**
   * How a device tensor comes back to the CPU: ORT Web's `getData()`; or, on onnxruntime-node,
   * whose gpu-buffer tensors have no `download` ("not implemented" in its binding), through a
   * one-node copy session whose output lives on the CPU.
   */
  readonly readback: "getData" | "copy-session" | null;
  /**
   * Threads: `process` (ORT Web's wasm threads, fixed once loaded: `configureRuntime`),
   * `session` (onnxruntime-node's intra-op threads, per session: `Engine.create(b, { threads })`),
   * or none (the GPU does the work).
   */
  readonly threads: "process" | "session" | null;
  /** One line for `doctor` and the README. */
  readonly summary: string;
  /** What to do when it is unavailable. */
  readonly remedy: string;
}

/** Every backend. */
export const BACKENDS: { readonly [B in BackendName]: BackendSpec } = {
  webgpu: {
    package: "onnxruntime-web",
    device: "gpu",
    executionProviders: ["webgpu"],
    deviceOutputs: true,
    readback: "getData",
    threads: null,
    summary: "ORT Web's WebGPU EP on the runtime's navigator.gpu (Deno, browsers)",
    remedy:
      "needs navigator.gpu with an adapter (on Linux without a GPU: apt-get install mesa-vulkan-drivers libvulkan1)",
  },
  wasm: {
    package: "onnxruntime-web",
    device: "cpu",
    executionProviders: ["wasm"],
    deviceOutputs: false,
    readback: null,
    threads: "process",
    summary: "ORT Web's WebAssembly EP (everywhere; the cores, at most 4, by default)",
    remedy: "is always available",
  },
  "native-cpu": {
    package: "onnxruntime-node",
    device: "cpu",
    executionProviders: ["cpu"],
    deviceOutputs: false,
    readback: null,
    threads: "session",
    summary: "onnxruntime-node's CPU EP (MLAS kernels; all cores by default)",
    remedy: `needs onnxruntime-node (${NATIVE_INSTALL_HINT}) and, in Deno, FFI permission (-A or --allow-ffi)`,
  },
  "native-webgpu": {
    package: "onnxruntime-node",
    device: "gpu",
    executionProviders: ["webgpu"],
    deviceOutputs: true,
    readback: "copy-session",
    threads: null,
    summary: "onnxruntime-node's WebGPU EP (Dawn on Vulkan, Metal or D3D12; hardware GPUs)",
    remedy:
      "needs a hardware GPU with Vulkan (Linux), Metal (macOS) or D3D12 (Windows) drivers: Dawn refuses software Vulkan such as Mesa's lavapipe",
  },
};

/** Every backend name, in the order `auto` considers them. */
export const AUTO_ORDER: readonly BackendName[] = ["webgpu", "native-webgpu", "native-cpu", "wasm"];

/** The names a caller may ask for. */
export const BACKEND_NAMES: readonly BackendName[] = Object.keys(BACKENDS) as BackendName[];

/** True when `s` names a backend. */
export function isBackendName(s: string): s is BackendName {
  return Object.hasOwn(BACKENDS, s);
}
