/**
 * ReduceSum over axes R: y = sum_R x.
 *
 *   dx = broadcast(dy with R kept as size-1 axes, shape(x))
 *
 * @module
 */

import { attrInt, expandTo, keepReducedDims, reduceAxes } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of ReduceSum (opset 18: axes as an input, must be constant). */
export const reduceSumGrad: GradRule = ({ node, inputs, dys }) => {
  const x = inputs[0]!, dy = dys[0]!;
  const axes = reduceAxes(node, x, inputs[1] ?? null);
  if (axes === "noop") return [dy, null];
  return [expandTo(keepReducedDims(dy, axes, attrInt(node, "keepdims", 1) === 1), x), null];
};
