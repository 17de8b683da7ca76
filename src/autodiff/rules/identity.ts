/**
 * Identity: y = x.
 *
 *   dx = dy
 *
 * @module
 */

import type { GradRule } from "../types.ts";

/** Gradient of Identity. */
export const identityGrad: GradRule = ({ dys }) => [dys[0]];
