/**
 * The rules in float32 on WebGPU: one graph packs a case of every rule (few shapes, one shader
 * compile each), run on 5 random draws; its gradients must match the float64 wasm gradients of
 * the same cases (which rules_test.ts checks against finite differences).
 *
 * Cast is left out: its cases need float64, which the WebGPU EP lacks.
 */

import fc from "fast-check";
import { Graph } from "../../src/onnx/graph.ts";
import { serializeModel } from "../../src/onnx/serialize.ts";
import { resolveBackend } from "../../src/runtime/backend.ts";
import { Engine, type GraphSession, readTensor } from "../../src/runtime/session.ts";
import { Rng } from "../../src/util/rng.ts";
import { DIFFERENTIABLE_OPS, type DifferentiableOp } from "../../src/autodiff/mod.ts";
import { CASES, type RuleCase } from "./_cases.ts";
import { addCheck, buildCheckGraph, type CaseData, drawData, feedsAt, outputDims } from "./_check.ts";

const EXTRA: Partial<Record<DifferentiableOp, number[]>> = {
  Gather: [3],
  Slice: [1, 3],
  ReduceMean: [4],
  MatMul: [1, 3],
};

Deno.test({
  name: "every rule's float32 gradient on WebGPU matches float64 on wasm",
  ignore: !(await webgpuOrSkip()),
  fn: async () => {
    const picks: { opName: DifferentiableOp; c: RuleCase }[] = [];
    for (const opName of DIFFERENTIABLE_OPS) {
      if (opName === "Cast") continue;
      for (const i of [0, ...(EXTRA[opName] ?? [])]) picks.push({ opName, c: CASES[opName][i] });
    }
    const gpu = await Engine.create("webgpu");
    const cpu = await Engine.create("wasm");
    const big = new Graph("all_rules");
    const checks = picks.map((p, i) => addCheck(big, p.c, "float32", `c${i}_`));
    const gpuSession = await gpu.createSession(serializeModel(big));
    const refs: { s: GraphSession; dims: number[] | null }[] = [];
    for (const p of picks) {
      const dtype = p.c.float32Only ? "float32" : "float64";
      refs.push({ s: await cpu.createSession(serializeModel(buildCheckGraph(p.c, dtype).graph)), dims: null });
    }
    await fc.assert(
      fc.asyncProperty(fc.integer(), async (seed) => {
        const rng = new Rng(seed);
        const feeds: Record<string, ReturnType<typeof gpu.tensor>> = {};
        const draws: { data: CaseData; v: Float64Array; dims: number[] }[] = [];
        for (let i = 0; i < picks.length; i++) {
          const { c } = picks[i];
          const data = drawData(c, rng);
          const dtype = c.float32Only ? "float32" : "float64";
          refs[i].dims ??= await outputDims(cpu, c, dtype, data);
          const dims = refs[i].dims!;
          const v = Float64Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.normal());
          Object.assign(feeds, feedsAt(gpu, c, "float32", data, 0, `c${i}_`));
          feeds[`c${i}_v`] = gpu.tensor(Float32Array.from(v), dims);
          draws.push({ data, v, dims });
        }
        const out = await gpuSession.run(feeds);
        for (let i = 0; i < picks.length; i++) {
          const { c, opName } = picks[i];
          const dtype = c.float32Only ? "float32" : "float64";
          const { data, v, dims } = draws[i];
          const vt = dtype === "float32" ? cpu.tensor(Float32Array.from(v), dims) : cpu.tensor(v, dims);
          const ref = await refs[i].s.run({ ...feedsAt(cpu, c, dtype, data, 0), v: vt });
          for (const k of checks[i].floatInputs) {
            const want = Array.from(await readTensor(ref[`g${k}`]) as Float64Array);
            const got = Array.from(await readTensor(out[`c${i}_g${k}`]) as Float32Array);
            const scale = Math.max(1, ...want.map(Math.abs));
            want.forEach((w, j) => {
              if (!(Math.abs(got[j] - w) <= 1e-4 * scale)) {
                throw new Error(`${opName} ${c.name}: gradient ${k}[${j}] is ${got[j]} on WebGPU, ${w} on wasm`);
              }
            });
          }
        }
      }),
      { numRuns: 5 },
    );
    await gpuSession.release();
    for (const r of refs) await r.s.release();
  },
});

/** True when WebGPU can be tested; under CI=true a missing adapter fails instead. */
async function webgpuOrSkip(): Promise<boolean> {
  try {
    await resolveBackend("webgpu");
    return true;
  } catch (e) {
    if (Deno.env.get("CI") === "true") throw e;
    console.warn(`Skipping the WebGPU rule test: ${(e as Error).message}`);
    return false;
  }
}
