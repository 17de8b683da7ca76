/**
 * Unsqueeze: y = x with size-1 axes inserted.
 *
 *   dx = squeeze(dy, axes)   (a reshape back to x's shape when the axes are not constant)
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { constInts, reshapeTo } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Unsqueeze. */
export const unsqueezeGrad: GradRule = ({ inputs, outputs, dys }) => {
  const axes = inputs[1] ? constInts(inputs[1]) : null;
  const rank = outputs[0].shape.length;
  if (axes) return [op.squeeze(dys[0]!, axes.map((a) => (a < 0 ? a + rank : a))), null];
  return [reshapeTo(dys[0]!, inputs[0]!), null];
};
