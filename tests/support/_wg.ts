import fc from "fast-check";
import { labelled, OP_SPECS } from "./op_cases.ts";
import { checkCase } from "./op_check.ts";
import { Engine } from "../../src/runtime/session.ts";
const e = await Engine.create("webgpu");
for (const spec of OP_SPECS.filter((s) => ["matmul", "softmax", "logSoftmax", "gemm", "layerNorm", "reduceLogSumExp", "topK", "argMax", "cumsum"].includes(s.name))) {
  try {
    await fc.assert(fc.asyncProperty(labelled(spec.arb({ dims: [1, 2, 3, 4, 5], maxRank: 4, float64: false })), (c) => checkCase(e, c, "float32")), { numRuns: 40 });
    console.log("ok", spec.name);
  } catch (err) { console.log("FAIL", spec.name, String((err as Error).message).split("\n").find(l => l.startsWith("Counterexample")), String((err as Error).cause).slice(0, 300)); }
}
