/**
 * Concat along an axis: y = [x_1 | x_2 | ... | x_n].
 *
 *   dx_i = dy[..., o_i : o_i + len_i, ...]   with o_i = len_1 + ... + len_(i-1)
 *
 * One Split of dy into the inputs' lengths (dim expressions, read at run time when symbolic).
 *
 * @module
 */

import type { Value } from "../../onnx/graph.ts";
import * as op from "../../onnx/ops.ts";
import { attrInt } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Concat. */
export const concatGrad: GradRule = ({ node, inputs, dys }) => {
  const xs = inputs as Value[];
  const rank = xs[0].shape.length;
  const a0 = attrInt(node, "axis", 0);
  const a = a0 < 0 ? a0 + rank : a0;
  return op.split(dys[0]!, xs.map((x) => x.shape[a]), a);
};
