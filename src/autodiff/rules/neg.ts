/**
 * Neg: y = -x.
 *
 *   dx = -dy
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Neg. */
export const negGrad: GradRule = ({ dys }) => [op.neg(dys[0]!)];
