/**
 * Squeeze: y = x without some size-1 axes.
 *
 *   dx = unsqueeze(dy, axes)   (a reshape back to x's shape when the axes are not constant)
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { constInts, reshapeTo } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Squeeze. */
export const squeezeGrad: GradRule = ({ inputs, dys }) => {
  const x = inputs[0]!;
  const axes = inputs[1] ? constInts(inputs[1]) : null;
  const rank = x.shape.length;
  if (axes && axes.length > 0) return [op.unsqueeze(dys[0]!, axes.map((a) => (a < 0 ? a + rank : a))), null];
  return [reshapeTo(dys[0]!, x), null];
};
