/**
 * Clip: y = min(max(x, lo), hi) (bounds optional scalars).
 *
 *   dx  = dy where lo <= x <= hi, else 0   (bounds inclusive, as PyTorch's clamp)
 *   dlo = dy where x < lo,  dhi = dy where x > hi
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { scalarLike } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Clip. */
export const clipGrad: GradRule = ({ inputs, dys, needs }) => {
  const [x, lo, hi] = inputs;
  const dy = dys[0]!;
  const zero = scalarLike(dy, 0);
  const below = lo ? op.less(x!, lo) : null;
  const above = hi ? op.greater(x!, hi) : null;
  let dx = dy;
  if (below) dx = op.where(below, zero, dx);
  if (above) dx = op.where(above, zero, dx);
  return [
    needs[0] ? dx : null,
    needs[1] && below ? op.where(below, dy, zero) : null,
    needs[2] && above ? op.where(above, dy, zero) : null,
  ];
};
