/**
 * Slice: y = x[s_1 : e_1 : t_1, ...] on some axes (ONNX clamping rules).
 *
 *   dx = zeros like x, with dy written back at the sliced positions
 *
 * Unit-step axes are padded back in one Pad node: before = the clamped start, after = dim - start
 * - len; on a symbolic axis (e.g. logits[:, :-1]) both are dim expressions, read at run time:
 * before = start, or dim - len for a slice to the end from a negative start.
 * Other steps (static dims only) gather from dy padded by one zero slot: index j of x reads
 * dy[k] when j = s + k * t, else the zero slot.
 *
 * @module
 */

import { addDims, subDims } from "../../onnx/dims.ts";
import { type Dim, GraphError } from "../../onnx/graph.ts";
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

  const before: Dim[] = new Array(rank).fill(0);
  const after: Dim[] = new Array(rank).fill(0);
  const strided: { axis: number; index: number[] }[] = [];
  axes.forEach((a, i) => {
    const d = x.shape[a];
    if (typeof d === "number") {
      const pos = visited(d, starts[i], ends[i], steps[i]);
      if (steps[i] === 1) {
        before[a] = pos.length ? pos[0] : 0;
        after[a] = d - (before[a] as number) - pos.length;
      } else {
        const index = new Array<number>(d).fill(pos.length);
        pos.forEach((p, k) => (index[p] = k));
        strided.push({ axis: a, index });
      }
      return;
    }
    if (steps[i] !== 1) {
      throw new GraphError(
        `Slice gradient (node ${node.name}): a step of ${steps[i]} on symbolic axis ${a} is not supported; use step 1`,
      );
    }
    const len = dy.shape[a];
    before[a] = starts[i] < 0 && ends[i] >= op.TO_END
      ? subDims(d, len)
      : starts[i] >= 0
      ? starts[i]
      : addDims(d, starts[i]);
    after[a] = subDims(subDims(d, before[a]), len);
  });

  let out = dy;
  if ([...before, ...after].some((p) => p !== 0)) out = op.pad(dy, [...before, ...after]);
  for (const { axis, index } of strided) {
    const pads = new Array(2 * rank).fill(0);
    pads[rank + axis] = 1;
    out = op.gather(op.pad(out, pads), g.int64s(index), axis);
  }
  return [out, null, null, null, null];
};
