/**
 * Concat along an axis: y = [x_1 | x_2 | ... | x_n].
 *
 *   dx_i = dy[..., o_i : o_i + len_i, ...]   with o_i = len_1 + ... + len_(i-1)
 *
 * One Split of dy; piece sizes come from Shape(x_i) when an input's length is symbolic.
 *
 * @module
 */

import type { Value } from "../../onnx/graph.ts";
import * as op from "../../onnx/ops.ts";
import { attrInt } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Concat. */
export const concatGrad: GradRule = ({ node, graph, inputs, dys }) => {
  const xs = inputs as Value[];
  const rank = xs[0].shape.length;
  const a0 = attrInt(node, "axis", 0);
  const a = a0 < 0 ? a0 + rank : a0;
  const lens = xs.map((x) => x.shape[a]);
  const sizes = lens.every((d) => typeof d === "number")
    ? graph.int64s(lens as number[])
    : op.concat(xs.map((x) => op.shapeOf(x, a, a + 1)), 0);
  return graph.addNode("Split", [dys[0]!, sizes], xs.map((x) => ({ dtype: x.dtype, shape: x.shape })), {
    axis: { type: "int", value: a },
  });
};
