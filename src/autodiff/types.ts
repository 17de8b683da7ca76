/**
 * The types shared by the backward walker and the gradient rules.
 *
 * @module
 */

import type { Graph, Node, Value } from "../onnx/graph.ts";

/** Every ONNX op (default domain) that has a gradient rule. */
export const DIFFERENTIABLE_OPS = [
  "Abs",
  "Add",
  "Cast",
  "Clip",
  "Concat",
  "CumSum",
  "Div",
  "Erf",
  "Exp",
  "Expand",
  "Gather",
  "GatherElements",
  "Gemm",
  "Identity",
  "LayerNormalization",
  "Log",
  "LogSoftmax",
  "MatMul",
  "Max",
  "Min",
  "Mul",
  "Neg",
  "Pow",
  "Reciprocal",
  "ReduceLogSumExp",
  "ReduceMax",
  "ReduceMean",
  "ReduceMin",
  "ReduceSum",
  "Relu",
  "Reshape",
  "Sigmoid",
  "Slice",
  "Softmax",
  "Split",
  "Sqrt",
  "Squeeze",
  "Sub",
  "Tanh",
  "Transpose",
  "Trilu",
  "Unsqueeze",
  "Where",
] as const;

/** An op with a gradient rule. */
export type DifferentiableOp = typeof DIFFERENTIABLE_OPS[number];

/** What a rule sees of the node it differentiates. */
export interface GradContext {
  /** The graph the backward nodes are added to (the forward graph itself). */
  readonly graph: Graph;
  /** The forward node. */
  readonly node: Node;
  /** The node's input values, `null` for omitted optional inputs. */
  readonly inputs: readonly (Value | null)[];
  /** The node's output values. */
  readonly outputs: readonly Value[];
  /** Which inputs need a gradient: float inputs that depend on a `wrt` value. Others may be skipped. */
  readonly needs: readonly boolean[];
  /** Cotangents of the outputs (same shape and dtype as the output), `null` where none flows. */
  readonly dys: readonly (Value | null)[];
}

/**
 * A vector-Jacobian product rule: one gradient per node input, `null`/`undefined` where the input
 * needs none. A gradient may keep broadcast axes of the output (same rank or more leading axes, or
 * size where the input has 1): the walker sums them away. Nothing else about its shape is forgiven.
 */
export type GradRule = (ctx: GradContext) => readonly (Value | null | undefined)[];
