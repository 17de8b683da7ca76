/**
 * Split along an axis: [y_1, ..., y_n] = pieces of x.
 *
 *   dx = concat(dy_1, ..., dy_n)   with zeros for pieces no gradient flows into
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { attrInt, zerosLike } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Split. */
export const splitGrad: GradRule = ({ node, outputs, dys }) => {
  const pieces = outputs.map((y, i) => dys[i] ?? zerosLike(y));
  return [op.concat(pieces, attrInt(node, "axis", 0)), null];
};
