/**
 * Reshape: y = x viewed with another shape (same elements, same order).
 *
 *   dx = reshape(dy, shape(x))
 *
 * @module
 */

import { reshapeTo } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Reshape. */
export const reshapeGrad: GradRule = ({ inputs, dys }) => [reshapeTo(dys[0]!, inputs[0]!), null];
