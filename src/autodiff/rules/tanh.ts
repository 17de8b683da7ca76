/**
 * Tanh: y = tanh(x).
 *
 *   dx = dy * (1 - y^2)
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { scalarLike } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Tanh. */
export const tanhGrad: GradRule = ({ outputs, dys }) => {
  const y = outputs[0];
  return [op.mul(dys[0]!, op.sub(scalarLike(y, 1), op.mul(y, y)))];
};
