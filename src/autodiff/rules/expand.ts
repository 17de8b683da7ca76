/**
 * Expand: y = broadcast(x, shape).
 *
 *   dx = sum of dy over the broadcast axes
 *
 * The walker does the summing (un-broadcasting), so the rule hands dy back as is.
 *
 * @module
 */

import type { GradRule } from "../types.ts";

/** Gradient of Expand. */
export const expandGrad: GradRule = ({ dys }) => [dys[0], null];
