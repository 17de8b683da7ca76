/**
 * CumSum along an axis: y_i = sum_{j <= i} x_j (exclusive: j < i; reverse: j >= i / j > i).
 *
 *   dx_j = sum_{i >= j} dy_i, i.e. the CumSum of dy in the opposite direction, same exclusivity
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { attrInt, requireConstInts } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of CumSum (w.r.t. x; the axis must be a constant). */
export const cumSumGrad: GradRule = ({ node, inputs, dys }) => {
  const [axis] = requireConstInts("CumSum", "axis", inputs[1]!);
  const dx = op.cumsum(dys[0]!, axis, attrInt(node, "exclusive", 0) === 1, attrInt(node, "reverse", 0) === 0);
  return [dx, null];
};
