/**
 * Abs: y = |x|.
 *
 *   dx = dy * sign(x)   (0 at x = 0, as PyTorch)
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { scalarLike } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Abs. */
export const absGrad: GradRule = ({ inputs, dys }) => {
  const x = inputs[0]!;
  const dy = dys[0]!;
  const zero = scalarLike(x, 0);
  return [op.where(op.greater(x, zero), dy, op.where(op.less(x, zero), op.neg(dy), zero))];
};
