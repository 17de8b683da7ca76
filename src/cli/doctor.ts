/**
 * `doctor [--json] [--backend B]`: what this machine offers, every backend `auto` considers (each
 * one probed: ORT Web's WebGPU adapter, onnxruntime-node and its WebGPU EP, wasm) with why it was
 * taken or passed over, and what `auto` (or `--backend B`) picks.
 *
 * @module
 */

import process from "node:process";
import { backendOption } from "../options/common.ts";
import { flag } from "../options/table.ts";
import { type BackendPreference, type BackendTrial, resolveBackend } from "../runtime/backend.ts";
import { BACKENDS, type BackendSpec } from "../runtime/backends.ts";
import type { BackendName } from "../runtime/ort.ts";
import { defaultNativeThreads, NATIVE_VERSION } from "../runtime/ort_native.ts";
import type { NativeProbe, NativeWebGpuProbe } from "../runtime/probe_native.ts";
import { ortVersions, runtimeConfig } from "../runtime/ort.ts";
import { Engine } from "../runtime/session.ts";
import { Graph } from "../onnx/graph.ts";
import { add } from "../onnx/ops.ts";
import { serializeModel } from "../onnx/serialize.ts";
import { flagMessage, helpText, readFlags } from "./flags.ts";

/** The command's flags. */
const FLAGS = {
  json: flag({ help: "print the report as one JSON object" }),
  backend: backendOption("the backend to resolve (auto shows what auto picks)"),
  help: flag({ help: "show this help" }),
} as const;

/** The report `doctor --json` prints. */
export interface DoctorReport {
  backend: BackendName;
  reason: string;
  requested: BackendPreference;
  runtime: { name: "deno" | "bun" | "node" | "browser"; version: string };
  /** The version of the onnxruntime-web build that was loaded (its own `env.versions.web`). */
  ort: string;
  /** Everything the loaded build reports in `env.versions` (`common`, `web`). */
  ortVersions: Readonly<Record<string, string>>;
  wasm: { threads: number; ok: boolean; error?: string };
  webgpu: {
    available: boolean;
    adapter: unknown;
    reason: string;
  };
  /** onnxruntime-node (native-cpu, native-webgpu): whether it loads, its EPs, its WebGPU EP. */
  native: NativeProbe & {
    /** The version exo-tune is tested with. */
    expected: string;
    /** native-cpu's default intra-op threads (all cores). */
    threads: number;
    webgpu: NativeWebGpuProbe | null;
  };
  /** Every backend in auto's order, probed, with why auto took it or passed it over. */
  backends: (BackendTrial & Pick<BackendSpec, "package" | "device" | "deviceOutputs" | "summary">)[];
}

function runtimeInfo(): DoctorReport["runtime"] {
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  if (g.Deno) return { name: "deno", version: g.Deno.version.deno };
  if (g.Bun) return { name: "bun", version: g.Bun.version };
  if (typeof process !== "undefined" && process.versions?.node) return { name: "node", version: process.versions.node };
  return { name: "browser", version: "" };
}

/** Builds the report (also used by tests). */
export async function doctor(requested: BackendPreference = "auto"): Promise<DoctorReport> {
  // Probe everything (auto's survey), then resolve the request (which throws if it cannot run).
  const survey = await resolveBackend("auto", { survey: true });
  const choice = requested === "auto" ? survey : await resolveBackend(requested);
  const wasm: DoctorReport["wasm"] = { threads: runtimeConfig().wasmThreads, ok: true };
  const versions = await ortVersions("wasm");
  try {
    // Run a one-node graph: loading the module is not enough to know that wasm (and its threads) start.
    const g = new Graph("doctor");
    const x = g.input("x", "float32", [2]);
    g.output(add(x, x), "y");
    const engine = await Engine.create("wasm");
    const session = await engine.createSession(serializeModel(g));
    const out = await session.run({ x: engine.tensor(new Float32Array([1, 2]), [2]) });
    await session.release();
    if ((out.y.data as Float32Array)[1] !== 4) throw new Error("wrong result from a test graph");
  } catch (e) {
    wasm.ok = false;
    wasm.error = (e as Error).message;
  }
  return {
    backend: choice.backend,
    reason: choice.reason,
    requested,
    runtime: runtimeInfo(),
    ort: versions.web ?? versions.common ?? "unknown",
    ortVersions: versions,
    wasm,
    webgpu: { available: choice.webgpu.available, adapter: choice.webgpu.adapter, reason: choice.webgpu.reason },
    native: {
      ...survey.native!,
      expected: NATIVE_VERSION,
      threads: survey.native?.available ? await defaultNativeThreads() : 0,
      webgpu: survey.nativeWebgpu ?? null,
    },
    backends: survey.tried.map((t) => {
      const { package: pkg, device, deviceOutputs, summary } = BACKENDS[t.backend];
      return { ...t, package: pkg, device, deviceOutputs, summary };
    }),
  };
}

/** CLI entry. */
export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    values = readFlags(FLAGS, argv);
  } catch (e) {
    console.error(flagMessage(e, FLAGS));
    return 2;
  }
  if (values === "help") {
    console.log(helpText("Usage: deno task cli doctor [--json] [--backend B]", FLAGS));
    return 0;
  }
  let report: DoctorReport;
  try {
    report = await doctor(values.backend);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  if (values.json) {
    console.log(JSON.stringify(report));
    return 0;
  }
  const a = report.webgpu.adapter as
    | { description?: string; features?: string[]; limits?: Record<string, number> }
    | null;
  const n = report.native;
  const lines = [
    `runtime     ${report.runtime.name} ${report.runtime.version}`,
    `ort         onnxruntime-web ${report.ort}; onnxruntime-node ${n.version ?? "not loaded"}`,
    `wasm        ${report.wasm.ok ? "ok" : `failed: ${report.wasm.error}`}, ${report.wasm.threads} thread(s)`,
    `webgpu      ${report.webgpu.available ? "available" : "unavailable"}: ${report.webgpu.reason}`,
  ];
  if (a) {
    lines.push(`  features  ${(a.features ?? []).join(", ") || "(none)"}`);
    for (const [k, v] of Object.entries(a.limits ?? {})) lines.push(`  ${k.padEnd(34)} ${v}`);
  }
  lines.push(`native      ${n.available ? `${n.reason}; native-cpu threads ${n.threads} (all cores)` : n.reason}`);
  if (n.webgpu?.available) lines.push(`  webgpu    device-resident state: ${n.webgpu.deviceOutputsReason}`);
  lines.push("auto        (every backend in auto's order, probed)");
  for (const b of report.backends) {
    lines.push(`  ${b.backend.padEnd(14)} ${b.status.padEnd(12)} ${b.reason}`);
  }
  lines.push(`backend     ${report.backend} (${report.reason})`);
  console.log(lines.join("\n"));
  return 0;
}
