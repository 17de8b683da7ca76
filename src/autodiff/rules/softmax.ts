/**
 * Softmax along one axis: y_i = e^(x_i) / sum_j e^(x_j).
 *
 *   dx = y * (dy - sum(dy * y, axis))
 *
 * (the Jacobian diag(y) - y y^T applied to dy without forming it).
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { attrInt } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Softmax (opset 13 semantics: one axis, default -1). */
export const softmaxGrad: GradRule = ({ node, outputs, dys }) => {
  const y = outputs[0], dy = dys[0]!;
  const axis = attrInt(node, "axis", -1);
  return [op.mul(y, op.sub(dy, op.reduceSum(op.mul(dy, y), [axis], true)))];
};
