/**
 * Trilu: y = x masked to its lower (upper = 0) or upper triangle, offset k (last two axes).
 *
 *   dx = Trilu(dy) with the same upper and k   (a fixed 0/1 mask is its own adjoint)
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { attrInt, requireConstInts } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Trilu (k, when given, must be a constant). */
export const triluGrad: GradRule = ({ node, inputs, dys }) => {
  const k = inputs[1] ? requireConstInts("Trilu", "k", inputs[1])[0] : 0;
  return [op.trilu(dys[0]!, attrInt(node, "upper", 1) === 1, k), null];
};
