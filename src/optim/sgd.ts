/**
 * SGD with PyTorch's semantics (torch.optim.SGD), as graph ops:
 *
 *   g <- g + wd p                                  (coupled L2 weight decay, if wd > 0)
 *   b <- g on the first step, else mu b + (1 - dampening) g     (if mu > 0)
 *   g <- g + mu b if nesterov, else b
 *   p <- p - lr g
 *
 * The first-step special case enters through two scalar inputs, `buf_coef` (0, then mu) and
 * `grad_coef` (1, then 1 - dampening), so the graph has no branch.
 *
 * @module
 */

import * as op from "../onnx/ops.ts";
import type { Optimizer } from "./optimizer.ts";

/** Options of {@link sgd}. */
export interface SgdOptions {
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

/** SGD, optionally with momentum (PyTorch semantics). */
export function sgd(options: SgdOptions = {}): Optimizer {
  const mu = options.momentum ?? 0, damp = options.dampening ?? 0;
  const nesterov = options.nesterov ?? false, wd = options.weightDecay ?? 0;
  if (!(mu >= 0)) throw new RangeError(`SGD momentum must be >= 0, got ${mu}`);
  if (nesterov && (mu <= 0 || damp !== 0)) throw new RangeError("Nesterov momentum needs momentum > 0 and dampening 0");
  const useMomentum = mu > 0;
  return {
    name: "sgd",
    slots: useMomentum ? ["momentum"] : [],
    scalarNames: useMomentum ? ["lr", "buf_coef", "grad_coef"] : ["lr"],
    config: { momentum: mu, dampening: damp, nesterov, weightDecay: wd },
    scalars(step, lr): Record<string, number> {
      if (!(Number.isInteger(step) && step >= 1)) throw new RangeError(`SGD step must be an integer >= 1, got ${step}`);
      if (!useMomentum) return { lr };
      return { lr, buf_coef: step === 1 ? 0 : mu, grad_coef: step === 1 ? 1 : 1 - damp };
    },
    update(p, g, state, s) {
      const c = (x: number) => p.graph.scalar(x, p.dtype);
      let d = wd > 0 ? op.add(g, op.mul(p, c(wd))) : g;
      const next = [];
      if (useMomentum) {
        const b = op.add(op.mul(state[0], s.buf_coef), op.mul(d, s.grad_coef));
        next.push(b);
        d = nesterov ? op.add(d, op.mul(b, c(mu))) : b;
      }
      return { param: op.sub(p, op.mul(d, s.lr)), state: next };
    },
  };
}
