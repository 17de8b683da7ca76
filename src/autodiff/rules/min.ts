/**
 * Min (elementwise, n inputs, broadcasting): y = min(x_1, ..., x_n).
 *
 *   dx_i = dy * [x_i == y] / #{j : x_j == y}   (ties share equally)
 *
 * @module
 */

import type { GradRule } from "../types.ts";
import { selectGrad } from "./max.ts";

/** Gradient of Min. */
export const minGrad: GradRule = selectGrad;
