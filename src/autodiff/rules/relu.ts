/**
 * Relu: y = max(x, 0).
 *
 *   dx = dy where x > 0, else 0   (0 at x = 0, as PyTorch)
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { scalarLike } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Relu. */
export const reluGrad: GradRule = ({ inputs, dys }) => {
  const x = inputs[0]!;
  const zero = scalarLike(x, 0);
  return [op.where(op.greater(x, zero), dys[0]!, zero)];
};
