/**
 * Log: y = ln x.
 *
 *   dx = dy / x
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Log. */
export const logGrad: GradRule = ({ inputs, dys }) => [op.div(dys[0]!, inputs[0]!)];
