/**
 * Slice: y = x[s_1 : e_1 : t_1, ...] on some axes (ONNX clamping rules).
 *
 *   dx = zeros like x, with dy written back at the sliced positions
 *
 * Unit-step axes are padded back in one Pad node: before = the clamped start, after = dim - start
 * - len (computed from Shape at run time when the dim is symbolic, e.g. logits[:, :-1]).
 * Other steps (static dims only) gather from dy padded by one zero slot: index j of x reads
 * dy[k] when j = s + k * t, else the zero slot.
 *
 * @module
 */

import { type Dim, GraphError, type Value } from "../../onnx/graph.ts";
import * as op from "../../onnx/ops.ts";
import { requireConstInts } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Positions of x that a slice visits along one axis of static size d (ONNX clamping). */
function visited(d: number, start: number, end: number, step: number): number[] {
  const norm = (v: number) => (v < 0 ? v + d : v);
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  const out: number[] = [];
  if (step > 0) {
    for (let p = clamp(norm(start), 0, d), e = clamp(norm(end), 0, d); p < e; p += step) out.push(p);
  } else {
    for (let p = clamp(norm(start), -1, d - 1), e = clamp(norm(end), -1, d - 1); p > e; p += step) out.push(p);
  }
  return out;
}

/** Gradient of Slice (w.r.t. data; starts/ends/axes/steps must be constants). */
export const sliceGrad: GradRule = ({ node, graph: g, inputs, dys }) => {
  const x = inputs[0]!;
  const dy = dys[0]!;
  const rank = x.shape.length;
  const starts = requireConstInts("Slice", "starts", inputs[1]!);
  const ends = requireConstInts("Slice", "ends", inputs[2]!);
  const axes = (inputs[3] ? requireConstInts("Slice", "axes", inputs[3]) : starts.map((_, i) => i))
    .map((a) => (a < 0 ? a + rank : a));
  const steps = inputs[4] ? requireConstInts("Slice", "steps", inputs[4]) : starts.map(() => 1);

  const before: (number | Value)[] = new Array(rank).fill(0);
  const after: (number | Value)[] = new Array(rank).fill(0);
  const padded: Dim[] = [...dy.shape];
  const strided: { axis: number; index: number[]; len: number }[] = [];
  axes.forEach((a, i) => {
    const d = x.shape[a];
    if (typeof d === "number") {
      const pos = visited(d, starts[i], ends[i], steps[i]);
      if (steps[i] === 1) {
        before[a] = pos.length ? pos[0] : 0;
        after[a] = d - (before[a] as number) - pos.length;
        padded[a] = d;
      } else {
        const index = new Array<number>(d).fill(pos.length);
        pos.forEach((p, k) => (index[p] = k));
        strided.push({ axis: a, index, len: pos.length });
      }
      return;
    }
    if (steps[i] !== 1) {
      throw new GraphError(
        `Slice gradient (node ${node.name}): a step of ${steps[i]} on symbolic axis ${a} is not supported; use step 1`,
      );
    }
    const dimX = op.shapeOf(x, a, a + 1);
    before[a] = starts[i] >= 0 ? starts[i] : op.max(op.add(dimX, g.int64s([starts[i]])), g.int64s([0]));
    const b = typeof before[a] === "number" ? g.int64s([before[a] as number]) : before[a] as Value;
    after[a] = op.sub(op.sub(dimX, b), op.shapeOf(dy, a, a + 1));
    padded[a] = d;
  });

  let out = dy;
  const anyPad = [...before, ...after].some((p) => p !== 0);
  if (anyPad) {
    const all = [...before, ...after];
    const pads = all.every((p) => typeof p === "number")
      ? g.int64s(all as number[])
      : op.concat(all.map((p) => (typeof p === "number" ? g.int64s([p]) : p)), 0);
    out = g.addNode("Pad", [dy, pads], [{ dtype: dy.dtype, shape: padded }])[0];
  }
  for (const { axis, index, len } of strided) {
    const pads = new Array(2 * rank).fill(0);
    pads[rank + axis] = 1;
    const shape = [...out.shape];
    shape[axis] = len + 1;
    const withSlot = g.addNode("Pad", [out, g.int64s(pads)], [{ dtype: out.dtype, shape }])[0];
    out = op.gather(withSlot, g.int64s(index), axis);
  }
  return [out, null, null, null, null];
};
