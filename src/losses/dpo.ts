/**
 * DPO (Rafailov et al. 2023) and its K-completion reward form, the *forward*-KL counterpart of EXO
 * (Ji et al. 2024, Theorem 3.3).
 *
 * With u = log π_θ(y|x) − log π_ref(y|x) (summed over completion tokens):
 *
 * - DPO-pref (TRL's `loss_type="sigmoid"`, no label smoothing), d = u_w − u_l:
 *     ℓ = −log σ(β d) = softplus(−β d),   ∂ℓ/∂u_w = −β σ(−β d) = −∂ℓ/∂u_l
 * - DPO-rw over K completions with rewards r: p_f = softmax(β_π u), p_r = softmax(r / β_r),
 *     ℓ = −Σ_i p_r,i log p_f,i  (cross-entropy = H(p_r) + KL(p_r ‖ p_f)),   ∂ℓ/∂u_j = β_π (p_f,j − p_r,j)
 *
 * β of DPO-pref is `betaPi`; `eps` does not apply to DPO. The batch loss is the mean over the B
 * examples, so its gradient carries a 1/B. Analytic float64 functions and graph emitters sit side by
 * side, as in `exo.ts`.
 *
 * @module
 */

import type { Value } from "../onnx/graph.ts";
import * as op from "../onnx/ops.ts";
import { checkShape, emitGroupDistributions, emitSoftplus, hyper, lossDtype } from "./_emit.ts";
import { checkGroups, checkPairs, logSoftmax, mean, sigmoid, softplus } from "./_stable.ts";
import {
  checkHyper,
  type EmitLossOptions,
  type GroupLossResult,
  type GroupLossValues,
  LOSS_DEFAULTS,
  type LossOptions,
  type PairLossResult,
  type PairLossValues,
  resolveLossOptions,
} from "./types.ts";

/**
 * DPO-pref over B pairs: ℓ = −log σ(β_π (u_w − u_l)), batch mean, with the gradient w.r.t. u_w
 * and u_l. `pF` is softmax(β_π [u_w, u_l]) (its first entry is σ(β_π d)), for reference.
 */
export function dpoPref(
  uChosen: ArrayLike<number>,
  uRejected: ArrayLike<number>,
  options: LossOptions = {},
): PairLossResult {
  const { betaPi } = resolveLossOptions(options);
  const n = checkPairs(uChosen, uRejected);
  const perExample = new Float64Array(n);
  const gradChosen = new Float64Array(n);
  const gradRejected = new Float64Array(n);
  const pF: Float64Array[] = [];
  for (let b = 0; b < n; b++) {
    const d = betaPi * (uChosen[b] - uRejected[b]);
    perExample[b] = softplus(-d);
    gradChosen[b] = (-betaPi * sigmoid(-d)) / n;
    gradRejected[b] = -gradChosen[b];
    pF.push(logSoftmax([betaPi * uChosen[b], betaPi * uRejected[b]]).map(Math.exp));
  }
  return { loss: mean(perExample), perExample, pF, gradChosen, gradRejected };
}

/**
 * DPO-rw over B groups of K ≥ 2 completions: ℓ = −Σ p_r log softmax(β_π u), p_r = softmax(r / β_r),
 * batch mean, with the gradient w.r.t. every u.
 */
export function dpoRw(
  u: readonly ArrayLike<number>[],
  rewards: readonly ArrayLike<number>[],
  options: LossOptions = {},
): GroupLossResult {
  const { betaPi, betaR } = resolveLossOptions(options);
  const n = checkGroups(u, rewards);
  const perExample = new Float64Array(n);
  const pF: Float64Array[] = [], pR: Float64Array[] = [], grad: Float64Array[] = [];
  for (let b = 0; b < n; b++) {
    const logPf = logSoftmax(Array.from(u[b], (x) => betaPi * x));
    const pr = logSoftmax(Array.from(rewards[b], (r) => r / betaR)).map(Math.exp);
    const pf = logPf.map(Math.exp);
    let ce = 0;
    for (let i = 0; i < pr.length; i++) ce -= pr[i] * logPf[i];
    perExample[b] = ce;
    pF.push(pf);
    pR.push(pr);
    grad.push(pf.map((p, j) => (betaPi * (p - pr[j])) / n));
  }
  return { loss: mean(perExample), perExample, pF, pR, grad };
}

/** Emits DPO-pref for `uChosen`, `uRejected` of shape `[B]`: ℓ = softplus(−β_π (u_w − u_l)). */
export function emitDpoPref(uChosen: Value, uRejected: Value, options: EmitLossOptions = {}): PairLossValues {
  lossDtype("uChosen", uChosen);
  checkShape("uChosen", uChosen, [null]);
  checkShape("uRejected", uRejected, [typeof uChosen.shape[0] === "number" ? uChosen.shape[0] : null]);
  checkHyper(options);
  const betaPi = hyper("betaPi", options.betaPi ?? LOSS_DEFAULTS.betaPi, uChosen);
  const perExample = emitSoftplus(op.neg(op.mul(betaPi, op.sub(uChosen, uRejected))));
  return { loss: op.reduceMean(perExample, [0]), perExample };
}

/** Emits DPO-rw for `u` and `rewards` of shape `[B, K]` (no gradient flows into the rewards). */
export function emitDpoRw(u: Value, rewards: Value, options: EmitLossOptions = {}): GroupLossValues {
  const { logPf, pF, pR } = emitGroupDistributions(u, rewards, options);
  const perExample = op.neg(op.reduceSum(op.mul(pR, logPf), [1]));
  return { loss: op.reduceMean(perExample, [0]), perExample, pF, pR };
}
