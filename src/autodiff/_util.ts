/**
 * Helpers the gradient rules and the walker share: attribute and constant reading, zeros, and
 * reshapes/expands whose output shape is declared exactly (also for symbolic dims, where the op
 * builders would invent fresh dim names).
 *
 * @module
 */

import { isFloat } from "../onnx/dtype.ts";
import { type Dim, formatShape, GraphError, isStatic, type Node, type Shape, type Value } from "../onnx/graph.ts";
import * as op from "../onnx/ops.ts";

/** True when two shapes are the same dim for dim (symbolic dims compared by name). */
export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** An int attribute of a node, or the default. */
export function attrInt(node: Node, name: string, def: number): number {
  const a = node.attributes[name];
  return a && a.type === "int" ? a.value : def;
}

/** A float attribute of a node, or the default. */
export function attrFloat(node: Node, name: string, def: number): number {
  const a = node.attributes[name];
  return a && a.type === "float" ? a.value : def;
}

/** An ints attribute of a node, or undefined. */
export function attrInts(node: Node, name: string): readonly number[] | undefined {
  const a = node.attributes[name];
  return a && a.type === "ints" ? a.value : undefined;
}

/** A string attribute of a node, or the default. */
export function attrString(node: Node, name: string, def: string): string {
  const a = node.attributes[name];
  return a && a.type === "string" ? a.value : def;
}

/** The integer contents of a constant (initializer) value, or null when it is not a constant. */
export function constInts(v: Value | null): number[] | null {
  if (!v) return null;
  const t = v.graph.initializers.get(v.name);
  if (!t) return null;
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

/** The value of a one-element float or int constant, or null when it is not one. */
export function constScalar(v: Value | null): number | null {
  if (!v) return null;
  const t = v.graph.initializers.get(v.name);
  if (!t || t.data.length !== 1) return null;
  return Number(t.data[0]);
}

/** Like {@link constInts} but fails, naming the op, when the value is not a constant. */
export function requireConstInts(opName: string, what: string, v: Value): number[] {
  const c = constInts(v);
  if (!c) {
    throw new GraphError(`${opName} gradient: ${what} (${v.name}) must be a constant; build it with graph.int64s()`);
  }
  return c;
}

/** A float scalar constant with the element type of `like`. */
export function scalarLike(like: Value, x: number): Value {
  if (!isFloat(like.dtype)) throw new GraphError(`Gradient: ${like.name} must be float, got ${like.dtype}`);
  return like.graph.scalar(x, like.dtype);
}

/** The shape of `v` as an int64 tensor: a constant when static, else `Shape(v)`. */
export function shapeTensor(v: Value): Value {
  return isStatic(v.shape) ? v.graph.int64s(v.shape) : op.shapeOf(v);
}

/** `x` broadcast to the shape of `like` (declared as exactly `like.shape`). */
export function expandTo(x: Value, like: Value | Shape): Value {
  const target: Shape = Array.isArray(like) ? like as Shape : (like as Value).shape;
  if (sameShape(x.shape, target)) return x;
  const g = x.graph;
  const s = Array.isArray(like) ? constantShape(x, target) : shapeTensor(like as Value);
  return g.addNode("Expand", [x, s], [{ dtype: x.dtype, shape: target }])[0];
}

function constantShape(x: Value, target: Shape): Value {
  if (!isStatic(target)) throw new GraphError(`Gradient: cannot build symbolic shape [${formatShape(target)}]`);
  return x.graph.int64s(target);
}

/** Zeros shaped like `like` (an Expand of a scalar: no big constant is stored). */
export function zerosLike(like: Value): Value {
  return expandTo(scalarLike(like, 0), like);
}

/**
 * `x` reshaped to the shape of `like` (same element count), declared as exactly `like.shape`. With
 * at most one symbolic dim the target is a constant (`-1` there), so the backward pass does not
 * keep `like` alive just to read its shape.
 */
export function reshapeTo(x: Value, like: Value): Value {
  if (sameShape(x.shape, like.shape)) return x;
  const symbolic = like.shape.filter((d) => typeof d !== "number").length;
  // -1 cannot be inferred next to a 0-sized dim.
  const target = symbolic === 1 && !like.shape.includes(0)
    ? x.graph.int64s(like.shape.map((d) => (typeof d === "number" ? d : -1)))
    : shapeTensor(like);
  return x.graph.addNode("Reshape", [x, target], [{ dtype: x.dtype, shape: like.shape }])[0];
}

/** The reduction axes of a Reduce* node (opset 18: axes input, `noop_with_empty_axes`), normalized. */
export function reduceAxes(node: Node, x: Value, axesInput: Value | null): number[] | "noop" {
  const rank = x.shape.length;
  const axes = axesInput ? constInts(axesInput) : attrInts(node, "axes") ?? [];
  if (axes === null) {
    throw new GraphError(`${node.op} gradient (node ${node.name}): the axes input must be a constant`);
  }
  if (axes.length === 0) {
    if (attrInt(node, "noop_with_empty_axes", 0) === 1) return "noop";
    return Array.from({ length: rank }, (_, i) => i);
  }
  return [...new Set(axes.map((a) => (a < 0 ? a + rank : a)))].sort((p, q) => p - q);
}

/** A reduced cotangent (or output) brought back to rank of x with size-1 reduced axes. */
export function keepReducedDims(v: Value, axes: readonly number[], keepdims: boolean): Value {
  return keepdims || axes.length === 0 ? v : op.unsqueeze(v, axes);
}

/** Number of elements over `axes` of x, as a float scalar of x's type (runtime when symbolic). */
export function countOver(x: Value, axes: readonly number[]): Value {
  const dims = axes.map((a) => x.shape[a]);
  if (dims.every((d) => typeof d === "number")) {
    return scalarLike(x, (dims as number[]).reduce((p, q) => p * q, 1));
  }
  // Shape values live on the CPU anyway; the int64 product and cast are a few scalar ops.
  const g = x.graph;
  const sizes = op.gather(op.shapeOf(x), g.int64s(axes), 0);
  const prod = g.addNode("ReduceProd", [sizes, g.int64s([0])], [{ dtype: "int64", shape: [] }], {
    keepdims: { type: "int", value: 0 },
  })[0];
  return op.cast(prod, x.dtype);
}

/**
 * Sums a gradient down to `target` (numpy un-broadcasting): extra leading axes and axes where the
 * target has size 1 but the gradient does not are summed. Returns null when `grad` does not
 * broadcast to `target` that way.
 */
export function sumTo(grad: Value, target: Shape): Value | null {
  if (sameShape(grad.shape, target)) return grad;
  const lead = grad.shape.length - target.length;
  if (lead < 0) return null;
  const axes: number[] = [];
  for (let i = 0; i < grad.shape.length; i++) {
    if (i < lead) {
      axes.push(i);
      continue;
    }
    const t: Dim = target[i - lead], d: Dim = grad.shape[i];
    if (t === d) continue;
    if (t === 1) axes.push(i);
    else return null;
  }
  const g = grad.graph;
  let out = grad;
  if (axes.length > 0) {
    const shape = grad.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    out = g.addNode("ReduceSum", [grad, g.int64s(axes)], [{ dtype: grad.dtype, shape }], {
      keepdims: { type: "int", value: 1 },
    })[0];
  }
  if (lead > 0) {
    out = g.addNode("Squeeze", [out, g.int64s(Array.from({ length: lead }, (_, i) => i))], [{
      dtype: grad.dtype,
      shape: target,
    }])[0];
  }
  return out;
}
