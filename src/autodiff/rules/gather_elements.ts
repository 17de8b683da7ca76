/**
 * GatherElements along axis a: y[..., i, ...] = x[..., idx[..., i, ...], ...] (indices shaped like y).
 *
 *   dx = ScatterElements(zeros like x, idx, dy, axis = a, reduction = "add")
 *
 * Duplicate indices add up. The indices never get a gradient.
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { attrInt, zerosLike } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of GatherElements (w.r.t. data). */
export const gatherElementsGrad: GradRule = ({ node, inputs, dys }) => {
  const x = inputs[0]!;
  return [op.scatterElements(zerosLike(x), inputs[1]!, dys[0]!, attrInt(node, "axis", 0), "add"), null];
};
