/**
 * CumSum along an axis: y_i = sum_{j <= i} x_j (exclusive: j < i; reverse: j >= i / j > i).
 *
 *   dx_j = sum_{i >= j} dy_i, i.e. the CumSum of dy in the opposite direction, same exclusivity
 *
 * @module
 */

import { attrInt } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of CumSum (w.r.t. x). */
export const cumSumGrad: GradRule = ({ node, graph, inputs, dys }) => {
  const dy = dys[0]!;
  const dx = graph.addNode("CumSum", [dy, inputs[1]!], [{ dtype: dy.dtype, shape: dy.shape }], {
    exclusive: { type: "int", value: attrInt(node, "exclusive", 0) },
    reverse: { type: "int", value: 1 - attrInt(node, "reverse", 0) },
  })[0];
  return [dx, null];
};
