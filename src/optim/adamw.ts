/**
 * AdamW with PyTorch's semantics (torch.optim.AdamW, amsgrad off), as graph ops:
 *
 *   p <- p * (1 - lr * wd)                       (decoupled weight decay)
 *   m <- b1 m + (1 - b1) g
 *   v <- b2 v + (1 - b2) g^2
 *   p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *
 * The step-dependent factors enter as scalar inputs: `decay` = 1 - lr wd, `step_size` =
 * lr / (1 - b1^t) and `inv_bc2_sqrt` = 1 / sqrt(1 - b2^t).
 *
 * @module
 */

import * as op from "../onnx/ops.ts";
import type { Optimizer } from "./optimizer.ts";

/** Options of {@link adamw} (PyTorch's defaults). */
export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/** AdamW (PyTorch semantics). */
export function adamw(options: AdamWOptions = {}): Optimizer {
  const b1 = options.beta1 ?? 0.9, b2 = options.beta2 ?? 0.999;
  const eps = options.eps ?? 1e-8, wd = options.weightDecay ?? 0.01;
  for (const [k, v] of Object.entries({ beta1: b1, beta2: b2 })) {
    if (!(v >= 0 && v < 1)) throw new RangeError(`AdamW ${k} must be in [0, 1), got ${v}`);
  }
  if (!(eps > 0)) throw new RangeError(`AdamW eps must be positive, got ${eps}`);
  if (!(wd >= 0)) throw new RangeError(`AdamW weightDecay must be >= 0, got ${wd}`);
  return {
    name: "adamw",
    slots: ["m", "v"],
    scalarNames: ["decay", "step_size", "inv_bc2_sqrt"],
    config: { beta1: b1, beta2: b2, eps, weightDecay: wd },
    scalars(step, lr) {
      if (!(Number.isInteger(step) && step >= 1)) {
        throw new RangeError(`AdamW step must be an integer >= 1, got ${step}`);
      }
      return {
        decay: 1 - lr * wd,
        step_size: lr / (1 - b1 ** step),
        inv_bc2_sqrt: 1 / Math.sqrt(1 - b2 ** step),
      };
    },
    update(p, g, [m, v], s) {
      const c = (x: number) => p.graph.scalar(x, p.dtype);
      const m1 = op.add(op.mul(m, c(b1)), op.mul(g, c(1 - b1)));
      const v1 = op.add(op.mul(v, c(b2)), op.mul(op.mul(g, g), c(1 - b2)));
      const denom = op.add(op.mul(op.sqrt(v1), s.inv_bc2_sqrt), c(eps));
      const p1 = op.sub(op.mul(p, s.decay), op.mul(s.step_size, op.div(m1, denom)));
      return { param: p1, state: [m1, v1] };
    },
  };
}
