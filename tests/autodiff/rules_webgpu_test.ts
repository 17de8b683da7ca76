/**
 * The rules in float32 on WebGPU, against central finite differences computed on WebGPU itself (not
 * against another backend, which could share a wrong rule). One graph packs a case of every rule
 * (few shapes, one shader compile each); each draw runs it at x and at x ± h d and checks, per case,
 *
 *   <v, (f(x + h d) − f(x − h d)) / 2h>  ≈  <J^T v, d>
 *
 * Step and tolerance are float32's: h = 1e-3 keeps the truncation error (h²/6 f''' ≲ 3e-4 for the
 * steepest case, 1/x at 0.5) and the rounding error (~1e-7 |f| / h ≲ 1e-4 of the result) small; the
 * tolerance is 10x the worst error measured. Cast is in: a same-type Cast node always, and
 * float32 → float16 → float32 where the adapter has `shader-f16` (lavapipe does); its float64 cases
 * are wasm-only (no float64 on the WebGPU EP).
 *
 * Piecewise-linear ops (Abs, Relu, Clip, Max, Min, ReduceMax, ReduceMin) have kinks that a segment
 * x ± h d crosses now and then (random inputs, ~0.1% per element). On such a segment the forward and
 * backward differences disagree, and the one on the side without the kink is the derivative at x:
 * the check then accepts a match with either one-sided difference. A draw whose segment has kinks on
 * both sides proves nothing and is skipped, and every case must be checked on all but one draw.
 */

import fc from "fast-check";
import { Graph } from "../../src/onnx/graph.ts";
import { serializeModel } from "../../src/onnx/serialize.ts";
import { probeWebGpu, resolveBackend } from "../../src/runtime/backend.ts";
import { Engine, type OrtTensor, readTensor } from "../../src/runtime/session.ts";
import { Rng } from "../../src/util/rng.ts";
import { DIFFERENTIABLE_OPS, type DifferentiableOp } from "../../src/autodiff/mod.ts";
import { CASES, type RuleCase } from "./_cases.ts";
import { addCheck, type CaseData, drawData, feedsAt, outputDims } from "./_check.ts";

/** More cases of the ops whose first case leaves a code path out. */
const EXTRA: Partial<Record<DifferentiableOp, number[]>> = {
  Gather: [3],
  Slice: [1, 3],
  ReduceMean: [4],
  MatMul: [1, 3],
  Max: [2],
};

const PIECEWISE_LINEAR: ReadonlySet<DifferentiableOp> = new Set([
  "Abs",
  "Relu",
  "Clip",
  "Max",
  "Min",
  "ReduceMax",
  "ReduceMin",
]);

/** Central-difference step (float32: see the header). */
const H = 1e-3;
/**
 * |fd − vjp| ≤ TOL (1 + max(|fd|, |vjp|)): 10x the worst measured over 40 draws of every case
 * (7.1e-4, LogSoftmax and Exp; the float16 Cast case has its own, from its rounding).
 */
const TOL = 7e-3;
const DRAWS = 5;

Deno.test({
  name: "every rule's float32 gradient on WebGPU matches central finite differences on WebGPU",
  ignore: !(await webgpuOrSkip()),
  fn: async () => {
    const f16 = (await probeWebGpu()).adapter?.features.includes("shader-f16") ?? false;
    if (!f16) console.warn("The adapter has no shader-f16: the float16 Cast case is left out");
    const picks: { opName: DifferentiableOp; c: RuleCase }[] = [];
    for (const opName of DIFFERENTIABLE_OPS) {
      const cases = opName === "Cast" ? CASES.Cast.filter((c) => c.requires !== "float64") : [
        ...new Set([0, ...(EXTRA[opName] ?? [])]),
      ].map((i) => CASES[opName][i]);
      for (const c of cases) if (c.requires !== "shader-f16" || f16) picks.push({ opName, c });
    }
    const gpu = await Engine.create("webgpu");
    const big = new Graph("all_rules");
    const checks = picks.map((p, i) => addCheck(big, p.c, "float32", `c${i}_`));
    const session = await gpu.createSession(serializeModel(big));
    const dims: number[][] = [];
    for (const { c } of picks) dims.push(await outputDims(gpu, c, "float32", drawData(c, new Rng(0))));
    const verified = new Array(picks.length).fill(0);
    let worst = 0, oneSided = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer(), async (seed) => {
        const rng = new Rng(seed);
        const draws = picks.map((p, i) => {
          const data: CaseData = drawData(p.c, rng);
          const v = Float64Array.from({ length: dims[i].reduce((a, b) => a * b, 1) }, () => rng.normal());
          return { data, v };
        });
        const run = async (sign: number) => {
          const feeds: Record<string, OrtTensor> = {};
          picks.forEach(({ c }, i) => {
            Object.assign(feeds, feedsAt(gpu, c, "float32", draws[i].data, sign * (c.fdStep ?? H), `c${i}_`));
            feeds[`c${i}_v`] = gpu.tensor(Float32Array.from(draws[i].v), dims[i]);
          });
          return await session.run(feeds);
        };
        const [base, plus, minus] = [await run(0), await run(1), await run(-1)];
        for (const [i, { opName, c }] of picks.entries()) {
          const h = c.fdStep ?? H, tol = c.fdTol ?? TOL;
          const { data, v } = draws[i];
          const y = async (out: Record<string, OrtTensor>) =>
            Array.from(await readTensor(out[`c${i}_y`]) as Float32Array);
          const [y0, yp, ym] = [await y(base), await y(plus), await y(minus)];
          if (y0.length !== v.length) {
            throw new Error(`${opName} ${c.name}: y has ${y0.length} entries, not ${v.length}`);
          }
          const vdot = (a: number[]) => a.reduce((s, x, j) => s + x * v[j], 0);
          const fd = (vdot(yp) - vdot(ym)) / (2 * h);
          const fwd = (vdot(yp) - vdot(y0)) / h, bwd = (vdot(y0) - vdot(ym)) / h;
          let vjp = 0;
          for (const [k, input] of checks[i].floatInputs.entries()) {
            const g = Array.from(await readTensor(base[`c${i}_g${input}`]) as Float32Array);
            const d = data.ds[k];
            if (g.length !== d.length) {
              throw new Error(`${opName} ${c.name}: gradient ${input} has ${g.length} entries`);
            }
            vjp += g.reduce((s, x, j) => s + x * d[j], 0);
          }
          const err = (a: number, b: number) => Math.abs(a - b) / (1 + Math.max(Math.abs(a), Math.abs(b)));
          if (err(fd, vjp) <= tol) {
            worst = Math.max(worst, err(fd, vjp) / tol);
            verified[i]++;
            continue;
          }
          const kink = PIECEWISE_LINEAR.has(opName) && err(fwd, bwd) > tol;
          if (kink && Math.min(err(fwd, vjp), err(bwd, vjp)) <= tol) {
            oneSided++;
            verified[i]++;
            continue;
          }
          if (kink) continue; // kinks on both sides of x: this draw says nothing about the rule
          throw new Error(
            `${opName} ${c.name}: finite difference ${fd} vs <J^T v, d> ${vjp} (error ${err(fd, vjp)} > ${tol})`,
          );
        }
      }),
      { numRuns: DRAWS },
    );
    await session.release();
    picks.forEach(({ opName, c }, i) => {
      if (verified[i] < DRAWS - 1) throw new Error(`${opName} ${c.name}: checked on ${verified[i]} of ${DRAWS} draws`);
    });
    console.log(
      `  ${picks.length} cases x ${DRAWS} draws: worst error ${worst.toExponential(2)} of the tolerance, ` +
        `${oneSided} checked one-sided (a kink in the segment)`,
    );
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
