/**
 * Builders for the standard ONNX ops our models, losses and optimizers use. Each infers the
 * output's element type and shape and checks its inputs, so a wrong graph fails here with the op's
 * name and the shapes involved, not later inside ONNX Runtime.
 *
 * All builders take {@link Value}s of one graph and return new ones. Axes may be negative.
 *
 * @module
 */

import { type DType, isFloat, ONNX_DTYPE_CODE } from "./dtype.ts";
import { attr, type Attribute, type Dim, formatShape, GraphError, type Shape, type Value } from "./graph.ts";

function fail(op: string, message: string): never {
  throw new GraphError(`${op}: ${message}`);
}

function sameGraph(op: string, values: readonly Value[]): void {
  const g = values[0].graph;
  for (const v of values) if (v.graph !== g) fail(op, `inputs come from different graphs`);
}

function sameDtype(op: string, values: readonly Value[]): DType {
  const t = values[0].dtype;
  for (const v of values) {
    if (v.dtype !== t) fail(op, `element types differ: ${values.map((x) => `${x.name}:${x.dtype}`).join(", ")}`);
  }
  return t;
}

function requireFloat(op: string, v: Value): void {
  if (!isFloat(v.dtype)) fail(op, `${v.name} must be a float tensor, got ${v.dtype}`);
}

/** Normalizes a possibly negative axis against a rank, with a clear error when out of range. */
export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) fail(op, `axis ${axis} is out of range for rank ${rank}`);
  return a;
}

let symCounter = 0;
/** A fresh symbolic dimension for sizes only known at run time. */
function freshDim(hint: string): string {
  return `${hint}_${symCounter++}`;
}

/** Numpy-style broadcast of shapes; symbolic dims must match by name unless the other is 1. */
export function broadcastShapes(op: string, ...shapes: Shape[]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const k = s.length - rank + i;
      if (k < 0) continue;
      const e = s[k];
      if (e === 1) continue;
      if (d === 1) d = e;
      else if (d !== e) {
        fail(op, `shapes [${shapes.map(formatShape).join("] and [")}] do not broadcast (axis ${i}: ${d} vs ${e})`);
      }
    }
    out.push(d);
  }
  return out;
}

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
/** Identity (a copy under a new name). */
export const identity = (x: Value): Value => x.graph.addNode("Identity", [x], [{ dtype: x.dtype, shape: x.shape }])[0];

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
/** log(sum(exp(x))) over axes. */
export const reduceLogSumExp = (x: Value, axes: readonly number[], keepdims = false): Value =>
  reduce("ReduceLogSumExp", x, axes, keepdims);

// ---------------------------------------------------------------- shape manipulation

/**
 * Reshape to a static target (with ONNX's 0 = copy and -1 = infer) or to a runtime shape tensor.
 * A static target must keep the element count when it is known.
 */
export function reshape(x: Value, shape: readonly Dim[] | Value): Value {
  const op = "Reshape";
  const g = x.graph;
  if (!Array.isArray(shape)) {
    const s = shape as Value;
    if (s.dtype !== "int64" || s.shape.length !== 1) fail(op, "a runtime shape must be a 1-D int64 tensor");
    const rank = s.shape[0];
    const out: Dim[] = typeof rank === "number"
      ? Array.from({ length: rank }, () => freshDim("reshape"))
      : fail(op, "the runtime shape's length must be static");
    return g.addNode(op, [x, s], [{ dtype: x.dtype, shape: out }])[0];
  }
  const target = shape as readonly Dim[];
  const out: Dim[] = target.map((d, i) => (d === 0 ? x.shape[i] : d));
  const symbolic = out.filter((d) => typeof d === "string");
  const inferAt = out.indexOf(-1);
  if (out.filter((d) => d === -1).length > 1) fail(op, "at most one -1 is allowed");
  const known = (s: readonly Dim[]) => s.filter((d) => typeof d === "number" && d !== -1) as number[];
  if (symbolic.length === 0 && x.shape.every((d) => typeof d === "number")) {
    const total = x.shape.reduce((a: number, b) => a * (b as number), 1);
    const prod = known(out).reduce((a, b) => a * b, 1);
    if (inferAt >= 0) {
      if (prod === 0 || total % prod !== 0) fail(op, `cannot reshape [${formatShape(x.shape)}] to [${target}]`);
      out[inferAt] = total / prod;
    } else if (prod !== total) {
      fail(op, `cannot reshape [${formatShape(x.shape)}] (${total} elements) to [${target}] (${prod})`);
    }
  } else if (inferAt >= 0) {
    out[inferAt] = freshDim("reshape");
  }
  // Symbolic dims cannot be written into a constant shape: use 0 (copy) where the input has the same
  // symbol at the same axis, else the runtime shape is built from Shape(x) pieces.
  const constTarget: number[] = [];
  let needsRuntime = false;
  out.forEach((d, i) => {
    if (typeof d === "number") constTarget.push(target[i] === -1 ? -1 : d);
    else if (x.shape[i] === d) constTarget.push(0);
    else if (target[i] === -1) constTarget.push(-1);
    else needsRuntime = true;
  });
  if (needsRuntime) {
    const parts = out.map((d, i) => {
      // The -1 slot may hold a fresh symbol that occurs nowhere in the input: keep it -1.
      if (target[i] === -1) return g.int64s([-1]);
      if (typeof d === "number") return g.int64s([d]);
      const j = x.shape.indexOf(d);
      if (j < 0) fail(op, `symbolic dim ${JSON.stringify(d)} does not occur in the input shape`);
      return shapeOf(x, j, j + 1);
    });
    const s = concat(parts, 0);
    return g.addNode(op, [x, s], [{ dtype: x.dtype, shape: out }])[0];
  }
  return g.addNode(op, [x, g.int64s(constTarget)], [{ dtype: x.dtype, shape: out }])[0];
}

/** The runtime shape of x (int64), optionally a [start, end) slice of it. */
export function shapeOf(x: Value, start?: number, end?: number): Value {
  const attributes: Record<string, Attribute> = {};
  if (start !== undefined) attributes.start = attr.int(start);
  if (end !== undefined) attributes.end = attr.int(end);
  const r = x.shape.length;
  // ONNX clamps start and end into [0, rank] after adding rank to negative ones.
  const clampPos = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
  const s = start === undefined ? 0 : clampPos(start);
  const e = end === undefined ? r : clampPos(end);
  return x.graph.addNode("Shape", [x], [{ dtype: "int64", shape: [Math.max(0, e - s)] }], attributes)[0];
}

/**
 * `x` unchanged, but only once `dep` has been computed: a Reshape of `x` to its own shape, with the
 * shape read at run time through `dep` (`shape(x) + 0 · shape(dep)[i]`, i a symbolic dim of dep).
 * ORT runs it as an alias (no copy), orders it after `dep`, and can neither constant-fold nor
 * prepack what reads it: a weight used through it is held once, in its stored type, and whatever
 * is derived from it (a float32 cast) lives only around its use.
 */
export function dependOn(x: Value, dep: Value): Value {
  const g = x.graph;
  if (dep.graph !== g) fail("dependOn", `${dep.name} belongs to another graph`);
  if (dep.shape.length === 0) fail("dependOn", `the dependency ${dep.name} must have rank >= 1`);
  const at = Math.max(0, dep.shape.findIndex((d) => typeof d === "string"));
  const zero = g.addNode("Mul", [shapeOf(dep, at, at + 1), g.int64s([0])], [{ dtype: "int64", shape: [1] }])[0];
  const base = x.shape.every((d) => typeof d === "number") ? g.int64s(x.shape as number[]) : shapeOf(x);
  const target = g.addNode("Add", [base, zero], [{ dtype: "int64", shape: [x.shape.length] }])[0];
  return g.addNode("Reshape", [x, target], [{ dtype: x.dtype, shape: x.shape }])[0];
}

/** Permutes axes (default: reverse them). */
export function transpose(x: Value, perm?: readonly number[]): Value {
  const rank = x.shape.length;
  const p = perm ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  if (p.length !== rank || [...p].sort((a, b) => a - b).some((v, i) => v !== i)) {
    fail("Transpose", `perm [${p}] is not a permutation of rank ${rank}`);
  }
  return x.graph.addNode("Transpose", [x], [{ dtype: x.dtype, shape: p.map((i) => x.shape[i]) }], {
    perm: attr.ints(p),
  })[0];
}

/** Removes the given size-1 axes. */
export function squeeze(x: Value, axes: readonly number[]): Value {
  const rank = x.shape.length;
  const norm = axes.map((a) => normAxis("Squeeze", a, rank));
  for (const a of norm) {
    if (x.shape[a] !== 1) fail("Squeeze", `axis ${a} of [${formatShape(x.shape)}] has size ${x.shape[a]}, not 1`);
  }
  if (new Set(norm).size !== norm.length) fail("Squeeze", `axes [${axes}] repeat an axis`);
  // An empty axes input would make ONNX Squeeze remove every size-1 axis: no axes means no change.
  if (norm.length === 0) return identity(x);
  const shape = x.shape.filter((_, i) => !norm.includes(i));
  const g = x.graph;
  return g.addNode("Squeeze", [x, g.int64s(norm)], [{ dtype: x.dtype, shape }])[0];
}

/** Inserts size-1 axes at the given positions of the output. */
export function unsqueeze(x: Value, axes: readonly number[]): Value {
  const outRank = x.shape.length + axes.length;
  const norm = axes.map((a) => normAxis("Unsqueeze", a, outRank)).sort((a, b) => a - b);
  if (new Set(norm).size !== norm.length) fail("Unsqueeze", `axes [${axes}] repeat an axis`);
  // ORT rejects an empty axes input at run time ("Unsqueeze axes is empty") on WebGPU.
  if (norm.length === 0) return identity(x);
  const shape: Dim[] = [];
  let k = 0;
  for (let i = 0; i < outRank; i++) shape.push(norm.includes(i) ? 1 : x.shape[k++]);
  const g = x.graph;
  return g.addNode("Unsqueeze", [x, g.int64s(norm)], [{ dtype: x.dtype, shape }])[0];
}

/** Concatenates along an axis; other dims must agree. */
export function concat(xs: readonly Value[], axis: number): Value {
  const op = "Concat";
  if (xs.length === 0) fail(op, "needs at least one input");
  sameGraph(op, xs);
  const dtype = sameDtype(op, xs);
  const rank = xs[0].shape.length;
  const a = normAxis(op, axis, rank);
  let total: Dim = 0;
  for (const x of xs) {
    if (x.shape.length !== rank) fail(op, `ranks differ: [${xs.map((v) => formatShape(v.shape)).join("] and [")}]`);
    x.shape.forEach((d, i) => {
      if (i !== a && d !== xs[0].shape[i]) {
        fail(op, `shapes [${xs.map((v) => formatShape(v.shape)).join("] and [")}] differ on axis ${i}`);
      }
    });
    const d = x.shape[a];
    total = typeof total === "number" && typeof d === "number" ? total + d : freshDim("concat");
  }
  const shape = [...xs[0].shape];
  shape[a] = total;
  return xs[0].graph.addNode(op, xs, [{ dtype, shape }], { axis: attr.int(axis) })[0];
}

/** Static slice along axes (numpy semantics with clamping; steps default 1). */
export function slice(
  x: Value,
  starts: readonly number[],
  ends: readonly number[],
  axes?: readonly number[],
  steps?: readonly number[],
): Value {
  const op = "Slice";
  const rank = x.shape.length;
  const ax = (axes ?? starts.map((_, i) => i)).map((a) => normAxis(op, a, rank));
  const st = steps ?? starts.map(() => 1);
  if (ends.length !== starts.length || ax.length !== starts.length || st.length !== starts.length) {
    fail(op, "starts, ends, axes and steps must have the same length");
  }
  const shape: Dim[] = [...x.shape];
  // Clamped [start, end] of negative-step axes that start below the last index (see below).
  const reversed = new Map<number, [number, number]>();
  ax.forEach((a, i) => {
    const d = x.shape[a];
    const step = st[i];
    if (step === 0) fail(op, "step 0");
    if (typeof d !== "number") {
      shape[a] = freshDim("slice");
      return;
    }
    const clampIdx = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + d : v, lo), hi);
    if (step > 0) {
      const s = clampIdx(starts[i], 0, d), e = clampIdx(ends[i], 0, d);
      shape[a] = Math.max(0, Math.ceil((e - s) / step));
    } else {
      // ONNX clamps a negative-step start into [0, d - 1] but its end into [-1, d - 1].
      const s = clampIdx(starts[i], 0, d - 1), e = clampIdx(ends[i], -1, d - 1);
      shape[a] = Math.max(0, Math.ceil((e - s) / step));
      if (s < d - 1 && e < s) reversed.set(i, [s, e]);
    }
  });
  const g = x.graph;
  if (reversed.size === 0) {
    return g.addNode(op, [x, g.int64s(starts), g.int64s(ends), g.int64s(ax), g.int64s(st)], [{
      dtype: x.dtype,
      shape,
    }])[0];
  }
  // ORT 1.30's WebGPU Slice ignores the start of a negative-step axis and begins at the last index
  // (x[2::-1] of [10,11,12,13] gives 13,12,11). A reversal that starts at the last index is right
  // everywhere, so reverse those axes first, then step forward: with clamped start s and end e,
  // x[s:e:-k] == reverse(x)[d-1-s : d-1-e : k] along such an axis.
  const revAxes = [...reversed.keys()].map((i) => ax[i]);
  const revDims = revAxes.map((a) => x.shape[a] as number);
  const flipped = g.addNode(op, [
    x,
    g.int64s(revDims.map((d) => d - 1)),
    g.int64s(revDims.map((d) => -d - 1)),
    g.int64s(revAxes),
    g.int64s(revDims.map(() => -1)),
  ], [{ dtype: x.dtype, shape: x.shape }])[0];
  const s2 = [...starts], e2 = [...ends], st2 = [...st];
  for (const [i, [s, e]] of reversed) {
    const d = x.shape[ax[i]] as number;
    [s2[i], e2[i], st2[i]] = [d - 1 - s, d - 1 - e, -st[i]];
  }
  return g.addNode(op, [flipped, g.int64s(s2), g.int64s(e2), g.int64s(ax), g.int64s(st2)], [{
    dtype: x.dtype,
    shape,
  }])[0];
}

/** Splits along an axis into pieces of the given static sizes. */
export function split(x: Value, sizes: readonly number[], axis = 0): Value[] {
  const op = "Split";
  const a = normAxis(op, axis, x.shape.length);
  const d = x.shape[a];
  const total = sizes.reduce((p, q) => p + q, 0);
  if (typeof d === "number" && d !== total) fail(op, `sizes [${sizes}] sum to ${total}, axis ${a} has ${d}`);
  const g = x.graph;
  return g.addNode(
    op,
    [x, g.int64s(sizes)],
    sizes.map((s) => {
      const shape = [...x.shape];
      shape[a] = s;
      return { dtype: x.dtype, shape };
    }),
    { axis: attr.int(axis) },
  );
}

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

/** Broadcasts x to a static shape (numpy rules, may add leading axes). */
export function expand(x: Value, shape: readonly Dim[]): Value {
  const out = broadcastShapes("Expand", x.shape, shape);
  const g = x.graph;
  const target = shape.map((d, i) => {
    if (typeof d === "number") return g.int64s([d]);
    const j = x.shape.length - shape.length + i;
    if (j >= 0 && x.shape[j] === d) return g.int64s([1]);
    fail("Expand", `symbolic dim ${JSON.stringify(d)} must come from the input`);
  });
  const s = shape.every((d) => typeof d === "number") ? g.int64s(shape as number[]) : concat(target, 0);
  return g.addNode("Expand", [x, s], [{ dtype: x.dtype, shape: out }])[0];
}

/** Expands x to the runtime shape of `like` (both shapes must broadcast). */
export function expandAs(x: Value, like: Value): Value {
  const out = broadcastShapes("Expand", x.shape, like.shape);
  return x.graph.addNode("Expand", [x, shapeOf(like)], [{ dtype: x.dtype, shape: out }])[0];
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
