/**
 * Global-norm gradient clipping in graph ops, as torch.nn.utils.clip_grad_norm_:
 *
 *   norm = sqrt(sum_i sum(g_i^2))
 *   g_i <- g_i * min(1, max_norm / (norm + 1e-6))
 *
 * @module
 */

import { GraphError, type Value } from "../onnx/graph.ts";
import * as op from "../onnx/ops.ts";

/** The L2 norm of all gradients together (a scalar of their dtype). */
export function globalNorm(grads: readonly Value[]): Value {
  if (grads.length === 0) throw new GraphError("globalNorm(): no gradients");
  let total: Value | null = null;
  for (const g of grads) {
    const sq = op.mul(g, g);
    const s = g.shape.length ? op.reduceSum(sq, g.shape.map((_, i) => i), false) : sq;
    total = total ? op.add(total, s) : s;
  }
  return op.sqrt(total!);
}

/**
 * Scales the gradients so their global norm is at most `maxNorm` (0 disables the scaling). Returns
 * the gradients to apply and the norm before clipping.
 */
export function clipByGlobalNorm(grads: readonly Value[], maxNorm: number): { grads: Value[]; norm: Value } {
  if (!(maxNorm >= 0)) throw new RangeError(`maxGradNorm must be >= 0 (0 disables clipping), got ${maxNorm}`);
  const norm = globalNorm(grads);
  if (maxNorm === 0) return { grads: [...grads], norm };
  const g = norm.graph;
  const c = (x: number) => g.scalar(x, norm.dtype);
  const coef = op.min(c(1), op.div(c(maxNorm), op.add(norm, c(1e-6))));
  return { grads: grads.map((x) => op.mul(x, coef)), norm };
}
