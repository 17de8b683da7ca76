/**
 * Reciprocal: y = 1 / x.
 *
 *   dx = -dy / x^2 = -dy * y^2
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Reciprocal. */
export const reciprocalGrad: GradRule = ({ outputs, dys }) => {
  const y = outputs[0];
  return [op.neg(op.mul(dys[0]!, op.mul(y, y)))];
};
