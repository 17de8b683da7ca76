/**
 * Erf: y = erf(x) = 2/sqrt(pi) * integral_0^x e^(-t^2) dt.
 *
 *   dx = dy * 2/sqrt(pi) * e^(-x^2)
 *
 * (GELU's exact form x/2 * (1 + erf(x/sqrt 2)) differentiates through this and Mul/Add.)
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { scalarLike } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Erf. */
export const erfGrad: GradRule = ({ inputs, dys }) => {
  const x = inputs[0]!;
  const density = op.mul(op.exp(op.neg(op.mul(x, x))), scalarLike(x, 2 / Math.sqrt(Math.PI)));
  return [op.mul(dys[0]!, density)];
};
