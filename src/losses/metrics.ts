/**
 * Training metrics of the preference losses, named as TRL logs them, each as an analytic float64
 * function and as a graph emitter (scalars of the loss dtype, batch means, no gradient).
 *
 * Pairs (u_w, u_l: log-ratios of chosen and rejected; β = β_π), as TRL's DPOTrainer:
 * - `rewards/chosen`: mean of β u_w; `rewards/rejected`: mean of β u_l
 * - `rewards/accuracies`: fraction of pairs with u_w > u_l (strict: a tie counts as wrong)
 * - `rewards/margins`: mean of β (u_w − u_l)
 * - `logps/chosen`, `logps/rejected`: mean policy log-probability (summed over completion tokens)
 *
 * Groups of K completions with rewards r (the EXO-rw / DPO-rw analogues). "top" is the completion
 * with the highest reward (the first one on a tie), the analogue of "chosen":
 * - `rewards/mean`: mean of β u over all completions
 * - `rewards/top`: mean of β u_top (= `rewards/chosen` for K = 2)
 * - `rewards/margins`: mean of β u_top − mean_{k≠top} β u_k (= `rewards/margins` for K = 2)
 * - `rewards/accuracies`: fraction of groups where argmax_k β u_k = argmax_k r_k (first index on ties)
 * - `logps/mean`, `logps/top`: mean policy log-probability over all completions / of the top one
 * - `p_f/top`: mean p_f of the top completion, p_f = softmax(β u) (1/K at the start, → 1 as it learns)
 * - `p_f/entropy`: mean entropy −Σ p_f log p_f in nats (log K at the start)
 *
 * @module
 */

import { GraphError, type Value } from "../onnx/graph.ts";
import * as op from "../onnx/ops.ts";
import { castLike, checkShape, emitLogSoftmax, hyper, lossDtype } from "./_emit.ts";
import { checkFinite, checkGroups, checkPairs, logSoftmax, mean } from "./_stable.ts";
import { LOSS_DEFAULTS } from "./types.ts";

/** Names of the pairwise metrics (TRL's). */
export const PAIR_METRICS = [
  "rewards/chosen",
  "rewards/rejected",
  "rewards/accuracies",
  "rewards/margins",
  "logps/chosen",
  "logps/rejected",
] as const;

/** Names of the group (K-completion) metrics. */
export const GROUP_METRICS = [
  "rewards/mean",
  "rewards/top",
  "rewards/margins",
  "rewards/accuracies",
  "logps/mean",
  "logps/top",
  "p_f/top",
  "p_f/entropy",
] as const;

/** A pairwise metric name. */
export type PairMetric = typeof PAIR_METRICS[number];
/** A group metric name. */
export type GroupMetric = typeof GROUP_METRICS[number];

/** Inputs of the pairwise metrics: per-pair log-ratios and policy log-probabilities. */
export interface PairMetricInputs<T> {
  readonly uChosen: T;
  readonly uRejected: T;
  readonly logpChosen: T;
  readonly logpRejected: T;
}

/** Inputs of the group metrics: `[B][K]` log-ratios, rewards and policy log-probabilities. */
export interface GroupMetricInputs<T> {
  readonly u: T;
  readonly rewards: T;
  readonly logp: T;
}

/** Pairwise metrics in float64 (`betaPi` defaults to 0.1). */
export function pairMetrics(
  x: PairMetricInputs<ArrayLike<number>>,
  options: { betaPi?: number } = {},
): Record<PairMetric, number> {
  const beta = options.betaPi ?? LOSS_DEFAULTS.betaPi;
  const n = checkPairs(x.uChosen, x.uRejected);
  checkPairs(x.logpChosen, x.logpRejected);
  if (x.logpChosen.length !== n) throw new RangeError(`logpChosen has ${x.logpChosen.length} entries, expected ${n}`);
  const w = Float64Array.from(x.uChosen, (v) => beta * v);
  const l = Float64Array.from(x.uRejected, (v) => beta * v);
  return {
    "rewards/chosen": mean(w),
    "rewards/rejected": mean(l),
    "rewards/accuracies": mean(w.map((_, i) => (x.uChosen[i] > x.uRejected[i] ? 1 : 0))),
    "rewards/margins": mean(w.map((v, i) => v - l[i])),
    "logps/chosen": mean(x.logpChosen),
    "logps/rejected": mean(x.logpRejected),
  };
}

/** Index of the first maximum. */
function argmax(x: ArrayLike<number>): number {
  let a = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[a]) a = i;
  return a;
}

/** Group metrics in float64 (`betaPi` defaults to 0.1). */
export function groupMetrics(
  x: GroupMetricInputs<readonly ArrayLike<number>[]>,
  options: { betaPi?: number } = {},
): Record<GroupMetric, number> {
  const beta = options.betaPi ?? LOSS_DEFAULTS.betaPi;
  const n = checkGroups(x.u, x.rewards);
  if (x.logp.length !== n) throw new RangeError(`logp has ${x.logp.length} groups, expected ${n}`);
  const acc = { mean: 0, top: 0, margin: 0, hit: 0, lpMean: 0, lpTop: 0, pTop: 0, ent: 0 };
  for (let b = 0; b < n; b++) {
    const k = x.u[b].length;
    if (x.logp[b].length !== k) throw new RangeError(`logp[${b}] has ${x.logp[b].length} entries, expected ${k}`);
    checkFinite(`logp[${b}]`, x.logp[b]);
    const z = Array.from(x.u[b], (v) => beta * v);
    const top = argmax(x.rewards[b]);
    const sum = z.reduce((p, q) => p + q, 0);
    const logPf = logSoftmax(z);
    acc.mean += sum / k;
    acc.top += z[top];
    acc.margin += z[top] - (sum - z[top]) / (k - 1);
    acc.hit += argmax(z) === top ? 1 : 0;
    acc.lpMean += mean(x.logp[b]);
    acc.lpTop += x.logp[b][top];
    acc.pTop += Math.exp(logPf[top]);
    acc.ent -= logPf.reduce((s, l) => s + Math.exp(l) * l, 0);
  }
  return {
    "rewards/mean": acc.mean / n,
    "rewards/top": acc.top / n,
    "rewards/margins": acc.margin / n,
    "rewards/accuracies": acc.hit / n,
    "logps/mean": acc.lpMean / n,
    "logps/top": acc.lpTop / n,
    "p_f/top": acc.pTop / n,
    "p_f/entropy": acc.ent / n,
  };
}

/** Emits the pairwise metrics from `[B]` values (scalars `[]` of u's dtype). */
export function emitPairMetrics(
  x: PairMetricInputs<Value>,
  options: { betaPi?: number | Value } = {},
): Record<PairMetric, Value> {
  const dtype = lossDtype("uChosen", x.uChosen);
  for (const [name, v] of Object.entries(x)) {
    checkShape(name, v, [typeof x.uChosen.shape[0] === "number" ? x.uChosen.shape[0] : null]);
    if (v.dtype !== dtype) throw new GraphError(`${name} must have dtype ${dtype}, got ${v.dtype}`);
  }
  const g = x.uChosen.graph;
  const beta = hyper("betaPi", options.betaPi ?? LOSS_DEFAULTS.betaPi, x.uChosen);
  const w = op.mul(beta, x.uChosen), l = op.mul(beta, x.uRejected);
  const m = (v: Value) => op.reduceMean(v, [0]);
  return {
    "rewards/chosen": m(w),
    "rewards/rejected": m(l),
    "rewards/accuracies": m(op.where(op.greater(x.uChosen, x.uRejected), g.scalar(1, dtype), g.scalar(0, dtype))),
    "rewards/margins": m(op.sub(w, l)),
    "logps/chosen": m(x.logpChosen),
    "logps/rejected": m(x.logpRejected),
  };
}

/**
 * A float 0/1 mask of the first maximum along the last axis. Built from ReduceMax, Greater, Where
 * and CumSum, which all stay on the GPU (ArgMax + int64 Equal/Cast would go to the CPU on WebGPU).
 */
function emitFirstMaxMask(x: Value): Value {
  const g = x.graph;
  const one = g.scalar(1, x.dtype), zero = g.scalar(0, x.dtype);
  const isMax = op.where(op.greater(op.reduceMax(x, [-1], true), x), zero, one);
  const before = op.cumsum(isMax, x.shape.length - 1, true);
  return op.where(op.greater(before, zero), zero, isMax);
}

/** Emits the group metrics from `[B, K]` values (scalars `[]` of u's dtype). */
export function emitGroupMetrics(
  x: GroupMetricInputs<Value>,
  options: { betaPi?: number | Value } = {},
): Record<GroupMetric, Value> {
  const dtype = lossDtype("u", x.u);
  const dims = x.u.shape.map((d) => (typeof d === "number" ? d : null));
  checkShape("u", x.u, [null, null]);
  checkShape("rewards", x.rewards, dims);
  checkShape("logp", x.logp, dims);
  if (x.logp.dtype !== dtype) throw new GraphError(`logp must have dtype ${dtype}, got ${x.logp.dtype}`);
  const g = x.u.graph;
  const beta = hyper("betaPi", options.betaPi ?? LOSS_DEFAULTS.betaPi, x.u);
  const rewards = castLike(x.rewards, x.u);
  const z = op.mul(beta, x.u);
  const top = emitFirstMaxMask(rewards);
  const pick = (v: Value) => op.reduceSum(op.mul(top, v), [1]);
  const m = (v: Value) => op.reduceMean(v, [0]);
  const zTop = pick(z);
  const others = op.div(op.sub(op.reduceSum(z, [1]), zTop), op.reduceSum(op.sub(g.scalar(1, dtype), top), [1]));
  const logPf = emitLogSoftmax(z);
  const pF = op.exp(logPf);
  return {
    "rewards/mean": op.reduceMean(z, [0, 1]),
    "rewards/top": m(zTop),
    "rewards/margins": m(op.sub(zTop, others)),
    "rewards/accuracies": m(op.reduceSum(op.mul(top, emitFirstMaxMask(z)), [1])),
    "logps/mean": op.reduceMean(x.logp, [0, 1]),
    "logps/top": m(pick(x.logp)),
    "p_f/top": m(pick(pF)),
    "p_f/entropy": m(op.neg(op.reduceSum(op.mul(pF, logPf), [1]))),
  };
}
