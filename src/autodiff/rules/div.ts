/**
 * Div: y = a / b (broadcasting).
 *
 *   da = dy / b
 *   db = -dy * a / b^2 = -(dy * y) / b
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Div. */
export const divGrad: GradRule = ({ inputs, outputs, dys, needs }) => {
  const b = inputs[1]!;
  const dy = dys[0]!;
  return [needs[0] ? op.div(dy, b) : null, needs[1] ? op.neg(op.div(op.mul(dy, outputs[0]), b)) : null];
};
