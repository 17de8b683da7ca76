/**
 * Sigmoid: y = 1 / (1 + e^-x).
 *
 *   dx = dy * y * (1 - y)
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { scalarLike } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Sigmoid. */
export const sigmoidGrad: GradRule = ({ outputs, dys }) => {
  const y = outputs[0];
  return [op.mul(op.mul(dys[0]!, y), op.sub(scalarLike(y, 1), y))];
};
