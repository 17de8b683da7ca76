/**
 * The checks every op builder shares: one graph, one element type, float inputs, axes in range,
 * numpy broadcasting of (symbolic) shapes. Failures name the op.
 *
 * @module
 */

import { type DType, isFloat } from "./dtype.ts";
import { type Dim, formatShape, GraphError, type Shape, type Value } from "./graph.ts";

/** Throws a GraphError naming the op. */
export function fail(op: string, message: string): never {
  throw new GraphError(`${op}: ${message}`);
}

/** All values belong to one graph. */
export function sameGraph(op: string, values: readonly Value[]): void {
  const g = values[0].graph;
  for (const v of values) if (v.graph !== g) fail(op, `inputs come from different graphs`);
}

/** All values have one element type, returned. */
export function sameDtype(op: string, values: readonly Value[]): DType {
  const t = values[0].dtype;
  for (const v of values) {
    if (v.dtype !== t) fail(op, `element types differ: ${values.map((x) => `${x.name}:${x.dtype}`).join(", ")}`);
  }
  return t;
}

/** The value is a float tensor. */
export function requireFloat(op: string, v: Value): void {
  if (!isFloat(v.dtype)) fail(op, `${v.name} must be a float tensor, got ${v.dtype}`);
}

/** Normalizes a possibly negative axis against a rank, with a clear error when out of range. */
export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) fail(op, `axis ${axis} is out of range for rank ${rank}`);
  return a;
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
