/**
 * `doctor [--json] [--backend auto|webgpu|wasm]`: what this machine offers and what `auto` picks.
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { type BackendPreference, resolveBackend } from "../runtime/backend.ts";
import { ORT_VERSION, runtimeConfig } from "../runtime/ort.ts";
import { Engine } from "../runtime/session.ts";
import { Graph } from "../onnx/graph.ts";
import { add } from "../onnx/ops.ts";
import { serializeModel } from "../onnx/serialize.ts";

/** The report `doctor --json` prints. */
export interface DoctorReport {
  backend: "webgpu" | "wasm";
  reason: string;
  requested: BackendPreference;
  runtime: { name: "deno" | "bun" | "node" | "browser"; version: string };
  ort: string;
  wasm: { threads: number; ok: boolean; error?: string };
  webgpu: {
    available: boolean;
    adapter: unknown;
    reason: string;
  };
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
  const choice = await resolveBackend(requested);
  const wasm: DoctorReport["wasm"] = { threads: runtimeConfig().wasmThreads, ok: true };
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
    ort: ORT_VERSION,
    wasm,
    webgpu: { available: choice.webgpu.available, adapter: choice.webgpu.adapter, reason: choice.webgpu.reason },
  };
}

/** CLI entry. */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: "boolean", default: false },
      backend: { type: "string", default: "auto" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log("Usage: deno task cli doctor [--json] [--backend auto|webgpu|wasm]");
    return 0;
  }
  let report: DoctorReport;
  try {
    report = await doctor(values.backend as BackendPreference);
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
  const lines = [
    `runtime     ${report.runtime.name} ${report.runtime.version}`,
    `ort         onnxruntime-web ${report.ort}`,
    `wasm        ${report.wasm.ok ? "ok" : `failed: ${report.wasm.error}`}, ${report.wasm.threads} thread(s)`,
    `webgpu      ${report.webgpu.available ? "available" : "unavailable"}: ${report.webgpu.reason}`,
  ];
  if (a) {
    lines.push(`  features  ${(a.features ?? []).join(", ") || "(none)"}`);
    for (const [k, v] of Object.entries(a.limits ?? {})) lines.push(`  ${k.padEnd(34)} ${v}`);
  }
  lines.push(`backend     ${report.backend} (${report.reason})`);
  console.log(lines.join("\n"));
  return 0;
}
