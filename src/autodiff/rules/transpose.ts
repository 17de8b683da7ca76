/**
 * Transpose: y = permute(x, perm), so y.axis(i) = x.axis(perm[i]).
 *
 *   dx = permute(dy, inverse(perm)),  inverse[perm[i]] = i
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { attrInts } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Transpose. */
export const transposeGrad: GradRule = ({ node, inputs, dys }) => {
  const rank = inputs[0]!.shape.length;
  const perm = attrInts(node, "perm") ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const inv = new Array<number>(rank);
  perm.forEach((p, i) => (inv[p] = i));
  return [op.transpose(dys[0]!, inv)];
};
