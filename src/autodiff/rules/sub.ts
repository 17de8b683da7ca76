/**
 * Sub: y = a - b (broadcasting).
 *
 *   da = dy, db = -dy
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Sub. */
export const subGrad: GradRule = ({ dys, needs }) => {
  const dy = dys[0]!;
  return [dy, needs[1] ? op.neg(dy) : null];
};
