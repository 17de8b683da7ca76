/**
 * Every gradient rule against central finite differences in float64 on the wasm backend (float32
 * with a looser tolerance for ops without a double kernel, e.g. Erf), 100 fast-check cases per
 * rule. Sessions are cached per case configuration; a case costs three runs.
 */

import fc from "fast-check";
import { serializeModel } from "../../src/onnx/serialize.ts";
import { Engine, type GraphSession } from "../../src/runtime/session.ts";
import { Rng } from "../../src/util/rng.ts";
import { DIFFERENTIABLE_OPS } from "../../src/autodiff/mod.ts";
import { CASES } from "./_cases.ts";
import { assertClose, buildCheckGraph, type CheckGraph, checkOnce } from "./_check.ts";

const engine = await Engine.create("wasm");
const sessions = new Map<string, { s: GraphSession; cg: CheckGraph }>();

for (const opName of DIFFERENTIABLE_OPS) {
  Deno.test(`${opName} gradient matches finite differences (wasm)`, async () => {
    const cases = CASES[opName];
    await fc.assert(
      fc.asyncProperty(fc.nat(cases.length - 1), fc.integer(), async (ci, seed) => {
        const c = cases[ci];
        const dtype = c.float32Only ? "float32" : "float64";
        const key = `${opName}/${ci}`;
        let hit = sessions.get(key);
        if (!hit) {
          const cg = buildCheckGraph(c, dtype);
          hit = { s: await engine.createSession(serializeModel(cg.graph)), cg };
          sessions.set(key, hit);
        }
        const f32 = dtype === "float32" || c.inputs.some((s) => s.dtype === "float32");
        const r = await checkOnce(engine, hit.s, c, hit.cg, dtype, new Rng(seed), c.fdStep ?? (f32 ? 1e-2 : 1e-5));
        // float64: h^2 truncation and round-off are both ~1e-10. float32 (Erf, Cast from f32):
        // 2e-3 relative as JAX's float32 check_grads, or the case's own (float16 rounding).
        if (f32) assertClose(`${opName} ${c.name}`, r, c.fdTol ?? 2e-3, c.fdTol ?? 2e-3);
        else assertClose(`${opName} ${c.name}`, r, 1e-6, 1e-8);
      }),
      { numRuns: 100 },
    );
  });
}
