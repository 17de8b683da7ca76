/**
 * Options (hyper-parameters, defaults, validation) and result types shared by the EXO and DPO losses.
 *
 * Where the temperature goes: the paper divides the policy's logits by a temperature τ (it trains
 * with τ = 0.8; our default is 1) *before* the log-softmax that scores each token. That happens
 * upstream, in the sequence-scoring code, so the `u` these losses receive already includes it; τ is
 * therefore not an option here.
 *
 * @module
 */

import type { Value } from "../onnx/graph.ts";

/**
 * Options of the analytic (float64) losses.
 *
 * - `betaPi` (β_π, TRL's `beta`): scales the policy log-ratio, z = β_π · u. Default 0.1.
 * - `betaR` (β_r): reward temperature of the reward losses, p_r = softmax(r / β_r). Default 0.1.
 * - `eps` (ε, TRL's `label_smoothing` for `exo_pair`): EXO-pref target p_r = (1 − ε, ε). Default 1e-3.
 *
 * The logit temperature τ is applied by the scoring code before the token log-softmax, so the
 * log-ratios u passed in are already tempered (see the module doc).
 */
export interface LossOptions {
  /** β_π > 0: scale of u = log π_θ − log π_ref (TRL's `beta`). Default 0.1. */
  betaPi?: number;
  /** β_r > 0: reward temperature, p_r = softmax(r / β_r) (reward losses only). Default 0.1. */
  betaR?: number;
  /** ε in (0, 1): EXO-pref label smoothing, p_r = (1 − ε, ε). Default 1e-3. */
  eps?: number;
}

/**
 * Options of the graph emitters: the same hyper-parameters, each either a number (baked into the
 * graph as a constant) or a scalar graph input of the loss dtype (shape `[]` or `[1]`), so one
 * compiled graph can run with many values (schedules, property tests).
 */
export interface EmitLossOptions {
  /** β_π, see {@link LossOptions.betaPi}. */
  betaPi?: number | Value;
  /** β_r, see {@link LossOptions.betaR}. */
  betaR?: number | Value;
  /** ε, see {@link LossOptions.eps}. As a graph value, log(1 − ε) is computed as Log(1 − ε). */
  eps?: number | Value;
}

/** The defaults: β_π = 0.1, β_r = 0.1, ε = 1e-3 (TRL's exo_pair default label smoothing). */
export const LOSS_DEFAULTS: Readonly<Required<LossOptions>> = { betaPi: 0.1, betaR: 0.1, eps: 1e-3 };

/** Fills in defaults and checks ranges; throws a RangeError naming the bad option. */
export function resolveLossOptions(o: LossOptions = {}): Required<LossOptions> {
  const r = { ...LOSS_DEFAULTS, ...stripUndefined(o) };
  checkHyper(r);
  return r;
}

/** Range checks of numeric hyper-parameters (graph values are checked for shape and dtype elsewhere). */
export function checkHyper(o: { betaPi?: unknown; betaR?: unknown; eps?: unknown }): void {
  if (typeof o.betaPi === "number" && !(o.betaPi > 0 && Number.isFinite(o.betaPi))) {
    throw new RangeError(`betaPi must be a positive finite number, got ${o.betaPi}`);
  }
  if (typeof o.betaR === "number" && !(o.betaR > 0 && Number.isFinite(o.betaR))) {
    throw new RangeError(`betaR must be a positive finite number, got ${o.betaR}`);
  }
  if (typeof o.eps === "number" && !(o.eps > 0 && o.eps < 1)) {
    throw new RangeError(
      `eps must lie strictly between 0 and 1 (log(eps) and log(1 - eps) must be finite), got ${o.eps}`,
    );
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** What an analytic pairwise loss returns (B pairs). */
export interface PairLossResult {
  /** Batch loss: the mean of `perExample`. */
  readonly loss: number;
  /** Loss of each pair. */
  readonly perExample: Float64Array;
  /** p_f = softmax(β_π [u_w, u_l]) of each pair, `[B][2]`. */
  readonly pF: Float64Array[];
  /** ∂(batch loss)/∂u_w per pair (includes the 1/B of the mean). */
  readonly gradChosen: Float64Array;
  /** ∂(batch loss)/∂u_l per pair (includes the 1/B of the mean). */
  readonly gradRejected: Float64Array;
}

/** What an analytic reward (K-completion) loss returns (B groups of K). */
export interface GroupLossResult {
  /** Batch loss: the mean of `perExample`. */
  readonly loss: number;
  /** Loss of each group. */
  readonly perExample: Float64Array;
  /** p_f = softmax(β_π u) per group, `[B][K]`. */
  readonly pF: Float64Array[];
  /** p_r = softmax(r / β_r) per group, `[B][K]`. */
  readonly pR: Float64Array[];
  /** ∂(batch loss)/∂u per group, `[B][K]` (includes the 1/B of the mean). */
  readonly grad: Float64Array[];
}

/** What a pairwise loss emitter returns: graph values of the loss dtype. */
export interface PairLossValues {
  /** Batch loss, shape `[]`: the mean of `perExample`. */
  readonly loss: Value;
  /** Loss of each pair, shape `[B]`. */
  readonly perExample: Value;
}

/** What a reward loss emitter returns: graph values of the loss dtype. */
export interface GroupLossValues {
  /** Batch loss, shape `[]`: the mean of `perExample`. */
  readonly loss: Value;
  /** Loss of each group, shape `[B]`. */
  readonly perExample: Value;
  /** p_f = softmax(β_π u), shape `[B, K]`. */
  readonly pF: Value;
  /** p_r = softmax(r / β_r), shape `[B, K]`. */
  readonly pR: Value;
}
