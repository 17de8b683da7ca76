/**
 * Dimension expressions (src/onnx/dims.ts) and the shapes the builders infer with them: reshape
 * with -1, concat, slice, split, pad, expand and range keep exact symbolic shapes (no invented
 * names), and the runtime shapes ORT computes equal the expressions evaluated at the fed sizes.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  addDims,
  canonicalDim,
  dimAtLeast,
  dimSymbols,
  divDims,
  evalDim,
  linearDim,
  mulDims,
  sameDim,
  subDims,
} from "../../src/onnx/dims.ts";
import { Graph, GraphError } from "../../src/onnx/graph.ts";
import * as op from "../../src/onnx/ops.ts";
import { serializeModel } from "../../src/onnx/serialize.ts";
import { Engine } from "../../src/runtime/session.ts";

Deno.test("dims: canonical forms, arithmetic and exact division", () => {
  assert.equal(canonicalDim("seq + past"), "past+seq");
  assert.equal(canonicalDim("seq*batch"), "batch*seq");
  assert.equal(canonicalDim("2*(past+1)"), "2*past+2");
  assert.equal(canonicalDim("past+seq-seq"), "past");
  assert.equal(canonicalDim("3-1"), 2);
  assert.equal(canonicalDim("x y"), "{x y}"); // not an expression: one opaque symbol
  assert.equal(canonicalDim(canonicalDim("x y")), "{x y}");
  assert.equal(addDims("past", "seq", 1), "past+seq+1");
  assert.equal(addDims(2, 3), 5);
  assert.equal(subDims("past+seq", "seq"), "past");
  assert.equal(mulDims(2, "seq"), "2*seq");
  assert.equal(mulDims("batch", "seq", 4), "4*batch*seq");
  assert.equal(mulDims("batch", "past+seq"), "batch*past+batch*seq");
  assert.equal(divDims("4*batch*seq", "4*batch"), "seq");
  assert.equal(divDims("batch*past+batch*seq", "past+seq"), "batch");
  assert.equal(divDims("rows", 2), "rows/2");
  assert.equal(mulDims(divDims("rows", 2)!, 2), "rows");
  assert.equal(divDims("seq", "batch"), null);
  assert.equal(divDims(6, 4), null); // 3/2 is no size
  assert.equal(divDims("seq", 0), null);
  assert.ok(sameDim("past + 1", "1+past"));
  assert.ok(dimAtLeast("seq+3", 3) && !dimAtLeast("seq+2", 3) && !dimAtLeast("seq-1", 0));
  assert.deepEqual(dimSymbols("batch*seq+past"), ["batch", "past", "seq"]);
  assert.deepEqual(linearDim("past+1"), { symbol: "past", offset: 1 });
  assert.equal(linearDim("2*past"), null);
  assert.equal(evalDim("2*batch*seq+past-1", { batch: 3, seq: 5, past: 7 }), 36);
});

Deno.test("dims: sums and products are canonical whatever the order (property)", () => {
  const sym = fc.constantFrom("batch", "seq", "past", "k");
  const term = fc.tuple(fc.integer({ min: -3, max: 3 }), fc.array(sym, { maxLength: 3 }));
  const poly = fc.array(term, { maxLength: 4 }).map((ts) =>
    ts.map(([c, s]) => [String(c), ...s].join("*")).join("+") || "0"
  );
  const sizes = { batch: 2, seq: 3, past: 5, k: 7 };
  fc.assert(
    fc.property(poly, poly, (a, b) => {
      assert.equal(addDims(a, b), addDims(b, a));
      assert.equal(mulDims(a, b), mulDims(b, a));
      assert.ok(evalDim(mulDims(a, b), sizes) === evalDim(a, sizes) * evalDim(b, sizes), `${a} * ${b}`);
      assert.ok(evalDim(addDims(a, b), sizes) === evalDim(a, sizes) + evalDim(b, sizes), `${a} + ${b}`);
      assert.equal(subDims(addDims(a, b), b), canonicalDim(a));
      const q = mulDims(a, b) === 0 || canonicalDim(b) === 0 ? null : divDims(mulDims(a, b), b);
      if (q !== null) assert.equal(q, canonicalDim(a));
    }),
    { numRuns: 300, seed: 11 },
  );
});

Deno.test("shapes: reshape(-1), concat, slice, split, pad keep exact expressions", () => {
  const g = new Graph();
  const x = g.input("x", "float32", ["batch", "seq", 64]);
  const past = g.input("past", "float32", ["batch", 2, "past", 8]);
  const flat = op.reshape(x, [-1, 64]);
  assert.deepEqual(flat.shape, ["batch*seq", 64]);
  assert.deepEqual(op.reshape(flat, ["batch", "seq", 64]).shape, ["batch", "seq", 64]);
  assert.deepEqual(op.reshape(x, [0, 0, 4, -1]).shape, ["batch", "seq", 4, 16]);
  const heads = op.reshape(x, [0, 0, 2, 4, 8]); // [B, T, 2, 4, 8]
  const rows = op.reshape(op.transpose(heads, [0, 2, 3, 1, 4]), [0, 2, -1, 8]);
  assert.deepEqual(rows.shape, ["batch", 2, "4*seq", 8]);
  assert.deepEqual(op.reshape(rows, [0, 2, 4, -1, 8]).shape, ["batch", 2, 4, "seq", 8]);
  const k = op.transpose(op.reshape(op.slice(x, [0], [16], [2]), [0, 0, 2, 8]), [0, 2, 1, 3]);
  const keys = op.concat([past, k], 2);
  assert.deepEqual(keys.shape, ["batch", 2, "past+seq", 8]);
  assert.deepEqual(op.concat([rows, rows], 2).shape, ["batch", 2, "8*seq", 8]);
  assert.deepEqual(op.slice(x, [1], [op.TO_END], [1]).shape, ["batch", "seq-1", 64]);
  assert.deepEqual(op.slice(x, [0], [-1], [1]).shape, ["batch", "seq-1", 64]);
  assert.deepEqual(op.slice(x, [-1], [op.TO_END], [1]).shape, ["batch", 1, 64]);
  // The last 3 of past+seq: min(past+seq, 3), a fresh dim (past+seq >= 3 cannot be proven).
  assert.match(String(op.slice(keys, [-3], [op.TO_END], [2]).shape[2]), /^slice_dim_\d+$/);
  const padded = op.concat([op.expand(g.scalar(0), ["batch", 2, 3, 8]), keys], 2); // [B, 2, past+seq+3, 8]
  assert.deepEqual(op.slice(padded, [-3], [op.TO_END], [2]).shape, ["batch", 2, 3, 8]); // provably >= 3
  assert.deepEqual(op.narrow(keys, 2, "past", "seq").shape, ["batch", 2, "seq", 8]);
  const [a, b] = op.split(keys, ["past", "seq"], 2);
  assert.deepEqual([a.shape[2], b.shape[2]], ["past", "seq"]);
  assert.deepEqual(op.pad(x, [0, 2, 0, 0, "past", 0]).shape, ["batch", "past+seq+2", 64]);
  assert.deepEqual(op.arange(g, "past", "seq").shape, ["seq"]);
  // A quotient that is no polynomial of sizes is still exact with a rational coefficient.
  assert.deepEqual(op.reshape(op.reshape(x, [-1]), [2, -1]).shape, [2, "32*batch*seq"]);
  // Counts that provably differ fail; data-dependent sizes get fresh dims.
  assert.throws(() => op.reshape(x, ["batch", "seq", 32]), GraphError);
  assert.throws(() => op.split(keys, ["past", "past"], 2), /sum to 2\*past/);
  assert.match(String(op.nonZero(x).shape[1]), /^nonzero_dim_\d+$/);
});

Deno.test("shapes: symbolic targets are built at run time from the graph's inputs, and ORT agrees", async () => {
  const g = new Graph("dims");
  const x = g.input("x", "float32", ["batch", "seq", 6]);
  const p = g.input("p", "float32", ["batch", "past"]);
  const flat = op.reshape(x, [-1, 6]); // [batch*seq, 6]
  const back = op.reshape(op.mul(flat, g.scalar(2)), ["batch", "seq", 6]); // target from dimValue
  const tail = op.narrow(op.concat([p, op.reshape(op.slice(x, [0], [1], [2]), [0, -1])], 1), 1, "past", "seq");
  const range = op.arange(g, "past", "seq");
  const zeros = op.expand(g.scalar(0), ["batch", "past+seq"]);
  const total = op.dimValue(g, "2*batch*seq+past");
  for (
    const [v, name] of [[back, "back"], [tail, "tail"], [range, "range"], [zeros, "zeros"], [total, "total"]] as const
  ) {
    g.output(v, name);
  }
  const e = await Engine.create("wasm");
  const s = await e.createSession(serializeModel(g));
  const [B, T, P] = [2, 3, 4];
  const xs = Float32Array.from({ length: B * T * 6 }, (_, i) => i);
  const r = await s.run({ x: e.tensor(xs, [B, T, 6]), p: e.tensor(new Float32Array(B * P).fill(-1), [B, P]) });
  await s.release();
  const sizes = { batch: B, seq: T, past: P };
  for (const [name, v] of [["back", back], ["tail", tail], ["range", range], ["zeros", zeros]] as const) {
    assert.deepEqual(r[name].dims, v.shape.map((d) => evalDim(d, sizes)), name);
  }
  assert.deepEqual([...(r.back.data as Float32Array)], [...xs].map((v) => 2 * v));
  assert.deepEqual([...(r.tail.data as Float32Array)], [0, 6, 12, 18, 24, 30]);
  assert.deepEqual([...(r.range.data as BigInt64Array)].map(Number), [4, 5, 6]);
  assert.deepEqual([...(r.total.data as BigInt64Array)].map(Number), [2 * B * T + P]);
});
