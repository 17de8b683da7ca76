/**
 * Pow: y = a ^ b (broadcasting).
 *
 *   da = dy * b * a^(b - 1)
 *   db = dy * y * log(a)      (only defined for a > 0, as in PyTorch)
 *
 * A constant exponent (the usual x^2 of RMS norms) gets no gradient: the walker never asks.
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { constScalar, scalarLike } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Pow. */
export const powGrad: GradRule = ({ inputs, outputs, dys, needs }) => {
  const [a, b] = [inputs[0]!, inputs[1]!];
  const dy = dys[0]!;
  let da = null;
  if (needs[0]) {
    // x^2 is common enough (RMS norms) to deserve the cheap form 2 * x.
    const slope = constScalar(b) === 2 && a.dtype === b.dtype
      ? op.mul(a, scalarLike(a, 2))
      : op.mul(b, op.pow(a, op.sub(b, scalarLike(b, 1))));
    da = op.mul(dy, slope);
  }
  const db = needs[1] ? op.mul(op.mul(dy, outputs[0]), op.log(a)) : null;
  return [da, db];
};
