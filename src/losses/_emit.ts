/**
 * Stable graph building blocks shared by the loss emitters.
 *
 * Only ops that run on WebGPU without a CPU fallback and that the autodiff differentiates are used:
 * no LogSoftmax (CPU on WebGPU), no Softplus (no rule, no double kernel), no OneHot. Both
 * helpers subtract a maximum m that the result does not depend on (∂/∂m ≡ 0), so however the
 * ReduceMax / Relu rules treat ties, the gradient that flows through m cancels.
 *
 * @module
 */

import { GraphError, type Value } from "../onnx/graph.ts";
import * as op from "../onnx/ops.ts";
import { checkHyper, type EmitLossOptions, LOSS_DEFAULTS } from "./types.ts";

/** Checks that a loss input is float32 or float64 and returns its dtype. */
export function lossDtype(name: string, v: Value): "float32" | "float64" {
  if (v.dtype !== "float32" && v.dtype !== "float64") {
    throw new GraphError(`${name} must be float32 or float64, got ${v.dtype}`);
  }
  return v.dtype;
}

/** Checks a value's rank and, where both are static, its dims against an expected shape (null: any). */
export function checkShape(name: string, v: Value, expected: readonly (number | null)[]): void {
  const ok = v.shape.length === expected.length &&
    expected.every((d, i) => d === null || typeof v.shape[i] !== "number" || d === v.shape[i]);
  if (!ok) {
    throw new GraphError(
      `${name} has shape [${v.shape.join(", ")}], expected [${expected.map((d) => d ?? "?").join(", ")}]`,
    );
  }
}

/**
 * A hyper-parameter as a graph value of `like`'s dtype: a number becomes a scalar constant; a value
 * must be a scalar (`[]` or `[1]`) of the same dtype.
 */
export function hyper(name: string, x: number | Value, like: Value): Value {
  if (typeof x === "number") return like.graph.scalar(x, like.dtype);
  if (x.graph !== like.graph) throw new GraphError(`${name} belongs to another graph`);
  if (x.dtype !== like.dtype) throw new GraphError(`${name} must have dtype ${like.dtype}, got ${x.dtype}`);
  if (!(x.shape.length === 0 || (x.shape.length === 1 && x.shape[0] === 1))) {
    throw new GraphError(`${name} must be a scalar of shape [] or [1], got [${x.shape.join(", ")}]`);
  }
  return x;
}

/** Casts `x` to `like`'s dtype when they differ (rewards read as float64 feeding a float32 loss). */
export function castLike(x: Value, like: Value): Value {
  return x.dtype === like.dtype ? x : op.cast(x, like.dtype);
}

/** log softmax over the last axis: s − log Σ exp(s), s = z − max(z). */
export function emitLogSoftmax(z: Value): Value {
  const s = op.sub(z, op.reduceMax(z, [-1], true));
  return op.sub(s, op.log(op.reduceSum(op.exp(s), [-1], true)));
}

/**
 * softplus(x) = log(1 + e^x) = r + log(e^−r + e^{x−r}) with r = relu(x): both exponents are ≤ 0, and
 * at x = 0 the derivative is σ(0) = 1/2 whatever Relu's rule says at 0 (the usual
 * relu(x) + log1p(e^−|x|) form would give 0 there through Abs, at exactly the tie u_w = u_l of step 1).
 */
export function emitSoftplus(x: Value): Value {
  const r = op.relu(x);
  return op.add(r, op.log(op.add(op.exp(op.neg(r)), op.exp(op.sub(x, r)))));
}

/**
 * log p_f = log softmax(β_π u) and log p_r = log softmax(r / β_r) over the last axis of `[B, K]`
 * inputs, and their exponentials. Shared by EXO-rw and DPO-rw.
 */
export function emitGroupDistributions(
  u: Value,
  rewards: Value,
  options: EmitLossOptions = {},
): { logPf: Value; logPr: Value; pF: Value; pR: Value } {
  lossDtype("u", u);
  checkShape("u", u, [null, null]);
  checkShape("rewards", rewards, u.shape.map((d) => (typeof d === "number" ? d : null)));
  if (typeof u.shape[1] === "number" && u.shape[1] < 2) {
    throw new GraphError(`u has ${u.shape[1]} completions per group: a group needs at least 2`);
  }
  checkHyper(options);
  const betaPi = hyper("betaPi", options.betaPi ?? LOSS_DEFAULTS.betaPi, u);
  const betaR = hyper("betaR", options.betaR ?? LOSS_DEFAULTS.betaR, u);
  const logPf = emitLogSoftmax(op.mul(betaPi, u));
  const logPr = emitLogSoftmax(op.div(castLike(rewards, u), betaR));
  return { logPf, logPr, pF: op.exp(logPf), pR: op.exp(logPr) };
}
