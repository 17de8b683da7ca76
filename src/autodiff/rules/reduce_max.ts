/**
 * ReduceMax over axes R: y = max_R x.
 *
 *   dx = dy * [x == y] / #{x == y}
 *
 * Ties share the gradient equally (PyTorch's amax/amin); with distinct values it all goes to the
 * arg max. ReduceMin uses the same rule (see reduce_min.ts).
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { attrInt, keepReducedDims, reduceAxes } from "../_util.ts";
import type { GradContext, GradRule } from "../types.ts";

/** The shared rule of ReduceMax and ReduceMin: the gradient flows to the selected elements. */
export function reduceSelectGrad({ node, inputs, outputs, dys }: GradContext): ReturnType<GradRule> {
  const x = inputs[0]!, dy = dys[0]!;
  const axes = reduceAxes(node, x, inputs[1] ?? null);
  if (axes === "noop") return [dy, null];
  const keep = attrInt(node, "keepdims", 1) === 1;
  const mask = op.cast(op.equal(x, keepReducedDims(outputs[0], axes, keep)), x.dtype);
  const share = op.div(keepReducedDims(dy, axes, keep), op.reduceSum(mask, axes, true));
  return [op.mul(mask, share), null];
}

/** Gradient of ReduceMax. */
export const reduceMaxGrad: GradRule = reduceSelectGrad;
