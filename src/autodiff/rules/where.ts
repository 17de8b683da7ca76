/**
 * Where: y = cond ? a : b (broadcasting all three).
 *
 *   da = cond ? dy : 0,   db = cond ? 0 : dy   (cond gets none: it is bool)
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { scalarLike } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Where (w.r.t. the two branches). */
export const whereGrad: GradRule = ({ inputs, dys, needs }) => {
  const cond = inputs[0]!, dy = dys[0]!;
  const zero = scalarLike(dy, 0);
  return [null, needs[1] ? op.where(cond, dy, zero) : null, needs[2] ? op.where(cond, zero, dy) : null];
};
