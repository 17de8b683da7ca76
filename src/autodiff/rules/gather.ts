/**
 * Gather along axis a: y[p, i, q] = x[p, idx[i], q]  (p: axes before a, i: index axes, q: after).
 *
 *   dx[p, j, q] = sum over i with idx[i] = j of dy[p, i, q]
 *
 * A ScatterND with reduction "add" into zeros (duplicate indices add up; one dispatch on WebGPU,
 * no OneHot, which falls back to the CPU there). For a > 0, dy's index axes are moved to the front
 * and the result is transposed back. The indices never get a gradient.
 *
 * @module
 */

import type { Dim } from "../../onnx/graph.ts";
import * as op from "../../onnx/ops.ts";
import { attrInt, scalarLike } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Gather (w.r.t. data). */
export const gatherGrad: GradRule = ({ node, inputs, dys }) => {
  const x = inputs[0]!;
  const idx = inputs[1]!.dtype === "int64" ? inputs[1]! : op.cast(inputs[1]!, "int64");
  const dy = dys[0]!;
  const r = x.shape.length, q = idx.shape.length;
  const a0 = attrInt(node, "axis", 0);
  const a = a0 < 0 ? a0 + r : a0;
  // dy: [pre (a axes), idx (q axes), post]; bring it to [idx, pre, post].
  const toFront = [...range(a, a + q), ...range(0, a), ...range(a + q, dy.shape.length)];
  const dyT = a === 0 ? dy : op.transpose(dy, toFront);
  // Scatter target: x with axis a moved to the front, [D, pre, post].
  const xPerm = [a, ...range(0, a), ...range(a + 1, r)];
  const tShape: Dim[] = xPerm.map((i) => x.shape[i]);
  const zeros = op.expand(scalarLike(x, 0), tShape);
  const scattered = op.scatterND(zeros, op.unsqueeze(idx, [q]), dyT, "add");
  if (a === 0) return [scattered, null];
  const back = new Array<number>(r);
  xPerm.forEach((p, i) => (back[p] = i));
  return [op.transpose(scattered, back), null];
};

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}
