/**
 * Add: y = a + b (broadcasting).
 *
 *   da = dy, db = dy   (the walker sums broadcast axes away)
 *
 * @module
 */

import type { GradRule } from "../types.ts";

/** Gradient of Add. */
export const addGrad: GradRule = ({ dys }) => [dys[0], dys[0]];
