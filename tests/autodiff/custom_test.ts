/**
 * The memory hints builders give the walker (src/autodiff/custom.ts): a custom gradient replaces
 * the walk through its region, a recompute recipe replaces the forward value a rule reads, and
 * `dependOn` passes its value through unchanged.
 */

import assert from "node:assert/strict";
import { Graph } from "../../src/onnx/graph.ts";
import * as op from "../../src/onnx/ops.ts";
import { serializeModel } from "../../src/onnx/serialize.ts";
import { Engine } from "../../src/runtime/session.ts";
import { backward, setCustomGradient, setRecompute } from "../../src/autodiff/mod.ts";

const engine = await Engine.create("wasm");

async function run(g: Graph, x: number[]): Promise<Record<string, number[]>> {
  const s = await engine.createSession(serializeModel(g));
  const out = await s.run({ x: engine.tensor(Float64Array.from(x), [x.length]) });
  await s.release();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Array.from(v.data as Float64Array)]));
}

Deno.test("a custom gradient is used instead of the region's rules, and its region gets no gradient nodes", async () => {
  const g = new Graph();
  const x = g.input("x", "float64", [3]);
  // y = exp(x) through a region; its custom gradient says dy/dx = 3 (a deliberate lie, to see it used).
  const inner = op.exp(x);
  const y = op.identity(inner);
  let called = 0;
  setCustomGradient(y, {
    inputs: [x],
    vjp: (dy) => {
      called++;
      return [op.mul(dy, g.scalar(3, "float64"))];
    },
  });
  const before = g.nodes.length;
  const [dx] = backward(op.reduceSum(op.mul(y, y), [0]), [x]);
  g.output(dx, "dx");
  assert.equal(called, 1);
  // No backward node reads the region's interior value.
  assert.ok(g.nodes.slice(before).every((n) => !n.inputs.includes(inner.name)));
  const r = await run(g, [0, 1, -1]);
  const want = [0, 1, -1].map((v) => 2 * Math.exp(v) * 3);
  r.dx.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-12, `${v} vs ${want[i]}`));
});

Deno.test("a rule reading a value with a recompute recipe gets the rebuilt copy, made after the cotangent", async () => {
  const g = new Graph();
  const x = g.input("x", "float64", [3]);
  const w = g.initializer("w", { dtype: "float64", shape: [3], data: Float64Array.from([2, -1, 0.5]) });
  const wUse = op.dependOn(w, x); // the forward use of the weight
  let rebuilt: string | null = null;
  setRecompute(wUse, (after) => {
    const v = op.dependOn(w, after);
    rebuilt = v.name;
    return v;
  });
  const loss = op.reduceSum(op.mul(op.mul(x, wUse), x), [0]); // Σ w x²
  const before = g.nodes.length;
  const [dx] = backward(loss, [x]);
  g.output(dx, "dx");
  assert.ok(rebuilt, "the recipe was called");
  const back = g.nodes.slice(before);
  assert.ok(back.every((n) => !n.inputs.includes(wUse.name)), "no backward node reads the forward copy");
  assert.ok(back.some((n) => n.inputs.includes(rebuilt!)));
  const r = await run(g, [1, 2, 3]);
  assert.deepEqual(r.dx, [4, -4, 3]); // 2 w x
});
