/**
 * Probes of the native backends: does onnxruntime-node load, does its CPU EP run a graph, does its
 * WebGPU EP find an adapter, and do gpu-buffer outputs survive a round trip (output → input of the
 * next run → copied back to the CPU). Each runs once per process; `doctor` and `auto` print the
 * answers, and the engine keeps parameters on the GPU only where the round trip worked.
 *
 * @module
 */

import type * as Ort from "onnxruntime-web";
import { Graph } from "../onnx/graph.ts";
import * as op from "../onnx/ops.ts";
import { serializeModel } from "../onnx/serialize.ts";
import { runtimeConfig } from "./ort.ts";
import { loadNativeOrt, NATIVE_VERSION, type NativeOrtModule, NativeUnavailableError } from "./ort_native.ts";

/** What we found out about onnxruntime-node. */
export interface NativeProbe {
  available: boolean;
  /** Why not, or which execution providers the package has. */
  reason: string;
  /** onnxruntime-node's version, when it loaded. */
  version: string | null;
  /** Its compiled-in EPs (`bundled`: the library is inside the package). */
  providers: { name: string; bundled: boolean }[];
  /** NativeUnavailableError's kind, when it did not load. */
  failure: NativeUnavailableError["kind"] | null;
}

/** What we found out about onnxruntime-node's WebGPU EP. */
export interface NativeWebGpuProbe {
  available: boolean;
  /** Why not, or what ran. */
  reason: string;
  /** Whether gpu-buffer outputs can be fed back and copied to the CPU (IO binding). */
  deviceOutputs: boolean;
  /** Why device outputs are (not) used. */
  deviceOutputsReason: string;
}

let nativeCache: Promise<NativeProbe> | undefined;
let webgpuCache: Promise<NativeWebGpuProbe> | undefined;

/** Loads onnxruntime-node (once) and runs a one-node graph on its CPU EP. */
export function probeNative(): Promise<NativeProbe> {
  nativeCache ??= (async (): Promise<NativeProbe> => {
    let ort: NativeOrtModule;
    try {
      ort = await loadNativeOrt(runtimeConfig().logLevel);
    } catch (e) {
      const kind = e instanceof NativeUnavailableError ? e.kind : "failed";
      return { available: false, reason: (e as Error).message, version: null, providers: [], failure: kind };
    }
    const version = (ort.env.versions as Record<string, string | undefined>).node ?? null;
    const providers = ort.listSupportedBackends();
    try {
      const y = await runDouble(ort, ["cpu"]);
      if (y[1] !== 4) throw new Error(`a test graph returned ${y[1]} instead of 4`);
    } catch (e) {
      return {
        available: false,
        reason: `onnxruntime-node ${version} loaded but its CPU EP failed: ${(e as Error).message}`,
        version,
        providers,
        failure: "failed",
      };
    }
    const eps = providers.map((p) => p.name + (p.bundled ? "" : " (not bundled)")).join(", ");
    const note = version === NATIVE_VERSION ? "" : ` (exo-tune is tested with ${NATIVE_VERSION})`;
    return {
      available: true,
      reason: `onnxruntime-node ${version}${note}, EPs: ${eps}`,
      version,
      providers,
      failure: null,
    };
  })();
  return nativeCache;
}

/**
 * Asks onnxruntime-node's WebGPU EP for an adapter by creating and running a session, then checks
 * the gpu-buffer round trip. Dawn prints its own adapter warnings to stderr while it searches.
 */
export function probeNativeWebGpu(): Promise<NativeWebGpuProbe> {
  webgpuCache ??= (async (): Promise<NativeWebGpuProbe> => {
    const none = (reason: string): NativeWebGpuProbe => ({
      available: false,
      reason,
      deviceOutputs: false,
      deviceOutputsReason: "no adapter",
    });
    const native = await probeNative();
    if (!native.available) return none(native.reason);
    const ort = await loadNativeOrt(runtimeConfig().logLevel);
    if (!native.providers.some((p) => p.name === "webgpu")) {
      return none(`this onnxruntime-node build has no WebGPU EP (it has ${native.providers.map((p) => p.name)})`);
    }
    try {
      const y = await runDouble(ort, ["webgpu"]);
      if (y[1] !== 4) throw new Error(`a test graph returned ${y[1]} instead of 4`);
    } catch (e) {
      return none(`WebGPU EP failed: ${oneLine((e as Error).message)}`);
    }
    try {
      await roundTrip(ort);
      return {
        available: true,
        reason: "WebGPU EP found an adapter (Dawn) and ran a test graph",
        deviceOutputs: true,
        deviceOutputsReason: "gpu-buffer outputs fed back as inputs and copied to the CPU by a copy session",
      };
    } catch (e) {
      return {
        available: true,
        reason: "WebGPU EP found an adapter (Dawn) and ran a test graph",
        deviceOutputs: false,
        deviceOutputsReason: `gpu-buffer round trip failed (${
          oneLine((e as Error).message)
        }): state is copied to the CPU after every run`,
      };
    }
  })();
  return webgpuCache;
}

/** y = x + x on [1, 2] with the given EPs; returns y. */
async function runDouble(ort: NativeOrtModule, eps: string[]): Promise<Float32Array> {
  const g = new Graph("probe");
  const x = g.input("x", "float32", [2]);
  g.output(op.add(x, x), "y");
  const s = await ort.InferenceSession.create(serializeModel(g).model, {
    executionProviders: eps,
    intraOpNumThreads: 1,
    logSeverityLevel: 3,
  });
  try {
    const out = await s.run({ x: new ort.Tensor("float32", new Float32Array([1, 2]), [2]) });
    return Float32Array.from(out.y.data as Float32Array);
  } finally {
    await s.release();
  }
}

/** A gpu-buffer output fed back as an input twice, then copied to the CPU: [1, 2] → [4, 8]. */
async function roundTrip(ort: NativeOrtModule): Promise<void> {
  const g = new Graph("probe_io");
  const x = g.input("x", "float32", ["n"]);
  g.output(op.add(x, x), "y");
  const s = await ort.InferenceSession.create(serializeModel(g).model, {
    executionProviders: ["webgpu"],
    preferredOutputLocation: { y: "gpu-buffer" },
    logSeverityLevel: 3,
  });
  const copy = await createCopySession(ort);
  const live: { dispose(): void; location: string }[] = [];
  try {
    const a = (await s.run({ x: new ort.Tensor("float32", new Float32Array([1, 2]), [2]) })).y;
    live.push(a);
    if (a.location !== "gpu-buffer") throw new Error(`output location is ${a.location}, not gpu-buffer`);
    const b = (await s.run({ x: a })).y;
    live.push(b);
    const back = Array.from((await copy.run({ x: b })).y.data as Float32Array);
    if (back[0] !== 4 || back[1] !== 8) throw new Error(`round trip gave [${back}] instead of [4, 8]`);
  } finally {
    for (const t of live) if (t.location === "gpu-buffer") t.dispose();
    await copy.release();
    await s.release();
  }
}

/**
 * A session that copies a float32 tensor (any shape, on the GPU) to the CPU: one Identity node,
 * optimizations off so ORT keeps it, the output on the CPU (the default location).
 */
export async function createCopySession(ort: NativeOrtModule, rank = 1): Promise<Ort.InferenceSession> {
  const g = new Graph("copy_to_cpu");
  const x = g.input("x", "float32", Array.from({ length: rank }, (_, i) => `d${i}`));
  g.output(x, "y"); // an Identity node renames it
  return await ort.InferenceSession.create(serializeModel(g).model, {
    executionProviders: ["webgpu"],
    graphOptimizationLevel: "disabled",
    logSeverityLevel: 3,
  });
}

/** ORT's message without its source location ("/onnxruntime_src/...cc:136 ... was false. "). */
function oneLine(s: string): string {
  const flat = s.split("\n").map((l) => l.trim()).filter(Boolean).join(" ");
  return flat.replace(/^\/onnxruntime_src\/\S+ .*? was false\. /, "").slice(0, 400);
}
