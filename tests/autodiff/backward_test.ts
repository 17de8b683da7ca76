/**
 * The walker's own duties: default seed, fan-out sums, pruning, zeros for unrelated wrt values,
 * integer inputs, symbolic batch dims, central checks of rule outputs and its error messages.
 */

import assert from "node:assert/strict";
import { Graph, GraphError } from "../../src/onnx/graph.ts";
import * as op from "../../src/onnx/ops.ts";
import { serializeModel } from "../../src/onnx/serialize.ts";
import { Engine } from "../../src/runtime/session.ts";
import { backward, type GradRule, hasGradRule } from "../../src/autodiff/mod.ts";
import { GRAD_RULES } from "../../src/autodiff/registry.ts";

const engine = await Engine.create("wasm");

async function run(g: Graph, feeds: Record<string, Float64Array | BigInt64Array>, dims: Record<string, number[]>) {
  const s = await engine.createSession(serializeModel(g));
  const t = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, engine.tensor(v, dims[k])]));
  const out = await s.run(t);
  await s.release();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Array.from(v.data as Float64Array)]));
}

Deno.test("fan-out gradients are summed and the default seed is 1", async () => {
  const g = new Graph();
  const x = g.input("x", "float64", [3]);
  // loss = sum(x * x + x) + sum(x): x feeds four uses.
  const loss = op.add(op.reduceSum(op.add(op.mul(x, x), x), [0]), op.reduceSum(x, [0]));
  g.output(backward(loss, [x])[0], "dx");
  const r = await run(g, { x: new Float64Array([1, -2, 0.5]) }, { x: [3] });
  assert.deepEqual(r.dx, [4, -2, 3]); // 2x + 2
});

Deno.test("an MLP with a symbolic batch dim runs one gradient session for every batch size", async () => {
  const g = new Graph();
  const x = g.input("x", "float64", ["batch", 2]);
  const w = g.input("w", "float64", [2, 3]);
  const b = g.input("b", "float64", [3]);
  const loss = op.reduceSum(op.mul(op.add(op.matmul(x, w), b), op.add(op.matmul(x, w), b)), [0, 1]);
  const [dw, db] = backward(loss, [w, b]);
  g.output(dw, "dw");
  g.output(db, "db");
  const s = await engine.createSession(serializeModel(g));
  for (const n of [1, 4]) {
    const xs = Float64Array.from({ length: 2 * n }, (_, i) => (i % 3) - 1);
    const ws = Float64Array.from([0.5, -1, 2, 1, 0.25, -0.5]);
    const bs = Float64Array.from([0.1, 0.2, 0.3]);
    const out = await s.run({
      x: engine.tensor(xs, [n, 2]),
      w: engine.tensor(ws, [2, 3]),
      b: engine.tensor(bs, [3]),
    });
    // Reference: r = xW + b, dW = 2 x^T r, db = 2 sum_rows r.
    const dwRef = new Float64Array(6), dbRef = new Float64Array(3);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < 3; j++) {
        const r = xs[2 * i] * ws[j] + xs[2 * i + 1] * ws[3 + j] + bs[j];
        dbRef[j] += 2 * r;
        dwRef[j] += 2 * xs[2 * i] * r;
        dwRef[3 + j] += 2 * xs[2 * i + 1] * r;
      }
    }
    assert.deepEqual(
      Array.from(out.dw.data as Float64Array).map((v) => +v.toFixed(12)),
      Array.from(dwRef, (v) => +v.toFixed(12)),
    );
    assert.deepEqual(
      Array.from(out.db.data as Float64Array).map((v) => +v.toFixed(12)),
      Array.from(dbRef, (v) => +v.toFixed(12)),
    );
  }
  await s.release();
});

Deno.test("frozen weights get no gradient work and unrelated wrt values get zeros", async () => {
  const g = new Graph();
  const x = g.input("x", "float64", [2, 3]);
  const frozen = g.initializer("frozen", { dtype: "float64", shape: [3, 3], data: new Float64Array(9).fill(0.5) });
  const w = g.input("w", "float64", [3, 2]);
  const unrelated = g.input("u", "float64", ["n", 2]);
  const h = op.relu(op.matmul(x, frozen)); // no wrt above this: no backward through it
  const loss = op.reduceSum(op.matmul(h, w), [0, 1]);
  const before = g.nodes.length;
  const [dw, du] = backward(loss, [w, unrelated]);
  const added = g.nodes.slice(before).map((n) => n.op);
  assert.equal(added.filter((o) => o === "MatMul" || o === "Gemm").length, 1, `added ${added}`);
  assert.ok(!added.includes("Greater"), "Relu's rule must not run for a frozen branch");
  g.output(dw, "dw");
  g.output(du, "du");
  const r = await run(g, {
    x: new Float64Array([1, 2, 3, -1, -2, -3]),
    w: new Float64Array(6),
    u: new Float64Array(6).fill(7),
  }, { x: [2, 3], w: [3, 2], u: [3, 2] });
  assert.deepEqual(r.dw, [3, 3, 3, 3, 3, 3]); // h = [[3,3,3],[0,0,0]]
  assert.deepEqual(r.du, [0, 0, 0, 0, 0, 0]);
});

Deno.test("integer inputs never get gradients: indices, casts from int, shapes", async () => {
  const g = new Graph();
  const emb = g.input("emb", "float64", [4, 2]);
  const ids = g.input("ids", "int64", [3]);
  const scale = op.cast(ids, "float64"); // int -> float: a constant as far as gradients go
  const e = op.gather(emb, ids, 0); // [3, 2]
  const loss = op.reduceSum(op.mul(e, op.unsqueeze(scale, [1])), [0, 1]);
  g.output(backward(loss, [emb])[0], "demb");
  const r = await run(g, { emb: new Float64Array(8), ids: BigInt64Array.from([1n, 3n, 1n]) }, {
    emb: [4, 2],
    ids: [3],
  });
  assert.deepEqual(r.demb, [0, 0, 2, 2, 0, 0, 3, 3]); // row 1 gathered twice with weight 1 each
});

Deno.test("a seed gives a vector-Jacobian product of a non-scalar output", async () => {
  const g = new Graph();
  const x = g.input("x", "float64", [3]);
  const v = g.input("v", "float64", [3]);
  g.output(backward(op.exp(x), [x], { seed: v })[0], "vjp");
  const r = await run(g, { x: new Float64Array([0, 1, 2]), v: new Float64Array([1, 2, 3]) }, { x: [3], v: [3] });
  assert.equal(r.vjp.length, 3);
  r.vjp.forEach((got, i) => assert.ok(Math.abs(got - (i + 1) * Math.exp(i)) < 1e-12));
});

Deno.test("errors name the op and node", () => {
  const g = new Graph();
  const x = g.input("x", "float32", [3]);
  const sin = g.addNode("Sin", [x], [{ dtype: "float32", shape: [3] }])[0];
  assert.throws(() => backward(op.reduceSum(sin, [0]), [x]), (e: Error) => {
    assert.ok(e instanceof GraphError);
    assert.match(e.message, /No gradient rule for Sin \(node n_Sin_\d+\)/);
    return true;
  });
  assert.throws(() => backward(op.exp(x), [x]), /loss must be a scalar/);
  assert.throws(() => backward(op.reduceSum(x, [0]), [g.input("i", "int64", [2])]), /must be float/);
  assert.equal(hasGradRule("MatMul"), true);
  assert.equal(hasGradRule("Sin"), false);
});

Deno.test("the walker checks every rule's output dtype and shape centrally", () => {
  const rules = GRAD_RULES as unknown as Record<string, GradRule>;
  const original = rules.Neg;
  try {
    rules.Neg = ({ graph }) => [graph.constant(new Float32Array(2), [2])];
    const g = new Graph();
    const x = g.input("x", "float32", [3]);
    assert.throws(
      () => backward(op.reduceSum(op.neg(x), [0]), [x]),
      /Gradient rule of Neg \(node n_Neg_\d+\) returned shape \[2\] for input 0 \(x\), which has shape \[3\]/,
    );
    rules.Neg = ({ dys }) => [op.cast(dys[0]!, "float64")];
    const g2 = new Graph();
    const y = g2.input("y", "float32", [3]);
    assert.throws(
      () => backward(op.reduceSum(op.neg(y), [0]), [y]),
      /returned float64 for input 0 \(y\), which is float32/,
    );
  } finally {
    rules.Neg = original;
  }
});

Deno.test("broadcast gradients are summed back to symbolic input shapes", async () => {
  const g = new Graph();
  const x = g.input("x", "float64", ["batch", "seq", 2]);
  const bias = g.input("bias", "float64", [1, "seq", 1]);
  const loss = op.reduceSum(op.mul(op.add(x, bias), x), [0, 1, 2]);
  const [db] = backward(loss, [bias]);
  assert.deepEqual(db.shape, [1, "seq", 1]);
  g.output(db, "db");
  const xs = Float64Array.from({ length: 2 * 3 * 2 }, (_, i) => i);
  const r = await run(g, { x: xs, bias: new Float64Array(3) }, { x: [2, 3, 2], bias: [1, 3, 1] });
  // d/dbias sum((x + b) x) = sum over batch and last axis of x
  const ref = [0, 1, 2].map((s) =>
    [0, 1].flatMap((b) => [0, 1].map((k) => xs[b * 6 + s * 2 + k])).reduce((p, q) => p + q)
  );
  assert.deepEqual(r.db, ref);
});
