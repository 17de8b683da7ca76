/**
 * Every op builder against the float64 reference on ORT's wasm backend (`onnxruntime-web/wasm`):
 * random shapes with broadcasting, size-1 and size-0 axes; float32 everywhere and float64 where ORT
 * has double kernels. Each case is one tiny session (~1 ms); the checker also compares the builder's
 * inferred dtype and shape with what ORT returns.
 */

import fc from "fast-check";
import assert from "node:assert/strict";
import { configureRuntime } from "../../src/runtime/ort.ts";
import { Engine } from "../../src/runtime/session.ts";
import { labelled, OP_SPECS, WASM_SHAPES } from "../support/op_cases.ts";
import { checkCase, type FloatType } from "../support/op_check.ts";

/** Cases per op and float type: 100 cases per op take 0.05-0.5 s on the 2-core machine. */
const RUNS: Record<FloatType, number> = { float32: 100, float64: 100 };
// A deeper search on demand: OPS_TEST_RUNS=2000 deno test -A tests/onnx/ops_test.ts
const override = Number(Deno.env.get("OPS_TEST_RUNS") ?? 0);
if (override > 0) RUNS.float32 = RUNS.float64 = override;

// Tiny graphs: one wasm thread is as fast as two and leaves the other core to parallel test files.
configureRuntime({ wasmThreads: 1 });
let engine: Promise<Engine> | undefined;
const wasm = () => (engine ??= Engine.create("wasm"));

for (const spec of OP_SPECS) {
  for (const dtype of ["float32", "float64"] as const) {
    if (dtype === "float64" && spec.float64 !== true) {
      // Pin the gap down, so an ORT upgrade that adds the kernel shows up here.
      Deno.test(`${spec.name} has no float64 kernel on wasm (${spec.float64})`, async () => {
        const e = await wasm();
        const [c] = fc.sample(spec.arb(WASM_SHAPES), { numRuns: 1, seed: 1 });
        await assert.rejects(() => checkCase(e, c, "float64"), /Could not find an implementation/);
      });
      continue;
    }
    Deno.test(`${spec.name} matches the reference on wasm ${dtype}`, async () => {
      const e = await wasm();
      await fc.assert(
        fc.asyncProperty(labelled(spec.arb(WASM_SHAPES)), (c) => checkCase(e, c, dtype)),
        { numRuns: RUNS[dtype] },
      );
    });
  }
}
