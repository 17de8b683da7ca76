/**
 * Exp: y = e^x.
 *
 *   dx = dy * y
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Exp. */
export const expGrad: GradRule = ({ outputs, dys }) => [op.mul(dys[0]!, outputs[0])];
