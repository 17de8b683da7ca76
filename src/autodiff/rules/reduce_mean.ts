/**
 * ReduceMean over axes R (N elements each): y = sum_R x / N.
 *
 *   dx = broadcast(dy with R kept, shape(x)) / N
 *
 * N is a constant when the reduced dims are static, else computed from Shape(x) at run time.
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { attrInt, countOver, expandTo, keepReducedDims, reduceAxes } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of ReduceMean (opset 18: axes as an input, must be constant). */
export const reduceMeanGrad: GradRule = ({ node, inputs, dys }) => {
  const x = inputs[0]!, dy = dys[0]!;
  const axes = reduceAxes(node, x, inputs[1] ?? null);
  if (axes === "noop") return [dy, null];
  const dyk = keepReducedDims(dy, axes, attrInt(node, "keepdims", 1) === 1);
  return [expandTo(op.div(dyk, countOver(x, axes)), x), null];
};
