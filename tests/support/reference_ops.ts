/**
 * A float64 reference implementation of every op builder in `src/onnx/ops.ts`, written from the
 * ONNX operator spec (opset 18) with numpy-style broadcasting. Tests compare ONNX Runtime's output
 * against it; it favours obviousness over speed, so keep inputs small.
 *
 * Every tensor is an {@link NdArray}: a shape and row-major float64 data. Integer and bool tensors
 * hold their values as numbers too (bool as 0/1).
 *
 * @module
 */

/** A dense row-major float64 tensor. */
export interface NdArray {
  shape: number[];
  data: Float64Array;
}

/** Number of elements of a shape. */
export function sizeOfShape(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A tensor of the given shape from data (zeros when omitted); checks the element count. */
export function nd(shape: readonly number[], data?: ArrayLike<number>): NdArray {
  const n = sizeOfShape(shape);
  const d = data ? Float64Array.from(data) : new Float64Array(n);
  if (d.length !== n) throw new RangeError(`nd: ${d.length} values for shape [${shape}] (${n})`);
  return { shape: [...shape], data: d };
}

/** A scalar tensor (shape []). */
export function scalar(x: number): NdArray {
  return nd([], [x]);
}

/** Row-major strides of a shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let k = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = k;
    k *= shape[i];
  }
  return s;
}

/** The multi-index of flat position `i` in `shape`. */
export function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let a = shape.length - 1; a >= 0; a--) {
    idx[a] = i % shape[a];
    i = Math.floor(i / shape[a]);
  }
  return idx;
}

/** The flat position of a multi-index under `strides`. */
export function ravel(idx: readonly number[], strides: readonly number[]): number {
  let p = 0;
  for (let a = 0; a < idx.length; a++) p += idx[a] * strides[a];
  return p;
}

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new RangeError(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** Numpy broadcast of shapes; throws RangeError when they do not broadcast. */
export function broadcastShape(...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const k = s.length - rank + i;
      if (k < 0 || s[k] === 1) continue;
      if (d === 1) d = s[k];
      else if (d !== s[k]) throw new RangeError(`shapes [${shapes.join("] [")}] do not broadcast`);
    }
    out.push(d);
  }
  return out;
}

/** x broadcast (numpy rules) to `shape`, materialized. */
export function broadcastTo(x: NdArray, shape: readonly number[]): NdArray {
  const full = broadcastShape(x.shape, shape);
  if (full.join() !== shape.join()) throw new RangeError(`cannot broadcast [${x.shape}] to [${shape}]`);
  const out = nd(shape);
  const xs = stridesOf(x.shape);
  const off = shape.length - x.shape.length;
  for (let i = 0; i < out.data.length; i++) {
    const idx = unravel(i, shape);
    let p = 0;
    for (let a = 0; a < x.shape.length; a++) p += (x.shape[a] === 1 ? 0 : idx[a + off]) * xs[a];
    out.data[i] = x.data[p];
  }
  return out;
}

/** Applies f elementwise. */
export function map(x: NdArray, f: (v: number) => number): NdArray {
  return { shape: [...x.shape], data: x.data.map(f) };
}

/** Applies f elementwise over broadcast operands. */
export function zipWith(xs: readonly NdArray[], f: (...v: number[]) => number): NdArray {
  const shape = broadcastShape(...xs.map((x) => x.shape));
  const bs = xs.map((x) => broadcastTo(x, shape));
  const out = nd(shape);
  const args = new Array<number>(xs.length);
  for (let i = 0; i < out.data.length; i++) {
    for (let k = 0; k < bs.length; k++) args[k] = bs[k].data[i];
    out.data[i] = f(...args);
  }
  return out;
}

// ---------------------------------------------------------------- elementwise

/** a + b. */
export const add = (a: NdArray, b: NdArray): NdArray => zipWith([a, b], (x, y) => x + y);
/** a - b. */
export const sub = (a: NdArray, b: NdArray): NdArray => zipWith([a, b], (x, y) => x - y);
/** a * b. */
export const mul = (a: NdArray, b: NdArray): NdArray => zipWith([a, b], (x, y) => x * y);
/** a / b. */
export const div = (a: NdArray, b: NdArray): NdArray => zipWith([a, b], (x, y) => x / y);
/** a ** b. */
export const pow = (a: NdArray, b: NdArray): NdArray => zipWith([a, b], (x, y) => Math.pow(x, y));
/** Elementwise max. */
export const max = (a: NdArray, b: NdArray): NdArray => zipWith([a, b], (x, y) => Math.max(x, y));
/** Elementwise min. */
export const min = (a: NdArray, b: NdArray): NdArray => zipWith([a, b], (x, y) => Math.min(x, y));
/** -x. */
export const neg = (x: NdArray): NdArray => map(x, (v) => -v);
/** |x|. */
export const abs = (x: NdArray): NdArray => map(x, Math.abs);
/** e^x. */
export const exp = (x: NdArray): NdArray => map(x, Math.exp);
/** ln x. */
export const log = (x: NdArray): NdArray => map(x, Math.log);
/** sqrt x. */
export const sqrt = (x: NdArray): NdArray => map(x, Math.sqrt);
/** 1 / x. */
export const reciprocal = (x: NdArray): NdArray => map(x, (v) => 1 / v);
/** tanh x. */
export const tanh = (x: NdArray): NdArray => map(x, Math.tanh);
/** 1 / (1 + e^-x). */
export const sigmoid = (x: NdArray): NdArray => map(x, (v) => 1 / (1 + Math.exp(-v)));
/** max(x, 0). */
export const relu = (x: NdArray): NdArray => map(x, (v) => Math.max(v, 0));
/** A copy of x. */
export const identity = (x: NdArray): NdArray => map(x, (v) => v);
/** The error function, elementwise. */
export const erf = (x: NdArray): NdArray => map(x, erfScalar);

/**
 * erf(x) to ~1e-15 relative. Uses the all-positive series
 * erf(x) = 2/sqrt(pi) * e^{-x^2} * sum_n 2^n x^{2n+1} / (1*3*...*(2n+1)), which has no cancellation;
 * beyond |x| = 6, erf is 1 to double precision.
 */
export function erfScalar(x: number): number {
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x);
  let term = ax, sum = ax;
  for (let n = 1; n < 500 && term > 1e-17 * sum; n++) {
    term *= (2 * ax * ax) / (2 * n + 1);
    sum += term;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-ax * ax) * sum;
}

/** a == b as 0/1. */
export const equal = (a: NdArray, b: NdArray): NdArray => zipWith([a, b], (x, y) => Number(x === y));
/** a < b as 0/1. */
export const less = (a: NdArray, b: NdArray): NdArray => zipWith([a, b], (x, y) => Number(x < y));
/** a > b as 0/1. */
export const greater = (a: NdArray, b: NdArray): NdArray => zipWith([a, b], (x, y) => Number(x > y));
/** Logical not of 0/1 values. */
export const not = (x: NdArray): NdArray => map(x, (v) => Number(!v));
/** cond ? a : b with broadcasting. */
export const where = (cond: NdArray, a: NdArray, b: NdArray): NdArray =>
  zipWith([cond, a, b], (c, x, y) => (c ? x : y));

/** ONNX Cast to a type name: float to integer truncates toward zero, to bool tests != 0. */
export function cast(x: NdArray, to: "float32" | "float64" | "int64" | "int32" | "bool"): NdArray {
  switch (to) {
    case "float32":
      return map(x, Math.fround);
    case "float64":
      return identity(x);
    case "int64":
    case "int32":
      return map(x, Math.trunc);
    case "bool":
      return map(x, (v) => Number(v !== 0));
  }
}

/** Clamps into [lo, hi]; an omitted bound does not clamp. */
export function clip(x: NdArray, lo = -Infinity, hi = Infinity): NdArray {
  return map(x, (v) => Math.min(Math.max(v, lo), hi));
}

// ---------------------------------------------------------------- linear algebra

/** numpy matmul: batch dims broadcast, a 1-D left operand is a row, a 1-D right operand a column. */
export function matmul(a: NdArray, b: NdArray): NdArray {
  const as = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
  const bs = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
  const [m, k] = as.slice(-2), [k2, n] = bs.slice(-2);
  if (k !== k2) throw new RangeError(`matmul: inner dims ${k} vs ${k2}`);
  const batch = broadcastShape(as.slice(0, -2), bs.slice(0, -2));
  const A = broadcastTo({ shape: as, data: a.data }, [...batch, m, k]);
  const B = broadcastTo({ shape: bs, data: b.data }, [...batch, k, n]);
  const nb = sizeOfShape(batch);
  const out = new Float64Array(nb * m * n);
  for (let p = 0; p < nb; p++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) s += A.data[p * m * k + i * k + q] * B.data[p * k * n + q * n + j];
        out[p * m * n + i * n + j] = s;
      }
    }
  }
  const shape = [...batch];
  if (a.shape.length > 1) shape.push(m);
  if (b.shape.length > 1) shape.push(n);
  return { shape, data: out };
}

/** alpha * A' B' + beta * C, C broadcast to the result. */
export function gemm(
  a: NdArray,
  b: NdArray,
  c: NdArray | null,
  o: { alpha?: number; beta?: number; transA?: boolean; transB?: boolean } = {},
): NdArray {
  const A = o.transA ? transpose(a) : a;
  const B = o.transB ? transpose(b) : b;
  let y = map(matmul(A, B), (v) => v * (o.alpha ?? 1));
  if (c) y = add(y, broadcastTo(map(c, (v) => v * (o.beta ?? 1)), y.shape));
  return y;
}

// ---------------------------------------------------------------- axis helpers

/**
 * Calls `f` once per 1-D lane along `axis` with the flat positions of that lane, so axis-wise ops
 * (softmax, cumsum, argmax, topk) are written once over a plain index list.
 */
export function forEachLane(shape: readonly number[], axis: number, f: (positions: number[]) => void): void {
  const a = normAxis(axis, shape.length);
  const strides = stridesOf(shape);
  const outer = shape.slice();
  outer[a] = 1;
  const n = sizeOfShape(outer);
  for (let i = 0; i < n; i++) {
    const base = ravel(unravel(i, outer), strides);
    const lane: number[] = [];
    for (let j = 0; j < shape[a]; j++) lane.push(base + j * strides[a]);
    f(lane);
  }
}

/** Softmax along one axis. */
export function softmax(x: NdArray, axis = -1): NdArray {
  const out = nd(x.shape);
  forEachLane(x.shape, axis, (lane) => {
    const m = Math.max(...lane.map((p) => x.data[p]));
    let s = 0;
    for (const p of lane) s += Math.exp(x.data[p] - m);
    for (const p of lane) out.data[p] = Math.exp(x.data[p] - m) / s;
  });
  return out;
}

/** log(softmax(x)) along one axis. */
export function logSoftmax(x: NdArray, axis = -1): NdArray {
  const out = nd(x.shape);
  forEachLane(x.shape, axis, (lane) => {
    const m = Math.max(...lane.map((p) => x.data[p]));
    let s = 0;
    for (const p of lane) s += Math.exp(x.data[p] - m);
    for (const p of lane) out.data[p] = x.data[p] - m - Math.log(s);
  });
  return out;
}

/** LayerNormalization over the axes from `axis` on: (x - mean) / sqrt(var + eps) * scale + bias. */
export function layerNorm(x: NdArray, scale: NdArray, bias: NdArray | null, axis = -1, epsilon = 1e-5): NdArray {
  const a = normAxis(axis, x.shape.length);
  const normShape = x.shape.slice(a);
  const inner = sizeOfShape(normShape);
  const outerN = sizeOfShape(x.shape.slice(0, a));
  const s = broadcastTo(scale, normShape);
  const b = bias ? broadcastTo(bias, normShape) : nd(normShape);
  const out = nd(x.shape);
  for (let o = 0; o < outerN; o++) {
    const row = x.data.subarray(o * inner, (o + 1) * inner);
    const mean = row.reduce((p, q) => p + q, 0) / inner;
    const variance = row.reduce((p, q) => p + (q - mean) ** 2, 0) / inner;
    const inv = 1 / Math.sqrt(variance + epsilon);
    for (let i = 0; i < inner; i++) out.data[o * inner + i] = (row[i] - mean) * inv * s.data[i] + b.data[i];
  }
  return out;
}

// ---------------------------------------------------------------- reductions

function reduceWith(
  x: NdArray,
  axes: readonly number[],
  keepdims: boolean,
  fold: (values: number[]) => number,
): NdArray {
  const rank = x.shape.length;
  const set = new Set(axes.map((a) => normAxis(a, rank)));
  const kept = x.shape.map((d, i) => (set.has(i) ? 1 : d));
  const groups: number[][] = Array.from({ length: sizeOfShape(kept) }, () => []);
  const ks = stridesOf(kept);
  for (let i = 0; i < x.data.length; i++) {
    const idx = unravel(i, x.shape).map((v, a) => (set.has(a) ? 0 : v));
    groups[ravel(idx, ks)].push(x.data[i]);
  }
  const data = groups.map(fold);
  const shape = keepdims ? kept : x.shape.filter((_, i) => !set.has(i));
  return nd(shape, data);
}

/** Sum over axes. */
export const reduceSum = (x: NdArray, axes: readonly number[], keepdims = false): NdArray =>
  reduceWith(x, axes, keepdims, (v) => v.reduce((p, q) => p + q, 0));
/** Mean over axes. */
export const reduceMean = (x: NdArray, axes: readonly number[], keepdims = false): NdArray =>
  reduceWith(x, axes, keepdims, (v) => v.reduce((p, q) => p + q, 0) / v.length);
/** Max over axes (-Infinity over an empty set). */
export const reduceMax = (x: NdArray, axes: readonly number[], keepdims = false): NdArray =>
  reduceWith(x, axes, keepdims, (v) => Math.max(...v));
/** log(sum(exp(x))) over axes, computed stably. */
export const reduceLogSumExp = (x: NdArray, axes: readonly number[], keepdims = false): NdArray =>
  reduceWith(x, axes, keepdims, (v) => {
    const m = Math.max(...v);
    if (!Number.isFinite(m)) return m;
    return m + Math.log(v.reduce((p, q) => p + Math.exp(q - m), 0));
  });

// ---------------------------------------------------------------- shape manipulation

/** Reshape with ONNX's 0 (copy the input dim) and -1 (infer). */
export function reshape(x: NdArray, shape: readonly number[]): NdArray {
  const out = shape.map((d, i) => (d === 0 ? x.shape[i] : d));
  const at = out.indexOf(-1);
  if (at >= 0) {
    const known = out.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    out[at] = sizeOfShape(x.shape) / known;
  }
  if (sizeOfShape(out) !== x.data.length || !out.every(Number.isInteger)) {
    throw new RangeError(`reshape: [${x.shape}] to [${shape}]`);
  }
  return { shape: out, data: x.data.slice() };
}

/** Permutes axes (default reversed). */
export function transpose(x: NdArray, perm?: readonly number[]): NdArray {
  const r = x.shape.length;
  const p = perm ?? Array.from({ length: r }, (_, i) => r - 1 - i);
  const shape = p.map((a) => x.shape[a]);
  const xs = stridesOf(x.shape);
  const out = nd(shape);
  for (let i = 0; i < out.data.length; i++) {
    const idx = unravel(i, shape);
    let q = 0;
    for (let a = 0; a < r; a++) q += idx[a] * xs[p[a]];
    out.data[i] = x.data[q];
  }
  return out;
}

/** Removes the given size-1 axes. */
export function squeeze(x: NdArray, axes: readonly number[]): NdArray {
  const set = new Set(axes.map((a) => normAxis(a, x.shape.length)));
  for (const a of set) if (x.shape[a] !== 1) throw new RangeError(`squeeze: axis ${a} is ${x.shape[a]}`);
  return { shape: x.shape.filter((_, i) => !set.has(i)), data: x.data.slice() };
}

/** Inserts size-1 axes at the given output positions. */
export function unsqueeze(x: NdArray, axes: readonly number[]): NdArray {
  const r = x.shape.length + axes.length;
  const set = new Set(axes.map((a) => normAxis(a, r)));
  const shape: number[] = [];
  let k = 0;
  for (let i = 0; i < r; i++) shape.push(set.has(i) ? 1 : x.shape[k++]);
  return { shape, data: x.data.slice() };
}

/** Concatenation along an axis. */
export function concat(xs: readonly NdArray[], axis: number): NdArray {
  const a = normAxis(axis, xs[0].shape.length);
  const shape = [...xs[0].shape];
  shape[a] = xs.reduce((s, x) => s + x.shape[a], 0);
  const out = nd(shape);
  const outer = sizeOfShape(shape.slice(0, a));
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (const x of xs) {
      const chunk = sizeOfShape(x.shape.slice(a));
      out.data.set(x.data.subarray(o * chunk, (o + 1) * chunk), at);
      at += chunk;
    }
  }
  return out;
}

/** The element positions ONNX Slice takes along an axis of size d (spec's clamping rules). */
export function sliceIndices(d: number, start: number, end: number, step: number): number[] {
  if (step === 0) throw new RangeError("slice: step 0");
  let s = start < 0 ? start + d : start;
  let e = end < 0 ? end + d : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), d);
    e = Math.min(Math.max(e, 0), d);
  } else {
    s = Math.min(Math.max(s, 0), d - 1);
    e = Math.min(Math.max(e, -1), d - 1);
  }
  const out: number[] = [];
  for (let i = s; step > 0 ? i < e : i > e; i += step) out.push(i);
  return out;
}

/** Gathers the given positions along every axis (a cartesian product of index lists). */
function takeAll(x: NdArray, picks: readonly (readonly number[])[]): NdArray {
  const shape = picks.map((p) => p.length);
  const xs = stridesOf(x.shape);
  const out = nd(shape);
  for (let i = 0; i < out.data.length; i++) {
    const idx = unravel(i, shape);
    let q = 0;
    for (let a = 0; a < idx.length; a++) q += picks[a][idx[a]] * xs[a];
    out.data[i] = x.data[q];
  }
  return out;
}

/** ONNX Slice (numpy semantics with the spec's clamping). */
export function slice(
  x: NdArray,
  starts: readonly number[],
  ends: readonly number[],
  axes?: readonly number[],
  steps?: readonly number[],
): NdArray {
  const picks = x.shape.map((d) => Array.from({ length: d }, (_, i) => i));
  starts.forEach((s, i) => {
    const a = normAxis(axes ? axes[i] : i, x.shape.length);
    picks[a] = sliceIndices(x.shape[a], s, ends[i], steps ? steps[i] : 1);
  });
  return takeAll(x, picks);
}

/** Splits along an axis into pieces of the given sizes. */
export function split(x: NdArray, sizes: readonly number[], axis = 0): NdArray[] {
  const a = normAxis(axis, x.shape.length);
  let at = 0;
  return sizes.map((n) => {
    const picks = x.shape.map((d) => Array.from({ length: d }, (_, i) => i));
    picks[a] = Array.from({ length: n }, (_, i) => at + i);
    at += n;
    return takeAll(x, picks);
  });
}

/** Gather along an axis; negative indices count from the end. */
export function gather(data: NdArray, indices: NdArray, axis = 0): NdArray {
  const a = normAxis(axis, data.shape.length);
  const d = data.shape[a];
  const shape = [...data.shape.slice(0, a), ...indices.shape, ...data.shape.slice(a + 1)];
  const ds = stridesOf(data.shape);
  const ir = indices.shape.length;
  const out = nd(shape);
  for (let i = 0; i < out.data.length; i++) {
    const idx = unravel(i, shape);
    const flatIdx = ravel(idx.slice(a, a + ir), stridesOf(indices.shape));
    let k = indices.data[flatIdx];
    if (k < 0) k += d;
    const src = [...idx.slice(0, a), k, ...idx.slice(a + ir)];
    out.data[i] = data.data[ravel(src, ds)];
  }
  return out;
}

/** GatherElements: out[..i..] = data[..indices[..i..]..] along `axis`. */
export function gatherElements(data: NdArray, indices: NdArray, axis = 0): NdArray {
  const a = normAxis(axis, data.shape.length);
  const ds = stridesOf(data.shape);
  const out = nd(indices.shape);
  for (let i = 0; i < out.data.length; i++) {
    const idx = unravel(i, indices.shape);
    let k = indices.data[i];
    if (k < 0) k += data.shape[a];
    idx[a] = k;
    out.data[i] = data.data[ravel(idx, ds)];
  }
  return out;
}

/** ScatterElements: the adjoint of GatherElements with reduction "add"; "none" lets the last write win. */
export function scatterElements(
  data: NdArray,
  indices: NdArray,
  updates: NdArray,
  axis = 0,
  reduction: "none" | "add" = "none",
): NdArray {
  const a = normAxis(axis, data.shape.length);
  const ds = stridesOf(data.shape);
  const out = identity(data);
  for (let i = 0; i < indices.data.length; i++) {
    const idx = unravel(i, indices.shape);
    let k = indices.data[i];
    if (k < 0) k += data.shape[a];
    idx[a] = k;
    const p = ravel(idx, ds);
    out.data[p] = reduction === "add" ? out.data[p] + updates.data[i] : updates.data[i];
  }
  return out;
}

/** ScatterND: indices [..., k] address slices data[i0..ik-1] that updates[...] replace or add to. */
export function scatterND(
  data: NdArray,
  indices: NdArray,
  updates: NdArray,
  reduction: "none" | "add" = "none",
): NdArray {
  const k = indices.shape[indices.shape.length - 1];
  const n = indices.data.length / k;
  const sliceSize = sizeOfShape(data.shape.slice(k));
  const ds = stridesOf(data.shape);
  const out = identity(data);
  for (let i = 0; i < n; i++) {
    const idx = Array.from(indices.data.subarray(i * k, (i + 1) * k), (v, a) => (v < 0 ? v + data.shape[a] : v));
    const base = ravel(idx, ds.slice(0, k));
    for (let j = 0; j < sliceSize; j++) {
      const u = updates.data[i * sliceSize + j];
      out.data[base + j] = reduction === "add" ? out.data[base + j] + u : u;
    }
  }
  return out;
}

/** Expand: numpy broadcast of x with `shape` (either side may have the 1s). */
export function expand(x: NdArray, shape: readonly number[]): NdArray {
  return broadcastTo(x, broadcastShape(x.shape, shape));
}

/** Cumulative sum along an axis, optionally exclusive and/or reversed. */
export function cumsum(x: NdArray, axis: number, exclusive = false, reverse = false): NdArray {
  const out = nd(x.shape);
  forEachLane(x.shape, axis, (lane) => {
    const order = reverse ? [...lane].reverse() : lane;
    let s = 0;
    for (const p of order) {
      if (exclusive) {
        out.data[p] = s;
        s += x.data[p];
      } else {
        s += x.data[p];
        out.data[p] = s;
      }
    }
  });
  return out;
}

/** Index of the first maximum along an axis. */
export function argMax(x: NdArray, axis = -1, keepdims = false): NdArray {
  const a = normAxis(axis, x.shape.length);
  const kept = x.shape.map((d, i) => (i === a ? 1 : d));
  const out = nd(kept);
  let o = 0;
  // Lanes come in row-major order of the kept shape, so a running counter addresses the output.
  forEachLane(x.shape, a, (lane) => {
    let best = 0;
    for (let j = 1; j < lane.length; j++) if (x.data[lane[j]] > x.data[lane[best]]) best = j;
    out.data[o++] = best;
  });
  return keepdims ? out : { shape: x.shape.filter((_, i) => i !== a), data: out.data };
}

/** The k largest values along an axis, sorted descending; ties keep the lower index first. */
export function topK(x: NdArray, k: number, axis = -1): [NdArray, NdArray] {
  const a = normAxis(axis, x.shape.length);
  const shape = x.shape.map((d, i) => (i === a ? k : d));
  const values = nd(shape), indices = nd(shape);
  const outLanes: number[][] = [];
  forEachLane(shape, a, (lane) => outLanes.push(lane));
  let o = 0;
  forEachLane(x.shape, a, (lane) => {
    const order = lane.map((_, j) => j).sort((p, q) => x.data[lane[q]] - x.data[lane[p]] || p - q);
    const dst = outLanes[o++];
    for (let j = 0; j < k; j++) {
      values.data[dst[j]] = x.data[lane[order[j]]];
      indices.data[dst[j]] = order[j];
    }
  });
  return [values, indices];
}

/** Keeps the upper (j - i >= k) or lower (j - i <= k) triangle of the last two axes. */
export function trilu(x: NdArray, upper: boolean, k = 0): NdArray {
  const r = x.shape.length;
  const out = identity(x);
  for (let p = 0; p < out.data.length; p++) {
    const idx = unravel(p, x.shape);
    const i = idx[r - 2], j = idx[r - 1];
    if (upper ? j - i < k : j - i > k) out.data[p] = 0;
  }
  return out;
}

/** The shape of x as a 1-D tensor, sliced [start, end) with ONNX Shape's clamping. */
export function shapeOf(x: NdArray, start?: number, end?: number): NdArray {
  const r = x.shape.length;
  const clampPos = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
  const s = clampPos(start ?? 0), e = clampPos(end ?? r);
  const dims = x.shape.slice(s, Math.max(s, e));
  return nd([dims.length], dims);
}
