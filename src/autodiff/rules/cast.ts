/**
 * Cast between float types: y = T(x).
 *
 *   dx = cast(dy, type of x)
 *
 * Casts from integers or bool never need a gradient (the walker only follows float values), and a
 * cast to an integer type stops the gradient because its output is not float.
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Cast. */
export const castGrad: GradRule = ({ inputs, dys }) => [op.cast(dys[0]!, inputs[0]!.dtype)];
