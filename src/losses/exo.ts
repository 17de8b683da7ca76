/**
 * EXO (Ji et al. 2024, "Towards Efficient Exact Optimization of Language Model Alignment"): the
 * policy's implicit distribution over K completions is pulled towards a target by a *reverse* KL.
 *
 * With u_i = log π_θ(y_i|x) − log π_ref(y_i|x) (summed over completion tokens):
 *
 *   z = β_π u,   p_f = softmax(z),   ℓ = KL(p_f ‖ p_r) = Σ_i p_f,i (log p_f,i − log p_r,i)
 *
 * - EXO-rw (K completions with rewards r): p_r = softmax(r / β_r).
 * - EXO-pref (K = 2, chosen then rejected): p_r = (1 − ε, ε), log p_r = (log1p(−ε), log ε). This is
 *   TRL's `loss_type="exo_pair"` with `label_smoothing = ε`.
 *
 * Gradient (∂ log p_f,i/∂z_j = δ_ij − p_f,j and Σ_i p_f,i = 1):
 *
 *   ∂ℓ/∂z_j = p_f,j (log p_f,j − log p_r,j − ℓ),   ∂ℓ/∂u_j = β_π ∂ℓ/∂z_j
 *
 * The batch loss is the mean of ℓ over the B examples, so its gradient carries a 1/B.
 *
 * Each loss comes twice, side by side: an analytic float64 function that returns the loss and its
 * gradient w.r.t. u (the reference the tests hold the graph to), and an emitter that writes the loss
 * into an ONNX graph for training (differentiated by `src/autodiff`).
 *
 * @module
 */

import type { Value } from "../onnx/graph.ts";
import * as op from "../onnx/ops.ts";
import { checkShape, emitGroupDistributions, emitSoftplus, hyper, lossDtype } from "./_emit.ts";
import { checkGroups, checkPairs, logSoftmax, mean } from "./_stable.ts";
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
 * KL(p_f ‖ p_r) of one example from logits z and log p_r, with ∂KL/∂z.
 *
 * The largest p_f's component is taken as minus the sum of the others (Σ_j ∂KL/∂z_j = 0): written
 * out, log p_f,j − log p_r,j − KL cancels to ~e^−s when p_f is saturated (margin s), so the direct
 * form would keep only its absolute accuracy (~1e-19 against a true value of ~s e^−s).
 */
function klFromLogits(z: ArrayLike<number>, logPr: ArrayLike<number>) {
  const logPf = logSoftmax(z);
  const pF = logPf.map(Math.exp);
  let kl = 0;
  // A p_f that underflowed to 0 contributes 0 (its log is finite, so no 0 · ∞).
  for (let i = 0; i < pF.length; i++) kl += pF[i] * (logPf[i] - logPr[i]);
  const dz = pF.map((p, j) => p * (logPf[j] - logPr[j] - kl));
  let top = 0;
  for (let j = 1; j < pF.length; j++) if (pF[j] > pF[top]) top = j;
  dz[top] = 0;
  dz[top] = -dz.reduce((s, v) => s + v, 0);
  return { kl, pF, dz };
}

/**
 * EXO-pref over B pairs: ℓ = KL(softmax(β_π [u_w, u_l]) ‖ (1 − ε, ε)), batch mean, with the
 * gradient w.r.t. u_w and u_l.
 *
 * @example
 * ```ts
 * import { exoPref } from "./exo.ts";
 * const r = exoPref(new Float64Array([1.5]), new Float64Array([-0.5]), { betaPi: 0.1, eps: 1e-3 });
 * console.log(r.loss, r.gradChosen[0]); // gradChosen = −gradRejected
 * ```
 */
export function exoPref(
  uChosen: ArrayLike<number>,
  uRejected: ArrayLike<number>,
  options: LossOptions = {},
): PairLossResult {
  const { betaPi, eps } = resolveLossOptions(options);
  const n = checkPairs(uChosen, uRejected);
  const logPr = [Math.log1p(-eps), Math.log(eps)];
  const perExample = new Float64Array(n);
  const gradChosen = new Float64Array(n);
  const gradRejected = new Float64Array(n);
  const pF: Float64Array[] = [];
  for (let b = 0; b < n; b++) {
    const r = klFromLogits([betaPi * uChosen[b], betaPi * uRejected[b]], logPr);
    perExample[b] = r.kl;
    pF.push(r.pF);
    gradChosen[b] = (betaPi * r.dz[0]) / n;
    gradRejected[b] = (betaPi * r.dz[1]) / n;
  }
  return { loss: mean(perExample), perExample, pF, gradChosen, gradRejected };
}

/**
 * EXO-rw over B groups of K ≥ 2 completions: ℓ = KL(softmax(β_π u) ‖ softmax(r / β_r)), batch
 * mean, with the gradient w.r.t. every u. `u[b]` and `rewards[b]` are the K values of group b
 * (groups may differ in K).
 */
export function exoRw(
  u: readonly ArrayLike<number>[],
  rewards: readonly ArrayLike<number>[],
  options: LossOptions = {},
): GroupLossResult {
  const { betaPi, betaR } = resolveLossOptions(options);
  const n = checkGroups(u, rewards);
  const perExample = new Float64Array(n);
  const pF: Float64Array[] = [], pR: Float64Array[] = [], grad: Float64Array[] = [];
  for (let b = 0; b < n; b++) {
    const logPr = logSoftmax(Array.from(rewards[b], (r) => r / betaR));
    const r = klFromLogits(Array.from(u[b], (x) => betaPi * x), logPr);
    perExample[b] = r.kl;
    pF.push(r.pF);
    pR.push(logPr.map(Math.exp));
    grad.push(r.dz.map((g) => (betaPi * g) / n));
  }
  return { loss: mean(perExample), perExample, pF, pR, grad };
}

/**
 * Emits EXO-pref for `uChosen`, `uRejected` of shape `[B]` (float32 for training, float64 for
 * checks). With d = β_π (u_w − u_l): log p_f = (−softplus(−d), −softplus(d)), p_f = exp(log p_f),
 * which is TRL's exo_pair written with a stable softplus.
 */
export function emitExoPref(uChosen: Value, uRejected: Value, options: EmitLossOptions = {}): PairLossValues {
  lossDtype("uChosen", uChosen);
  checkShape("uChosen", uChosen, [null]);
  checkShape("uRejected", uRejected, [typeof uChosen.shape[0] === "number" ? uChosen.shape[0] : null]);
  checkHyper(options);
  const betaPi = hyper("betaPi", options.betaPi ?? LOSS_DEFAULTS.betaPi, uChosen);
  const epsIn = options.eps ?? LOSS_DEFAULTS.eps;
  // Numbers keep log1p's precision; a graph ε pays Log(1 − ε) (absolute error ~1e-16 in float64).
  const [logPrW, logPrL] = typeof epsIn === "number"
    ? [uChosen.graph.scalar(Math.log1p(-epsIn), uChosen.dtype), uChosen.graph.scalar(Math.log(epsIn), uChosen.dtype)]
    : ((e) => [op.log(op.sub(uChosen.graph.scalar(1, uChosen.dtype), e)), op.log(e)])(hyper("eps", epsIn, uChosen));
  const d = op.mul(betaPi, op.sub(uChosen, uRejected));
  const logPfW = op.neg(emitSoftplus(op.neg(d)));
  const logPfL = op.neg(emitSoftplus(d));
  const perExample = op.add(
    op.mul(op.exp(logPfW), op.sub(logPfW, logPrW)),
    op.mul(op.exp(logPfL), op.sub(logPfL, logPrL)),
  );
  return { loss: op.reduceMean(perExample, [0]), perExample };
}

/**
 * Emits EXO-rw for `u` and `rewards` of shape `[B, K]` (rewards are cast to u's dtype; no gradient
 * flows into them).
 */
export function emitExoRw(u: Value, rewards: Value, options: EmitLossOptions = {}): GroupLossValues {
  const { logPf, logPr, pF, pR } = emitGroupDistributions(u, rewards, options);
  const perExample = op.reduceSum(op.mul(pF, op.sub(logPf, logPr)), [1]);
  return { loss: op.reduceMean(perExample, [0]), perExample, pF, pR };
}
