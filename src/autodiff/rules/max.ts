/**
 * Max (elementwise, n inputs, broadcasting): y = max(x_1, ..., x_n).
 *
 *   dx_i = dy * [x_i == y] / #{j : x_j == y}
 *
 * Ties share the gradient equally (PyTorch's torch.maximum gives each half). Min shares this rule.
 *
 * @module
 */

import type { Value } from "../../onnx/graph.ts";
import * as op from "../../onnx/ops.ts";
import type { GradContext, GradRule } from "../types.ts";

/** The shared rule of Max and Min: the gradient flows to the selected operands. */
export function selectGrad({ inputs, outputs, dys, needs }: GradContext): ReturnType<GradRule> {
  const y = outputs[0], dy = dys[0]!;
  const xs = inputs as Value[];
  if (xs.length === 1) return [dy];
  const masks = xs.map((x) => op.cast(op.equal(x, y), y.dtype));
  let count = masks[0];
  for (let i = 1; i < masks.length; i++) count = op.add(count, masks[i]);
  const share = op.div(dy, count);
  return masks.map((m, i) => (needs[i] ? op.mul(m, share) : null));
}

/** Gradient of Max. */
export const maxGrad: GradRule = selectGrad;
