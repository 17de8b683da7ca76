/**
 * Mul: y = a * b (broadcasting).
 *
 *   da = dy * b, db = dy * a
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Mul. */
export const mulGrad: GradRule = ({ inputs, dys, needs }) => {
  const [a, b] = inputs as [NonNullable<typeof inputs[0]>, NonNullable<typeof inputs[1]>];
  const dy = dys[0]!;
  return [needs[0] ? op.mul(dy, b) : null, needs[1] ? op.mul(dy, a) : null];
};
