/**
 * LogSoftmax along one axis: y_i = x_i - log sum_j e^(x_j).
 *
 *   dx = dy - softmax(x) * sum(dy, axis),   softmax(x) = e^y
 *
 * Written with Exp rather than Softmax/LogSoftmax ops, which keeps the backward pass on the GPU
 * (LogSoftmax falls back to the CPU on ORT's WebGPU EP).
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { attrInt } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of LogSoftmax (opset 13 semantics: one axis, default -1). */
export const logSoftmaxGrad: GradRule = ({ node, outputs, dys }) => {
  const y = outputs[0], dy = dys[0]!;
  const axis = attrInt(node, "axis", -1);
  return [op.sub(dy, op.mul(op.exp(y), op.reduceSum(dy, [axis], true)))];
};
