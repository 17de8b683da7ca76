/**
 * Preference losses: EXO and DPO, in pairwise (chosen/rejected) and reward (K completions) forms,
 * each as an analytic float64 function with its gradient and as an ONNX graph emitter; TRL-named
 * metrics; their options.
 *
 * @module
 */

export { emitExoPref, emitExoRw, exoPref, exoRw } from "./exo.ts";
export { dpoPref, dpoRw, emitDpoPref, emitDpoRw } from "./dpo.ts";
export {
  emitGroupMetrics,
  emitPairMetrics,
  GROUP_METRICS,
  type GroupMetric,
  type GroupMetricInputs,
  groupMetrics,
  PAIR_METRICS,
  type PairMetric,
  type PairMetricInputs,
  pairMetrics,
} from "./metrics.ts";
export {
  type EmitLossOptions,
  type GroupLossResult,
  type GroupLossValues,
  LOSS_DEFAULTS,
  type LossOptions,
  type PairLossResult,
  type PairLossValues,
  resolveLossOptions,
} from "./types.ts";
