/**
 * Builders for the `com.microsoft` training ops of ORT's training API (the compatibility engine's
 * artifacts, src/ort_training/) and for ops on sequence elements, whose shapes the graph does not
 * know: ORT builds the sequences from its parameter map at run time.
 *
 * @module
 */

import type { DType } from "./dtype.ts";
import { attr, type Attribute, type Graph, GraphError, type Value } from "./graph.ts";

/** Where ORT looks for training ops. */
export const MS_DOMAIN = "com.microsoft";

/** The shape written for tensors of unknown shape (a sequence's elements): only graph I/O is typed. */
export const ELEMENT_SHAPE: readonly string[] = ["elem"];

/**
 * An op on sequence elements or other tensors of unknown shape: only the output's element type is
 * declared (ORT infers the rest when it loads the model).
 */
export function elementOp(
  g: Graph,
  op: string,
  inputs: readonly (Value | null)[],
  dtype: DType = "float32",
  attributes: Record<string, Attribute> = {},
): Value {
  return g.addNode(op, inputs, [{ dtype, shape: ELEMENT_SHAPE }], attributes)[0];
}

/**
 * `InPlaceAccumulatorV2(buffer, grad, reset)`: ORT's gradient accumulator (adds `grad` into
 * `buffer`, or overwrites it when `reset` is true); its bool `[1]` output is named `name`.
 */
export function inPlaceAccumulator(buffer: Value, grad: Value, reset: Value, name: string): Value {
  if (buffer.dtype !== grad.dtype) {
    throw new GraphError(`InPlaceAccumulatorV2: buffer ${buffer.dtype} and gradient ${grad.dtype} differ`);
  }
  const g = buffer.graph;
  g.extraOpsets.set(MS_DOMAIN, 1);
  return g.addNode(
    "InPlaceAccumulatorV2",
    [buffer, grad, reset],
    [{ dtype: "bool", shape: [1], name }],
    {},
    MS_DOMAIN,
  )[0];
}

/** Settings of {@link adamWOptimizer} (ORT's attribute names). */
export interface AdamWAttributes {
  alpha: number;
  beta: number;
  epsilon: number;
  weightDecay: number;
}

/**
 * `AdamWOptimizer(lr, step, params, grads, m1, m2)` with PyTorch semantics (adam_mode 0, bias
 * correction): updates the sequences in place; its bool `[1]` output says whether it did.
 */
export function adamWOptimizer(
  inputs: { lr: Value; step: Value; params: Value; grads: Value; m1: Value; m2: Value },
  a: AdamWAttributes,
): Value {
  const g = inputs.lr.graph;
  g.extraOpsets.set(MS_DOMAIN, 1);
  const { lr, step, params, grads, m1, m2 } = inputs;
  return g.addNode("AdamWOptimizer", [lr, step, params, grads, m1, m2], [{ dtype: "bool", shape: [1] }], {
    alpha: attr.float(a.alpha),
    beta: attr.float(a.beta),
    epsilon: attr.float(a.epsilon),
    weight_decay: attr.float(a.weightDecay),
    adam_mode: attr.int(0),
    correct_bias: attr.int(1),
  }, MS_DOMAIN)[0];
}

/**
 * `SGDOptimizerV2(lr, params, grads)`: p ← p − lr·g in place. Its bool output is a scalar (ORT
 * 1.19 infers one; declaring `[1]` fails its shape inference).
 */
export function sgdOptimizer(lr: Value, params: Value, grads: Value): Value {
  const g = lr.graph;
  g.extraOpsets.set(MS_DOMAIN, 1);
  return g.addNode("SGDOptimizerV2", [lr, params, grads], [{ dtype: "bool", shape: [] }], {}, MS_DOMAIN)[0];
}
