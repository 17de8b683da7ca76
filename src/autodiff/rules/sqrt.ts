/**
 * Sqrt: y = sqrt(x).
 *
 *   dx = dy / (2 y)
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { scalarLike } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Sqrt. */
export const sqrtGrad: GradRule = ({ outputs, dys }) => {
  const y = outputs[0];
  return [op.div(dys[0]!, op.mul(y, scalarLike(y, 2)))];
};
