/**
 * ReduceMin over axes R: y = min_R x.
 *
 *   dx = dy * [x == y] / #{x == y}   (ties share equally, as PyTorch's amin)
 *
 * @module
 */

import type { GradRule } from "../types.ts";
import { reduceSelectGrad } from "./reduce_max.ts";

/** Gradient of ReduceMin. */
export const reduceMinGrad: GradRule = reduceSelectGrad;
