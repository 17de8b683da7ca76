/**
 * The gradient rule of every differentiable op, in one explicit table. Its type maps every
 * {@link DifferentiableOp} to a rule, so an op listed without a rule (or a rule for an unlisted op)
 * does not compile. No registration by import side effects.
 *
 * @module
 */

import { DIFFERENTIABLE_OPS, type DifferentiableOp, type GradRule } from "./types.ts";
import { absGrad } from "./rules/abs.ts";
import { addGrad } from "./rules/add.ts";
import { castGrad } from "./rules/cast.ts";
import { clipGrad } from "./rules/clip.ts";
import { concatGrad } from "./rules/concat.ts";
import { cumSumGrad } from "./rules/cum_sum.ts";
import { divGrad } from "./rules/div.ts";
import { erfGrad } from "./rules/erf.ts";
import { expGrad } from "./rules/exp.ts";
import { expandGrad } from "./rules/expand.ts";
import { gatherGrad } from "./rules/gather.ts";
import { gatherElementsGrad } from "./rules/gather_elements.ts";
import { gemmGrad } from "./rules/gemm.ts";
import { identityGrad } from "./rules/identity.ts";
import { layerNormalizationGrad } from "./rules/layer_normalization.ts";
import { logGrad } from "./rules/log.ts";
import { logSoftmaxGrad } from "./rules/log_softmax.ts";
import { matMulGrad } from "./rules/mat_mul.ts";
import { maxGrad } from "./rules/max.ts";
import { minGrad } from "./rules/min.ts";
import { mulGrad } from "./rules/mul.ts";
import { negGrad } from "./rules/neg.ts";
import { powGrad } from "./rules/pow.ts";
import { reciprocalGrad } from "./rules/reciprocal.ts";
import { reduceLogSumExpGrad } from "./rules/reduce_log_sum_exp.ts";
import { reduceMaxGrad } from "./rules/reduce_max.ts";
import { reduceMeanGrad } from "./rules/reduce_mean.ts";
import { reduceMinGrad } from "./rules/reduce_min.ts";
import { reduceSumGrad } from "./rules/reduce_sum.ts";
import { reluGrad } from "./rules/relu.ts";
import { reshapeGrad } from "./rules/reshape.ts";
import { sigmoidGrad } from "./rules/sigmoid.ts";
import { sliceGrad } from "./rules/slice.ts";
import { softmaxGrad } from "./rules/softmax.ts";
import { splitGrad } from "./rules/split.ts";
import { sqrtGrad } from "./rules/sqrt.ts";
import { squeezeGrad } from "./rules/squeeze.ts";
import { subGrad } from "./rules/sub.ts";
import { tanhGrad } from "./rules/tanh.ts";
import { transposeGrad } from "./rules/transpose.ts";
import { triluGrad } from "./rules/trilu.ts";
import { unsqueezeGrad } from "./rules/unsqueeze.ts";
import { whereGrad } from "./rules/where.ts";

/** Op name -> gradient rule. */
export const GRAD_RULES: { readonly [Op in DifferentiableOp]: GradRule } = {
  Abs: absGrad,
  Add: addGrad,
  Cast: castGrad,
  Clip: clipGrad,
  Concat: concatGrad,
  CumSum: cumSumGrad,
  Div: divGrad,
  Erf: erfGrad,
  Exp: expGrad,
  Expand: expandGrad,
  Gather: gatherGrad,
  GatherElements: gatherElementsGrad,
  Gemm: gemmGrad,
  Identity: identityGrad,
  LayerNormalization: layerNormalizationGrad,
  Log: logGrad,
  LogSoftmax: logSoftmaxGrad,
  MatMul: matMulGrad,
  Max: maxGrad,
  Min: minGrad,
  Mul: mulGrad,
  Neg: negGrad,
  Pow: powGrad,
  Reciprocal: reciprocalGrad,
  ReduceLogSumExp: reduceLogSumExpGrad,
  ReduceMax: reduceMaxGrad,
  ReduceMean: reduceMeanGrad,
  ReduceMin: reduceMinGrad,
  ReduceSum: reduceSumGrad,
  Relu: reluGrad,
  Reshape: reshapeGrad,
  Sigmoid: sigmoidGrad,
  Slice: sliceGrad,
  Softmax: softmaxGrad,
  Split: splitGrad,
  Sqrt: sqrtGrad,
  Squeeze: squeezeGrad,
  Sub: subGrad,
  Tanh: tanhGrad,
  Transpose: transposeGrad,
  Trilu: triluGrad,
  Unsqueeze: unsqueezeGrad,
  Where: whereGrad,
};

const OPS: ReadonlySet<string> = new Set(DIFFERENTIABLE_OPS);

/** True when `op` (a default-domain ONNX op type) has a gradient rule. */
export function hasGradRule(op: string): op is DifferentiableOp {
  return OPS.has(op);
}
