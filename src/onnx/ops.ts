/**
 * Builders for the standard ONNX ops our models, losses and optimizers use. Each infers the
 * output's element type and shape and checks its inputs, so a wrong graph fails here with the op's
 * name and the shapes involved, not later inside ONNX Runtime.
 *
 * The shape ops (reshape, concat, slice, expand, ...) live in `shape_ops.ts` and are re-exported
 * here; they keep symbolic shapes exact (see `dims.ts`).
 *
 * All builders take {@link Value}s of one graph and return new ones. Axes may be negative.
 *
 * @module
 */

import { type DType, ONNX_DTYPE_CODE } from "./dtype.ts";
import { attr, type Attribute, type Dim, formatShape, type Value } from "./graph.ts";
import { broadcastShapes, fail, normAxis, requireFloat, sameDtype, sameGraph } from "./_op_checks.ts";

export { broadcastShapes, normAxis } from "./_op_checks.ts";
export * from "./shape_ops.ts";

function unary(op: string, x: Value, attributes: Record<string, Attribute> = {}): Value {
  requireFloat(op, x);
  return x.graph.addNode(op, [x], [{ dtype: x.dtype, shape: x.shape }], attributes)[0];
}

function binary(op: string, a: Value, b: Value): Value {
  sameGraph(op, [a, b]);
  const dtype = sameDtype(op, [a, b]);
  return a.graph.addNode(op, [a, b], [{ dtype, shape: broadcastShapes(op, a.shape, b.shape) }])[0];
}

function compare(op: string, a: Value, b: Value): Value {
  sameGraph(op, [a, b]);
  sameDtype(op, [a, b]);
  return a.graph.addNode(op, [a, b], [{ dtype: "bool", shape: broadcastShapes(op, a.shape, b.shape) }])[0];
}

// ---------------------------------------------------------------- elementwise

/** a + b with broadcasting. */
export const add = (a: Value, b: Value): Value => binary("Add", a, b);
/** a - b with broadcasting. */
export const sub = (a: Value, b: Value): Value => binary("Sub", a, b);
/** a * b with broadcasting. */
export const mul = (a: Value, b: Value): Value => binary("Mul", a, b);
/** a / b with broadcasting. */
export const div = (a: Value, b: Value): Value => binary("Div", a, b);
/** a ** b with broadcasting (float base and exponent of the same type). */
export const pow = (a: Value, b: Value): Value => binary("Pow", a, b);
/** Elementwise maximum of two tensors. */
export const max = (a: Value, b: Value): Value => binary("Max", a, b);
/** Elementwise minimum of two tensors. */
export const min = (a: Value, b: Value): Value => binary("Min", a, b);
/** -x. */
export const neg = (x: Value): Value => x.graph.addNode("Neg", [x], [{ dtype: x.dtype, shape: x.shape }])[0];
/** |x|. */
export const abs = (x: Value): Value => x.graph.addNode("Abs", [x], [{ dtype: x.dtype, shape: x.shape }])[0];
/** e^x. */
export const exp = (x: Value): Value => unary("Exp", x);
/** Natural log. */
export const log = (x: Value): Value => unary("Log", x);
/** Square root. */
export const sqrt = (x: Value): Value => unary("Sqrt", x);
/** 1 / x. */
export const reciprocal = (x: Value): Value => unary("Reciprocal", x);
/** tanh(x). */
export const tanh = (x: Value): Value => unary("Tanh", x);
/** 1 / (1 + e^-x). */
export const sigmoid = (x: Value): Value => unary("Sigmoid", x);
/** The error function. */
export const erf = (x: Value): Value => unary("Erf", x);
/** max(x, 0). */
export const relu = (x: Value): Value => unary("Relu", x);
/** cos(x). */
export const cos = (x: Value): Value => unary("Cos", x);
/** sin(x). */
export const sin = (x: Value): Value => unary("Sin", x);
/** Identity (a copy, under `name` when given). */
export const identity = (x: Value, name?: string): Value =>
  x.graph.addNode("Identity", [x], [{ dtype: x.dtype, shape: x.shape, name }])[0];

/** a == b (bool). */
export const equal = (a: Value, b: Value): Value => compare("Equal", a, b);
/** a < b (bool). */
export const less = (a: Value, b: Value): Value => compare("Less", a, b);
/** a > b (bool). */
export const greater = (a: Value, b: Value): Value => compare("Greater", a, b);
/** Logical not of a bool tensor. */
export function not(x: Value): Value {
  if (x.dtype !== "bool") fail("Not", `input must be bool, got ${x.dtype}`);
  return x.graph.addNode("Not", [x], [{ dtype: "bool", shape: x.shape }])[0];
}

/** cond ? a : b, broadcasting all three. */
export function where(cond: Value, a: Value, b: Value): Value {
  sameGraph("Where", [cond, a, b]);
  if (cond.dtype !== "bool") fail("Where", `condition must be bool, got ${cond.dtype}`);
  const dtype = sameDtype("Where", [a, b]);
  const shape = broadcastShapes("Where", cond.shape, a.shape, b.shape);
  return cond.graph.addNode("Where", [cond, a, b], [{ dtype, shape }])[0];
}

/** Converts the element type. */
export function cast(x: Value, to: DType): Value {
  if (x.dtype === to) return x;
  return x.graph.addNode("Cast", [x], [{ dtype: to, shape: x.shape }], { to: attr.int(ONNX_DTYPE_CODE[to]) })[0];
}

/** Clamps into [lo, hi] (either bound may be omitted). */
export function clip(x: Value, lo?: number, hi?: number): Value {
  const g = x.graph;
  const l = lo === undefined ? null : g.scalar(lo, x.dtype);
  const h = hi === undefined ? null : g.scalar(hi, x.dtype);
  return g.addNode("Clip", [x, l, h], [{ dtype: x.dtype, shape: x.shape }])[0];
}

// ---------------------------------------------------------------- linear algebra

/** numpy matmul: batched, with broadcasting of the batch dims; 1-D operands are promoted. */
export function matmul(a: Value, b: Value): Value {
  const op = "MatMul";
  sameGraph(op, [a, b]);
  const dtype = sameDtype(op, [a, b]);
  if (a.shape.length === 0 || b.shape.length === 0) fail(op, "operands must have rank >= 1");
  const as = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
  const bs = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
  const k1 = as[as.length - 1], k2 = bs[bs.length - 2];
  if (k1 !== k2 && k1 !== undefined) {
    fail(op, `inner dimensions differ: [${formatShape(a.shape)}] x [${formatShape(b.shape)}]`);
  }
  const batch = broadcastShapes(op, as.slice(0, -2), bs.slice(0, -2));
  const out: Dim[] = [...batch];
  if (a.shape.length > 1) out.push(as[as.length - 2]);
  if (b.shape.length > 1) out.push(bs[bs.length - 1]);
  return a.graph.addNode(op, [a, b], [{ dtype, shape: out }])[0];
}

/** Options of {@link gemm}. */
export interface GemmOptions {
  alpha?: number;
  beta?: number;
  transA?: boolean;
  transB?: boolean;
}

/** alpha * A' B' + beta * C on 2-D operands (C broadcast to the result). */
export function gemm(a: Value, b: Value, c: Value | null = null, o: GemmOptions = {}): Value {
  const op = "Gemm";
  sameGraph(op, c ? [a, b, c] : [a, b]);
  const dtype = sameDtype(op, c ? [a, b, c] : [a, b]);
  const shapes = () => `[${formatShape(a.shape)}] x [${formatShape(b.shape)}]`;
  if (a.shape.length !== 2 || b.shape.length !== 2) fail(op, `A and B must be 2-D, got ${shapes()}`);
  const [m, k1] = o.transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [k2, n] = o.transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (k1 !== k2) fail(op, `inner dimensions differ: ${k1} vs ${k2} in ${shapes()}`);
  // C broadcasts one way only: to [m, n], never the result to C.
  if (c && (c.shape.length > 2 || broadcastShapes(op, c.shape, [m, n]).some((d, i) => d !== [m, n][i]))) {
    fail(op, `C of shape [${formatShape(c.shape)}] does not broadcast to the result [${formatShape([m, n])}]`);
  }
  const attributes: Record<string, Attribute> = {};
  if (o.alpha !== undefined) attributes.alpha = attr.float(o.alpha);
  if (o.beta !== undefined) attributes.beta = attr.float(o.beta);
  if (o.transA) attributes.transA = attr.int(1);
  if (o.transB) attributes.transB = attr.int(1);
  return a.graph.addNode(op, [a, b, c], [{ dtype, shape: [m, n] }], attributes)[0];
}

// ---------------------------------------------------------------- normalization & activations

/** Softmax along one axis (opset 13 semantics). */
export function softmax(x: Value, axis = -1): Value {
  normAxis("Softmax", axis, x.shape.length);
  return unary("Softmax", x, { axis: attr.int(axis) });
}

/** log(softmax(x)) along one axis. */
export function logSoftmax(x: Value, axis = -1): Value {
  normAxis("LogSoftmax", axis, x.shape.length);
  return unary("LogSoftmax", x, { axis: attr.int(axis) });
}

/** LayerNormalization over the trailing axes from `axis` on (opset 17); only the first output. */
export function layerNorm(x: Value, scale: Value, bias: Value | null, axis = -1, epsilon = 1e-5): Value {
  const op = "LayerNormalization";
  const a = normAxis(op, axis, x.shape.length);
  const normShape = x.shape.slice(a);
  broadcastShapes(op, normShape, scale.shape);
  if (bias) broadcastShapes(op, normShape, bias.shape);
  sameDtype(op, bias ? [x, scale, bias] : [x, scale]);
  return x.graph.addNode(op, [x, scale, bias], [{ dtype: x.dtype, shape: x.shape }], {
    axis: attr.int(axis),
    epsilon: attr.float(epsilon),
  })[0];
}

// ---------------------------------------------------------------- reductions

function reduce(op: string, x: Value, axes: readonly number[], keepdims: boolean): Value {
  const rank = x.shape.length;
  const norm = [...new Set(axes.map((a) => normAxis(op, a, rank)))].sort((p, q) => p - q);
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (norm.includes(i)) {
      if (keepdims) shape.push(1);
    } else shape.push(d);
  });
  const g = x.graph;
  if (norm.length === 0) return identity(x);
  return g.addNode(op, [x, g.int64s(norm)], [{ dtype: x.dtype, shape }], { keepdims: attr.int(keepdims ? 1 : 0) })[0];
}

/** Sum over axes. */
export const reduceSum = (x: Value, axes: readonly number[], keepdims = false): Value =>
  reduce("ReduceSum", x, axes, keepdims);
/** Mean over axes. */
export const reduceMean = (x: Value, axes: readonly number[], keepdims = false): Value =>
  reduce("ReduceMean", x, axes, keepdims);
/** Max over axes. */
export const reduceMax = (x: Value, axes: readonly number[], keepdims = false): Value =>
  reduce("ReduceMax", x, axes, keepdims);
/** Product over axes. */
export const reduceProd = (x: Value, axes: readonly number[], keepdims = false): Value =>
  reduce("ReduceProd", x, axes, keepdims);
/** log(sum(exp(x))) over axes. */
export const reduceLogSumExp = (x: Value, axes: readonly number[], keepdims = false): Value =>
  reduce("ReduceLogSumExp", x, axes, keepdims);

/** Gathers slices of `data` along `axis` at integer `indices`. */
export function gather(data: Value, indices: Value, axis = 0): Value {
  const op = "Gather";
  if (indices.dtype !== "int64" && indices.dtype !== "int32") fail(op, `indices must be int64/int32`);
  const a = normAxis(op, axis, data.shape.length);
  const shape = [...data.shape.slice(0, a), ...indices.shape, ...data.shape.slice(a + 1)];
  return data.graph.addNode(op, [data, indices], [{ dtype: data.dtype, shape }], { axis: attr.int(axis) })[0];
}

/** Elementwise gather: out[i][j] = data[index[i][j]][j] (for axis 0), shaped like indices. */
export function gatherElements(data: Value, indices: Value, axis = 0): Value {
  const op = "GatherElements";
  if (indices.shape.length !== data.shape.length) fail(op, "data and indices must have the same rank");
  normAxis(op, axis, data.shape.length);
  return data.graph.addNode(op, [data, indices], [{ dtype: data.dtype, shape: indices.shape }], {
    axis: attr.int(axis),
  })[0];
}

/** ScatterElements with optional reduction ("add" makes it the adjoint of GatherElements). */
export function scatterElements(
  data: Value,
  indices: Value,
  updates: Value,
  axis = 0,
  reduction: "none" | "add" = "none",
): Value {
  const op = "ScatterElements";
  sameDtype(op, [data, updates]);
  normAxis(op, axis, data.shape.length);
  const [ds, is, us] = [data, indices, updates].map((v) => formatShape(v.shape));
  if (indices.shape.length !== data.shape.length || is !== us) {
    fail(op, `indices [${is}] and updates [${us}] must have one shape, of the rank of data [${ds}]`);
  }
  const attributes: Record<string, Attribute> = { axis: attr.int(axis) };
  if (reduction !== "none") attributes.reduction = attr.string(reduction);
  return data.graph.addNode(op, [data, indices, updates], [{ dtype: data.dtype, shape: data.shape }], attributes)[0];
}

/** ScatterND with optional reduction. */
export function scatterND(data: Value, indices: Value, updates: Value, reduction: "none" | "add" = "none"): Value {
  const attributes: Record<string, Attribute> = {};
  if (reduction !== "none") attributes.reduction = attr.string(reduction);
  return data.graph.addNode("ScatterND", [data, indices, updates], [{ dtype: data.dtype, shape: data.shape }], {
    ...attributes,
  })[0];
}

/** Cumulative sum along an axis. */
export function cumsum(x: Value, axis: number, exclusive = false, reverse = false): Value {
  normAxis("CumSum", axis, x.shape.length);
  const g = x.graph;
  const attributes: Record<string, Attribute> = {};
  if (exclusive) attributes.exclusive = attr.int(1);
  if (reverse) attributes.reverse = attr.int(1);
  return g.addNode("CumSum", [x, g.scalar(axis, "int64")], [{ dtype: x.dtype, shape: x.shape }], attributes)[0];
}

/** Index of the maximum along an axis (int64). */
export function argMax(x: Value, axis = -1, keepdims = false): Value {
  const a = normAxis("ArgMax", axis, x.shape.length);
  const shape = keepdims ? x.shape.map((d, i) => (i === a ? 1 : d)) : x.shape.filter((_, i) => i !== a);
  return x.graph.addNode("ArgMax", [x], [{ dtype: "int64", shape }], {
    axis: attr.int(axis),
    keepdims: attr.int(keepdims ? 1 : 0),
  })[0];
}

/** The k largest values and their indices along an axis. */
export function topK(x: Value, k: number, axis = -1): [Value, Value] {
  const a = normAxis("TopK", axis, x.shape.length);
  const d = x.shape[a];
  if (!Number.isInteger(k) || k < 0 || (typeof d === "number" && k > d)) {
    fail("TopK", `k = ${k} is not in [0, ${d}] for axis ${axis} of [${formatShape(x.shape)}]`);
  }
  const shape = x.shape.map((d, i) => (i === a ? k : d));
  const g = x.graph;
  const [v, i] = g.addNode("TopK", [x, g.int64s([k])], [{ dtype: x.dtype, shape }, { dtype: "int64", shape }], {
    axis: attr.int(axis),
  });
  return [v, i];
}

/** Lower (upper = false) or upper triangle of the last two axes, offset by k. */
export function trilu(x: Value, upper: boolean, k = 0): Value {
  if (x.shape.length < 2) fail("Trilu", `input must have rank >= 2, got [${formatShape(x.shape)}]`);
  const g = x.graph;
  return g.addNode("Trilu", [x, g.scalar(k, "int64")], [{ dtype: x.dtype, shape: x.shape }], {
    upper: attr.int(upper ? 1 : 0),
  })[0];
}
