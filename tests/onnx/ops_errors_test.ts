/**
 * Wrong graphs fail while they are built: a GraphError whose message names the op and shows the
 * shapes or types involved, so the mistake is found without reading ORT's logs.
 */

import assert from "node:assert/strict";
import type { DType } from "../../src/onnx/dtype.ts";
import { Graph, GraphError, type Shape, type Value } from "../../src/onnx/graph.ts";
import * as op from "../../src/onnx/ops.ts";

function inputs(...specs: [Shape, DType?][]): Value[] {
  const g = new Graph("errors");
  return specs.map(([shape, dtype], i) => g.input(`x${i}`, dtype ?? "float32", shape));
}

/** Asserts a GraphError whose message starts with `Op:` and contains every fragment. */
function rejects(fn: () => unknown, opName: string, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof GraphError, `expected a GraphError, got ${e}`);
    assert.ok(e.message.startsWith(`${opName}: `), `message should name ${opName}: ${e.message}`);
    for (const f of fragments) assert.ok(e.message.includes(f), `message should contain ${f}: ${e.message}`);
    return true;
  });
}

Deno.test("matmul and gemm reject mismatched inner and batch dims", () => {
  const [a, b, c, d, s, v, e, f, c1, c2, c3] = inputs(
    [[2, 3]],
    [[4, 5]],
    [[2, 2, 3]],
    [[3, 3, 4]],
    [[]],
    [[3]],
    [[1, 3]],
    [[3, 4]],
    [[2, 4]],
    [[1, 1, 4]],
    [[4]],
  );
  rejects(() => op.matmul(a, b), "MatMul", "[2, 3]", "[4, 5]", "inner");
  rejects(() => op.matmul(c, d), "MatMul", "do not broadcast", "2 vs 3");
  rejects(() => op.matmul(s, v), "MatMul", "rank >= 1");
  rejects(() => op.gemm(e, e), "Gemm", "inner", "[1, 3] x [1, 3]");
  rejects(() => op.gemm(v, f), "Gemm", "2-D", "[3]");
  // C must broadcast to [1, 4]: [2, 4] or a rank-3 C would change the result's shape.
  rejects(() => op.gemm(e, f, c1), "Gemm", "[2, 4]", "[1, 4]");
  rejects(() => op.gemm(e, f, c2), "Gemm", "[1, 1, 4]");
  assert.deepEqual(op.gemm(e, f, c3).shape, [1, 4]);
  assert.deepEqual(op.gemm(f, e, s, { transA: true, transB: true }).shape, [4, 1]);
});

Deno.test("elementwise ops reject shapes that do not broadcast, naming both", () => {
  const [a, b, c, s1, s2] = inputs([[2, 3]], [[4, 3]], [[3, 1]], [["batch", 3]], [["seq", 3]]);
  rejects(() => op.add(a, b), "Add", "[2, 3] and [4, 3]", "do not broadcast");
  rejects(() => op.mul(a, c), "Mul", "[2, 3] and [3, 1]");
  rejects(() => op.sub(s1, s2), "Sub", `"batch"`, `"seq"`);
  const g = a.graph;
  const m = g.input("mask", "bool", [4, 1]);
  rejects(() => op.where(m, a, a), "Where", "[4, 1]", "[2, 3]");
  rejects(() => op.expand(a, [3, 3]), "Expand", "[2, 3] and [3, 3]");
});

Deno.test("ops reject element type mismatches, naming the types", () => {
  const [f, d, i, bl] = inputs([[2]], [[2], "float64"], [[2], "int64"], [[2], "bool"]);
  rejects(() => op.add(f, d), "Add", "float32", "float64");
  rejects(() => op.matmul(f, d), "MatMul", "float32", "float64");
  rejects(() => op.concat([f, d], 0), "Concat", "float32", "float64");
  rejects(() => op.where(bl, f, d), "Where", "float32", "float64");
  rejects(() => op.where(f, f, f), "Where", "bool", "float32");
  rejects(() => op.less(f, i), "Less", "int64");
  rejects(() => op.exp(i), "Exp", "float", "int64");
  rejects(() => op.softmax(i), "Softmax", "int64");
  rejects(() => op.not(f), "Not", "bool", "float32");
  rejects(() => op.gather(f, f), "Gather", "int64");
  const [x, scale] = inputs([[2, 4]], [[4], "float64"]);
  rejects(() => op.layerNorm(x, scale, null), "LayerNormalization", "float64");
});

Deno.test("ops reject out-of-range axes with the rank", () => {
  const [x] = inputs([[2, 3]]);
  rejects(() => op.softmax(x, 2), "Softmax", "axis 2", "rank 2");
  rejects(() => op.logSoftmax(x, -3), "LogSoftmax", "axis -3");
  rejects(() => op.reduceSum(x, [0, 2]), "ReduceSum", "axis 2");
  rejects(() => op.reduceMax(x, [-3]), "ReduceMax", "axis -3");
  rejects(() => op.concat([x, x], 2), "Concat", "axis 2");
  rejects(() => op.gather(x, inputs([[1], "int64"])[0], 2), "Gather", "axis 2");
  rejects(() => op.argMax(x, 5), "ArgMax", "axis 5");
  rejects(() => op.cumsum(x, 2), "CumSum", "axis 2");
  rejects(() => op.split(x, [1, 1], 3), "Split", "axis 3");
  rejects(() => op.unsqueeze(x, [3]), "Unsqueeze", "axis 3", "rank 3");
  rejects(() => op.layerNorm(x, x, null, 2), "LayerNormalization", "axis 2");
  rejects(() => op.topK(x, 1, 2), "TopK", "axis 2");
});

Deno.test("reshape rejects impossible targets with both shapes", () => {
  const [x] = inputs([[2, 3]]);
  rejects(() => op.reshape(x, [4, 2]), "Reshape", "[2, 3]", "6 elements", "[4,2]");
  rejects(() => op.reshape(x, [4, -1]), "Reshape", "[2, 3]", "[4,-1]");
  rejects(() => op.reshape(x, [-1, -1]), "Reshape", "at most one -1");
  rejects(() => op.reshape(x, inputs([[2], "float32"])[0]), "Reshape", "int64");
});

Deno.test("squeeze, unsqueeze, transpose, concat, split, slice reject bad layouts", () => {
  const [x, y, z] = inputs([[2, 1, 3]], [[3, 1, 3]], [[2, 3]]);
  rejects(() => op.squeeze(x, [0]), "Squeeze", "axis 0 of [2, 1, 3] has size 2, not 1");
  rejects(() => op.squeeze(x, [1, -2]), "Squeeze", "repeat");
  rejects(() => op.unsqueeze(z, [0, 0]), "Unsqueeze", "repeat");
  rejects(() => op.transpose(x, [0, 1]), "Transpose", "[0,1]", "rank 3");
  rejects(() => op.transpose(x, [0, 1, 1]), "Transpose", "not a permutation");
  rejects(() => op.concat([x, y], 1), "Concat", "[2, 1, 3] and [3, 1, 3]", "axis 0");
  rejects(() => op.concat([x, z], 0), "Concat", "ranks differ", "[2, 1, 3] and [2, 3]");
  rejects(() => op.concat([], 0), "Concat", "at least one");
  rejects(() => op.split(x, [1, 2], 0), "Split", "[1,2]", "sum to 3", "has 2");
  rejects(() => op.slice(x, [0], [1], [0], [0]), "Slice", "step 0");
  rejects(() => op.slice(x, [0, 0], [1], [0, 1]), "Slice", "same length");
});

Deno.test("topK, trilu, gatherElements and scatterElements check their operands", () => {
  const [x, v, i1, i2, u] = inputs([[2, 3]], [[4]], [[2, 3], "int64"], [[3], "int64"], [[2, 2]]);
  rejects(() => op.topK(x, 4), "TopK", "k = 4", "[2, 3]");
  rejects(() => op.topK(x, -1), "TopK", "k = -1");
  rejects(() => op.trilu(v, true), "Trilu", "rank >= 2", "[4]");
  rejects(() => op.gatherElements(x, i2), "GatherElements", "same rank");
  rejects(() => op.scatterElements(x, i1, u), "ScatterElements", "[2, 3]", "[2, 2]");
  rejects(() => op.scatterElements(x, i2, v), "ScatterElements", "[3]", "[4]");
});

Deno.test("values from two graphs cannot meet in one node", () => {
  const [a] = inputs([[2]]);
  const [b] = inputs([[2]]);
  rejects(() => op.add(a, b), "Add", "different graphs");
  rejects(() => op.concat([a, b], 0), "Concat", "different graphs");
  assert.throws(() => a.graph.output(b), GraphError);
});
