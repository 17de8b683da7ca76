/**
 * The gradient-check cases of every rule, shared by the wasm (float64) and WebGPU (float32) tests.
 * Typed over every DifferentiableOp, so a rule without cases does not compile.
 *
 * A case declares its inputs (declared shape, possibly symbolic, and the dims fed at run time) and
 * builds one output from them. Float inputs are differentiated; int64 and bool inputs are fed
 * random indices / masks.
 */

import { type DType, ONNX_DTYPE_CODE } from "../../src/onnx/dtype.ts";
import { attr, type Dim, type Graph, type Value } from "../../src/onnx/graph.ts";
import * as op from "../../src/onnx/ops.ts";
import type { DifferentiableOp } from "../../src/autodiff/mod.ts";

/** One input of a case. */
export interface InputSpec {
  /** Declared shape (may hold symbolic dims). */
  shape: Dim[];
  /** Dims fed at run time (default: `shape`, which must then be static). */
  dims?: number[];
  /** "normal" (default), "positive" in [0.5, 2], int64 "index" in [0, max), or "bool". */
  kind?: "normal" | "positive" | "index" | "bool";
  /** Exclusive upper bound of indices. */
  max?: number;
  /** Element type of a float input when it must differ from the case's (Cast). */
  dtype?: DType;
}

/** One gradient check configuration. */
export interface RuleCase {
  name: string;
  inputs: InputSpec[];
  build: (xs: Value[], g: Graph) => Value;
  /** Run in float32 even on wasm (no float64 kernel, e.g. Erf). */
  float32Only?: boolean;
  /**
   * What the case needs beyond float32: float64 (not on the WebGPU EP) or the `shader-f16` feature
   * (a float16 value on WebGPU).
   */
  requires?: "float64" | "shader-f16";
  /** Finite-difference step, for cases whose function is linear up to rounding (see Cast). */
  fdStep?: number;
  /** Relative and absolute tolerance of the check, where the case's own rounding is larger. */
  fdTol?: number;
}

const n = (shape: Dim[], dims?: number[]): InputSpec => ({ shape, dims });
const pos = (shape: Dim[], dims?: number[]): InputSpec => ({ shape, dims, kind: "positive" });
const idx = (shape: Dim[], max: number, dims?: number[]): InputSpec => ({ shape, dims, kind: "index", max });

const unaryCases = (f: (x: Value) => Value, positive = false): RuleCase[] => [
  { name: "[2,3]", inputs: [positive ? pos([2, 3]) : n([2, 3])], build: ([x]) => f(x) },
  { name: "[b,4]", inputs: [positive ? pos(["b", 4], [3, 4]) : n(["b", 4], [3, 4])], build: ([x]) => f(x) },
];

const binaryCases = (f: (a: Value, b: Value) => Value, positiveB = false): RuleCase[] => {
  const b = (shape: Dim[], dims?: number[]) => (positiveB ? pos(shape, dims) : n(shape, dims));
  return [
    { name: "same", inputs: [n([2, 3]), b([2, 3])], build: ([x, y]) => f(x, y) },
    { name: "row", inputs: [n([2, 3]), b([3])], build: ([x, y]) => f(x, y) },
    { name: "outer", inputs: [n([2, 1, 4]), b([3, 1])], build: ([x, y]) => f(x, y) },
    { name: "scalar", inputs: [n([]), b([2, 3])], build: ([x, y]) => f(x, y) },
    { name: "symbolic", inputs: [n(["b", 3], [2, 3]), b([1, 3])], build: ([x, y]) => f(x, y) },
  ];
};

function reduceCases(f: (x: Value, axes: number[], keep: boolean) => Value): RuleCase[] {
  return [
    { name: "axis1 keep", inputs: [n([3, 4])], build: ([x]) => f(x, [1], true) },
    { name: "axes0,2", inputs: [n([2, 3, 4])], build: ([x]) => f(x, [0, 2], false) },
    { name: "all", inputs: [n([2, 3])], build: ([x]) => f(x, [0, 1], false) },
    { name: "symbolic", inputs: [n(["b", 3], [4, 3])], build: ([x]) => f(x, [0], false) },
  ];
}

/** Max/Min/etc with n operands through addNode (the builders take two). */
function variadic(opName: string, xs: Value[]): Value {
  const shape = op.broadcastShapes(opName, ...xs.map((x) => x.shape));
  return xs[0].graph.addNode(opName, xs, [{ dtype: xs[0].dtype, shape }])[0];
}

/** Every rule's cases. */
export const CASES: { [Op in DifferentiableOp]: RuleCase[] } = {
  Abs: unaryCases(op.abs),
  Add: binaryCases(op.add),
  Cast: [{
    name: "f64->f32->f64",
    inputs: [{ shape: [2, 3], dtype: "float32" }],
    build: ([x]) => {
      const y = op.cast(x, "float64");
      return op.mul(y, y);
    },
    requires: "float64",
  }, {
    name: "f32->f64",
    inputs: [{ shape: [3], dtype: "float32" }],
    build: ([x]) => op.cast(op.mul(x, x), "float64"),
    requires: "float64",
  }, {
    // A Cast node to the same type (legal ONNX; op.cast would skip it): its rule in float32.
    name: "same type",
    inputs: [n([2, 3])],
    build: ([x], g) =>
      op.mul(
        g.addNode("Cast", [x], [{ dtype: x.dtype, shape: x.shape }], { to: attr.int(ONNX_DTYPE_CODE[x.dtype]) })[0],
        x,
      ),
  }, {
    // x -> float16 -> float32 is the identity up to float16 rounding (2^-11 relative), a staircase at
    // fine scale: a step of 8 (>> |x|) sees it as the line it approximates. The rounding of x ± 8d
    // then costs up to 2^-11 Σ|v d| in the difference: measured 9.6e-4 of the derivative on WebGPU
    // over 40 draws, held to 1e-2.
    name: "f32->f16->f32",
    inputs: [{ shape: [2, 3], dtype: "float32" }],
    build: ([x]) => op.cast(op.cast(x, "float16"), "float32"),
    requires: "shader-f16",
    fdStep: 8,
    fdTol: 1e-2,
  }],
  Clip: [
    { name: "both", inputs: [n([3, 4])], build: ([x]) => op.clip(x, -0.5, 0.5) },
    { name: "lo only", inputs: [n(["b", 4], [2, 4])], build: ([x]) => op.clip(x, 0.1) },
    {
      name: "bound inputs",
      inputs: [n([3, 4]), pos([]), pos([])],
      build: ([x, lo, hi], g) => {
        const l = op.neg(lo); // lo < 0 < hi: Clip with lo > hi is a different function
        return g.addNode("Clip", [x, l, hi], [{ dtype: x.dtype, shape: x.shape }])[0];
      },
    },
  ],
  Concat: [
    { name: "axis0", inputs: [n([2, 3]), n([1, 3])], build: ([a, b]) => op.concat([a, b], 0) },
    { name: "axis1 x3", inputs: [n([2, 1]), n([2, 3]), n([2, 2])], build: (xs) => op.concat(xs, 1) },
    { name: "symbolic", inputs: [n(["b", 3], [2, 3]), n([2, 3])], build: ([a, b]) => op.concat([a, b], 0) },
  ],
  CumSum: [
    { name: "axis1", inputs: [n([3, 4])], build: ([x]) => op.cumsum(x, 1) },
    { name: "reverse exclusive", inputs: [n([3, 4])], build: ([x]) => op.cumsum(x, 0, true, true) },
  ],
  Div: binaryCases(op.div, true),
  Erf: unaryCases(op.erf).map((c) => ({ ...c, float32Only: true })),
  Exp: unaryCases(op.exp),
  Expand: [
    { name: "[3,1]->[2,3,4]", inputs: [n([3, 1])], build: ([x]) => op.expand(x, [2, 3, 4]) },
    { name: "scalar", inputs: [n([])], build: ([x]) => op.expand(x, [2, 3]) },
    { name: "symbolic", inputs: [n(["b", 1], [2, 1])], build: ([x]) => op.expand(x, ["b", 3]) },
  ],
  Gather: [
    { name: "rows", inputs: [n([5, 3]), idx([6], 5)], build: ([x, i]) => op.gather(x, i, 0) },
    { name: "axis1 2-D idx", inputs: [n([3, 4, 2]), idx([2, 2], 4)], build: ([x, i]) => op.gather(x, i, 1) },
    { name: "scalar idx", inputs: [n([4, 3]), idx([], 4)], build: ([x, i]) => op.gather(x, i, 0) },
    {
      name: "embedding [b,s]",
      inputs: [n([6, 3]), idx(["b", "s"], 6, [2, 4])],
      build: ([x, i]) => op.gather(x, i, 0),
    },
  ],
  GatherElements: [
    { name: "axis1", inputs: [n([3, 4]), idx([3, 2], 4)], build: ([x, i]) => op.gatherElements(x, i, 1) },
    { name: "axis0", inputs: [n([3, 4]), idx([5, 4], 3)], build: ([x, i]) => op.gatherElements(x, i, 0) },
  ],
  Gemm: [
    { name: "plain", inputs: [n([2, 3]), n([3, 4]), n([4])], build: ([a, b, c]) => op.gemm(a, b, c) },
    {
      name: "transA alpha beta",
      inputs: [n([3, 2]), n([3, 4]), n([2, 4])],
      build: ([a, b, c]) => op.gemm(a, b, c, { transA: true, alpha: 0.5, beta: 2 }),
    },
    {
      name: "transB",
      inputs: [n([2, 3]), n([4, 3]), n([1, 4])],
      build: ([a, b, c]) => op.gemm(a, b, c, { transB: true }),
    },
    {
      name: "transA transB no C",
      inputs: [n([3, 2]), n([4, 3])],
      build: ([a, b]) => op.gemm(a, b, null, { transA: true, transB: true, alpha: -1.5 }),
    },
  ],
  Identity: unaryCases(op.identity),
  LayerNormalization: [
    {
      name: "last axis",
      inputs: [n([2, 3, 4]), n([4]), n([4])],
      build: ([x, s, b]) => op.layerNorm(x, s, b, -1, 1e-5),
    },
    { name: "axis1 no bias", inputs: [n([2, 3, 4]), n([3, 4])], build: ([x, s]) => op.layerNorm(x, s, null, 1) },
    {
      name: "symbolic",
      inputs: [n(["b", 5], [3, 5]), n([5]), n([5])],
      build: ([x, s, b]) => op.layerNorm(x, s, b, -1, 1e-3),
    },
  ],
  Log: unaryCases(op.log, true),
  LogSoftmax: [
    { name: "last", inputs: [n([2, 3, 4])], build: ([x]) => op.logSoftmax(x, -1) },
    { name: "axis0", inputs: [n([3, 4])], build: ([x]) => op.logSoftmax(x, 0) },
    { name: "symbolic", inputs: [n(["b", 5], [2, 5])], build: ([x]) => op.logSoftmax(x, -1) },
  ],
  MatMul: [
    { name: "2-D", inputs: [n([3, 4]), n([4, 2])], build: ([a, b]) => op.matmul(a, b) },
    { name: "linear", inputs: [n([2, 3, 4]), n([4, 5])], build: ([a, b]) => op.matmul(a, b) },
    { name: "broadcast batch", inputs: [n([2, 1, 3, 4]), n([3, 4, 2])], build: ([a, b]) => op.matmul(a, b) },
    { name: "1-D left", inputs: [n([4]), n([2, 4, 3])], build: ([a, b]) => op.matmul(a, b) },
    { name: "1-D right", inputs: [n([2, 3, 4]), n([4])], build: ([a, b]) => op.matmul(a, b) },
    { name: "1-D both", inputs: [n([4]), n([4])], build: ([a, b]) => op.matmul(a, b) },
    { name: "symbolic linear", inputs: [n(["b", 3, 4], [2, 3, 4]), n([4, 2])], build: ([a, b]) => op.matmul(a, b) },
  ],
  Max: [
    ...binaryCases(op.max).slice(0, 2),
    { name: "three", inputs: [n([2, 3]), n([3]), n([2, 1])], build: (xs) => variadic("Max", xs) },
  ],
  Min: [
    ...binaryCases(op.min).slice(0, 2),
    { name: "three", inputs: [n([2, 3]), n([3]), n([2, 1])], build: (xs) => variadic("Min", xs) },
  ],
  Mul: binaryCases(op.mul),
  Neg: unaryCases(op.neg),
  Pow: [
    { name: "both", inputs: [pos([2, 3]), n([3])], build: ([a, b]) => op.pow(a, b) },
    { name: "square", inputs: [n([2, 3])], build: ([a], g) => op.pow(a, g.scalar(2, a.dtype)) },
    { name: "cube", inputs: [n([4])], build: ([a], g) => op.pow(a, g.scalar(3, a.dtype)) },
  ],
  Reciprocal: unaryCases(op.reciprocal, true),
  ReduceLogSumExp: reduceCases(op.reduceLogSumExp),
  ReduceMax: reduceCases(op.reduceMax),
  ReduceMean: [
    ...reduceCases(op.reduceMean),
    { name: "symbolic axes", inputs: [n(["b", "s", 2], [2, 3, 2])], build: ([x]) => op.reduceMean(x, [0, 1], true) },
    {
      // The RMS norm our Llama models emit: x * 1/sqrt(mean(x^2) + eps) * w.
      name: "rms norm composite",
      inputs: [n(["b", "s", 4], [2, 3, 4]), n([4])],
      build: ([x, w], g) => {
        const ms = op.reduceMean(op.pow(x, g.scalar(2, x.dtype)), [-1], true);
        return op.mul(op.mul(x, op.reciprocal(op.sqrt(op.add(ms, g.scalar(1e-6, x.dtype))))), w);
      },
    },
  ],
  ReduceMin: reduceCases((x, a, k) =>
    x.graph.addNode("ReduceMin", [x, x.graph.int64s(a)], [{
      dtype: x.dtype,
      shape: op.reduceMax(x, a, k).shape,
    }], { keepdims: { type: "int", value: k ? 1 : 0 } })[0]
  ),
  ReduceSum: reduceCases(op.reduceSum),
  Relu: unaryCases(op.relu),
  Reshape: [
    { name: "[2,3,4]->[6,4]", inputs: [n([2, 3, 4])], build: ([x]) => op.reshape(x, [6, 4]) },
    { name: "copy dim", inputs: [n(["b", 3, 4], [2, 3, 4])], build: ([x]) => op.reshape(x, [0, 12]) },
    { name: "infer", inputs: [n(["b", 3, 4], [2, 3, 4])], build: ([x]) => op.reshape(x, [-1, 4]) },
  ],
  Sigmoid: unaryCases(op.sigmoid),
  Slice: [
    { name: "rows", inputs: [n([4, 5])], build: ([x]) => op.slice(x, [1], [3], [0]) },
    { name: "step2", inputs: [n([4, 6])], build: ([x]) => op.slice(x, [1, 0], [6, 3], [1, 0], [2, 1]) },
    { name: "negative step", inputs: [n([5, 2])], build: ([x]) => op.slice(x, [-1], [-6], [0], [-2]) },
    { name: "logits[:, :-1]", inputs: [n(["b", "s", 3], [2, 4, 3])], build: ([x]) => op.slice(x, [0], [-1], [1]) },
    { name: "tail on symbolic", inputs: [n(["s", 2], [5, 2])], build: ([x]) => op.slice(x, [-2], [1000], [0]) },
  ],
  Softmax: [
    { name: "last", inputs: [n([2, 3, 4])], build: ([x]) => op.softmax(x, -1) },
    { name: "axis0", inputs: [n([3, 4])], build: ([x]) => op.softmax(x, 0) },
    { name: "symbolic", inputs: [n(["b", 5], [2, 5])], build: ([x]) => op.softmax(x, -1) },
  ],
  Split: [
    {
      name: "unused piece",
      inputs: [n([2, 6])],
      build: ([x]) => {
        const [p0, _p1, p2] = op.split(x, [2, 1, 3], 1);
        return op.concat([p2, op.mul(p0, p0)], 1);
      },
    },
    { name: "axis0", inputs: [n([4, 3])], build: ([x]) => op.split(x, [1, 3], 0)[1] },
  ],
  Sqrt: unaryCases(op.sqrt, true),
  Squeeze: [
    { name: "[2,1,3]", inputs: [n([2, 1, 3])], build: ([x]) => op.squeeze(x, [1]) },
    { name: "symbolic", inputs: [n(["b", 1], [3, 1])], build: ([x]) => op.squeeze(x, [-1]) },
  ],
  Sub: binaryCases(op.sub),
  Tanh: unaryCases(op.tanh),
  Transpose: [
    { name: "perm", inputs: [n([2, 3, 4])], build: ([x]) => op.transpose(x, [2, 0, 1]) },
    { name: "default", inputs: [n(["b", 3], [2, 3])], build: ([x]) => op.transpose(x) },
  ],
  Trilu: [
    { name: "lower", inputs: [n([3, 3])], build: ([x]) => op.trilu(x, false) },
    { name: "upper k=1", inputs: [n([2, 4, 4])], build: ([x]) => op.trilu(x, true, 1) },
  ],
  Unsqueeze: [
    { name: "[2,3]", inputs: [n([2, 3])], build: ([x]) => op.unsqueeze(x, [0, 2]) },
    { name: "symbolic", inputs: [n(["b", 3], [2, 3])], build: ([x]) => op.unsqueeze(x, [-1]) },
  ],
  Where: [
    {
      name: "broadcast b",
      inputs: [{ shape: [2, 3], kind: "bool" }, n([2, 3]), n([3])],
      build: ([c, a, b]) => op.where(c, a, b),
    },
    {
      name: "broadcast cond",
      inputs: [{ shape: [3], kind: "bool" }, n([2, 3]), n([])],
      build: ([c, a, b]) => op.where(c, a, b),
    },
  ],
};
