/**
 * Trilu: y = x masked to its lower (upper = 0) or upper triangle, offset k (last two axes).
 *
 *   dx = Trilu(dy) with the same upper and k   (a fixed 0/1 mask is its own adjoint)
 *
 * @module
 */

import { attrInt } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Trilu. */
export const triluGrad: GradRule = ({ node, graph, inputs, dys }) => {
  const dy = dys[0]!;
  const dx = graph.addNode("Trilu", [dy, inputs[1] ?? null], [{ dtype: dy.dtype, shape: dy.shape }], {
    upper: { type: "int", value: attrInt(node, "upper", 1) },
  })[0];
  return [dx, null];
};
