/**
 * Builders of the shape ops (reshape, transpose, squeeze, concat, slice, split, expand, pad,
 * range, ...), re-exported by `ops.ts`. Symbolic dims stay exact expressions (see `dims.ts`):
 * a `-1` reshape divides the element count, concat adds, slice subtracts, so `[batch, seq, 64]`
 * flattened is `[batch*seq, 64]` and restored is `[batch, seq, 64]` again. Where a runtime shape
 * tensor is needed (a reshape or expand to a symbolic target, a slice between symbolic bounds),
 * {@link dimValue} computes the dims from the graph's inputs. Only sizes that depend on data
 * (NonZero) get fresh symbols.
 *
 * @module
 */

import { addDims, dimAtLeast, dimSymbols, dimTerms, divDims, mulDims, subDims } from "./dims.ts";
import { attr, type Attribute, type Dim, formatShape, type Graph, type Value } from "./graph.ts";
import { broadcastShapes, fail, normAxis, sameDtype, sameGraph } from "./_op_checks.ts";

/** Slice bounds at or above this mean "to the end of the axis" (ONNX clamps them to the dim). */
export const TO_END: number = 2 ** 31 - 1;

/** Runtime dim values already built, per graph (a dim's value is the same wherever it is read). */
const DIM_VALUES = new WeakMap<Graph, Map<string, Value>>();

/**
 * A dim expression's size at run time, as an int64 `[1]` tensor: a constant when static, else
 * built from `Shape` of the values that carry its symbols (graph inputs, usually, which exist from
 * the start: reading their shape keeps no activation alive).
 *
 * @throws {GraphError} when no value of the graph carries one of the dim's symbols
 */
export function dimValue(g: Graph, d: Dim): Value {
  if (typeof d === "number") return g.int64s([d]);
  let cache = DIM_VALUES.get(g);
  if (!cache) DIM_VALUES.set(g, cache = new Map());
  const hit = cache.get(d);
  if (hit) return hit;
  const i64 = (a: Value, b: Value, op: string) => g.addNode(op, [a, b], [{ dtype: "int64", shape: [1] }])[0];
  const symbol = (s: string): Value => {
    const src = g.dimSource(s);
    if (!src) fail("dimValue", `no value of graph ${g.name} carries the dim ${JSON.stringify(s)} (of ${d})`);
    const v = shapeOf(src.value, src.axis, src.axis + 1);
    return src.offset === 0 ? v : i64(v, g.int64s([src.offset]), "Sub");
  };
  let total: Value | null = null;
  for (const t of dimTerms(d)) {
    let v: Value | null = t.num === 1 && t.symbols.length > 0 ? null : g.int64s([t.num]);
    for (const s of t.symbols) v = v ? i64(v, symbol(s), "Mul") : symbol(s);
    if (t.den !== 1) v = i64(v!, g.int64s([t.den]), "Div");
    total = total ? i64(total, v!, "Add") : v;
  }
  cache.set(d, total!);
  return total!;
}

/** An int64 `[dims.length]` shape tensor of dims (constant when every dim is static). */
export function shapeTensor(g: Graph, dims: readonly Dim[]): Value {
  if (dims.every((d) => typeof d === "number")) return g.int64s(dims as number[]);
  return concat(dims.map((d) => dimValue(g, d)), 0);
}

// ---------------------------------------------------------------- shape manipulation

/**
 * Reshape to a target of dims (ONNX's 0 = copy, -1 = infer; symbolic dims are expressions, see
 * `dims.ts`) or to a runtime shape tensor. The `-1` dim is the element count divided by the
 * others, exactly (`[batch, seq, 64]` to `[-1, 64]` gives `batch*seq`); the element count must
 * provably stay the same.
 */
export function reshape(x: Value, shape: readonly Dim[] | Value): Value {
  const op = "Reshape";
  const g = x.graph;
  if (!Array.isArray(shape)) {
    const s = shape as Value;
    if (s.dtype !== "int64" || s.shape.length !== 1) fail(op, "a runtime shape must be a 1-D int64 tensor");
    const rank = s.shape[0];
    const out: Dim[] = typeof rank === "number"
      ? Array.from({ length: rank }, () => g.freshDim("reshape"))
      : fail(op, "the runtime shape's length must be static");
    return g.addNode(op, [x, s], [{ dtype: x.dtype, shape: out }])[0];
  }
  const target = shape as readonly Dim[];
  if (target.filter((d) => d === -1).length > 1) fail(op, "at most one -1 is allowed");
  const out: Dim[] = target.map((d, i) => {
    if (d === 0) {
      if (i >= x.shape.length) fail(op, `0 (copy) at axis ${i} is beyond the input's rank ${x.shape.length}`);
      return x.shape[i];
    }
    if (typeof d === "number" && (!Number.isInteger(d) || d < -1)) fail(op, `invalid target dim ${d}`);
    return d;
  });
  const inferAt = out.indexOf(-1);
  const total = mulDims(...x.shape);
  const shown = () => `[${formatShape(x.shape)}] to [${target}]`;
  if (inferAt >= 0) {
    const known = mulDims(...out.filter((_, i) => i !== inferAt));
    const q = divDims(total, known);
    if (q === null && typeof total === "number" && typeof known === "number") fail(op, `cannot reshape ${shown()}`);
    out[inferAt] = q ?? g.freshDim("reshape");
  } else {
    // Provably different counts fail; counts over different symbols (a fresh dim) cannot be compared.
    const want = mulDims(...out);
    const syms = (d: Dim) => dimSymbols(d).join(",");
    if (want !== total && syms(want) === syms(total)) {
      fail(op, `cannot reshape ${shown()}: ${total} elements vs ${want}`);
    }
  }
  // Symbolic dims cannot be written into a constant shape: 0 (copy) where the input has the same
  // dim at that axis, -1 for the inferred one (or for the only other one: the element count fixes
  // it; not next to a 0-sized dim), and else a runtime shape (see dimValue).
  const open = out.map((d, i) => i !== inferAt && typeof d !== "number" && x.shape[i] !== d);
  const free = inferAt < 0 && open.filter(Boolean).length === 1 && !out.includes(0) ? open.indexOf(true) : inferAt;
  const t = open.some((o, i) => o && i !== free)
    ? concat(
      out.map((d, i) => (i === free
        ? g.int64s([-1])
        : open[i]
        ? dimValue(g, d)
        : g.int64s([x.shape[i] === d && typeof d !== "number" ? 0 : d as number]))
      ),
      0,
    )
    : g.int64s(out.map((d, i) => (i === free ? -1 : typeof d === "number" ? d : 0)));
  return g.addNode(op, [x, t], [{ dtype: x.dtype, shape: out }])[0];
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
  if (norm.length === 0) return x.graph.addNode("Identity", [x], [{ dtype: x.dtype, shape: x.shape }])[0];
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
  if (norm.length === 0) return x.graph.addNode("Identity", [x], [{ dtype: x.dtype, shape: x.shape }])[0];
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
    total = addDims(total, x.shape[a]);
  }
  const shape = [...xs[0].shape];
  shape[a] = total;
  return xs[0].graph.addNode(op, xs, [{ dtype, shape }], { axis: attr.int(axis) })[0];
}

/**
 * Static slice along axes (numpy semantics with clamping; steps default 1). On a symbolic axis the
 * bounds are taken to lie inside it, so the length is an exact expression (`x[2:]` of a `seq` axis
 * is `seq-2` long, `x[:-1]` is `seq-1`; see `symbolicSliceDim`); forms whose length depends on
 * clamping get a fresh dim.
 */
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
      shape[a] = symbolicSliceDim(x.graph, d, starts[i], ends[i], step);
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

/**
 * The length of `x[start:end:step]` along a symbolic axis of size d, taking the bounds to lie
 * inside the axis: `d - s` to the end, `k` for the last k (when d >= k is provable, or k = 1),
 * `d - k - s` up to the k-th last, `e - s` between two negative bounds. Other forms (a positive
 * end, which ONNX may clamp to d; a step) get a fresh dim.
 */
function symbolicSliceDim(g: Graph, d: Dim, start: number, end: number, step: number): Dim {
  if (step !== 1) return g.freshDim("slice");
  if (end >= TO_END) {
    if (start >= 0) return subDims(d, start);
    return dimAtLeast(d, -start) || start === -1 ? -start : g.freshDim("slice");
  }
  if (end < 0) return start >= 0 ? subDims(addDims(d, end), start) : end - start;
  return g.freshDim("slice");
}

/**
 * `x[start : start + length]` along one axis, for bounds that are dim expressions (read at run time
 * when symbolic): the result's dim is exactly `length`.
 */
export function narrow(x: Value, axis: number, start: Dim, length: Dim): Value {
  const a = normAxis("Slice", axis, x.shape.length);
  const g = x.graph;
  const shape = [...x.shape];
  shape[a] = length;
  const s = dimValue(g, start), e = dimValue(g, addDims(start, length));
  return g.addNode("Slice", [x, s, e, g.int64s([a])], [{ dtype: x.dtype, shape }])[0];
}

/** Splits along an axis into pieces of the given sizes (dims, read at run time when symbolic). */
export function split(x: Value, sizes: readonly Dim[], axis = 0): Value[] {
  const op = "Split";
  const a = normAxis(op, axis, x.shape.length);
  const d = x.shape[a];
  const total = addDims(...sizes);
  if (total !== d) fail(op, `sizes [${sizes}] sum to ${total}, axis ${a} has ${d}`);
  const g = x.graph;
  return g.addNode(
    op,
    [x, shapeTensor(g, sizes)],
    sizes.map((s) => {
      const shape = [...x.shape];
      shape[a] = s;
      return { dtype: x.dtype, shape };
    }),
    { axis: attr.int(axis) },
  );
}

/**
 * Broadcasts x to a shape of dims (numpy rules, may add leading axes); a symbolic dim that x has at
 * the same place is kept with a 1, any other is read at run time (see dimValue).
 */
export function expand(x: Value, shape: readonly Dim[]): Value {
  const out = broadcastShapes("Expand", x.shape, shape);
  const g = x.graph;
  let s: Value;
  if (shape.every((d) => typeof d === "number")) s = g.int64s(shape as number[]);
  else {
    s = concat(
      shape.map((d, i) => {
        if (typeof d === "number") return g.int64s([d]);
        const j = x.shape.length - shape.length + i;
        return j >= 0 && x.shape[j] === d ? g.int64s([1]) : dimValue(g, d);
      }),
      0,
    );
  }
  return g.addNode("Expand", [x, s], [{ dtype: x.dtype, shape: out }])[0];
}

/** Expands x to the runtime shape of `like` (both shapes must broadcast). */
export function expandAs(x: Value, like: Value): Value {
  const out = broadcastShapes("Expand", x.shape, like.shape);
  return x.graph.addNode("Expand", [x, shapeOf(like)], [{ dtype: x.dtype, shape: out }])[0];
}

/**
 * Pads with zeros: `pads` holds the amounts before each axis, then after each axis (ONNX's
 * layout), as dims (read at run time when symbolic). Each axis grows by its two pads, exactly.
 */
export function pad(x: Value, pads: readonly Dim[]): Value {
  const r = x.shape.length;
  if (pads.length !== 2 * r) fail("Pad", `needs ${2 * r} pads for rank ${r}, got ${pads.length}`);
  const shape = x.shape.map((d, i) => addDims(d, pads[i], pads[r + i]));
  const g = x.graph;
  return g.addNode("Pad", [x, shapeTensor(g, pads)], [{ dtype: x.dtype, shape }])[0];
}

/** `[start, start + 1, ..., start + length - 1]` (int64), with start and length dims. */
export function arange(g: Graph, start: Dim, length: Dim): Value {
  const scalar = (d: Dim) => (typeof d === "number" ? g.scalar(d, "int64") : squeeze(dimValue(g, d), [0]));
  return g.addNode("Range", [scalar(start), scalar(addDims(start, length)), g.scalar(1, "int64")], [{
    dtype: "int64",
    shape: [length],
  }])[0];
}

/** The indices of x's nonzero entries, `[rank, n]` int64 (n: a fresh dim named `<dimPrefix>_*`, known only at run time). */
export function nonZero(x: Value, dimPrefix = "nonzero"): Value {
  const g = x.graph;
  return g.addNode("NonZero", [x], [{ dtype: "int64", shape: [x.shape.length, g.freshDim(dimPrefix)] }])[0];
}
