/**
 * ReduceLogSumExp over axes R: y = log sum_R e^x.
 *
 *   dx = dy * e^(x - y)   (the softmax of x over R)
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { attrInt, keepReducedDims, reduceAxes } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of ReduceLogSumExp. */
export const reduceLogSumExpGrad: GradRule = ({ node, inputs, outputs, dys }) => {
  const x = inputs[0]!, dy = dys[0]!;
  const axes = reduceAxes(node, x, inputs[1] ?? null);
  if (axes === "noop") return [dy, null];
  const keep = attrInt(node, "keepdims", 1) === 1;
  const p = op.exp(op.sub(x, keepReducedDims(outputs[0], axes, keep)));
  return [op.mul(p, keepReducedDims(dy, axes, keep)), null];
};
