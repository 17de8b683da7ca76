/**
 * Reverse-mode differentiation of ONNX graphs, emitting the backward pass as standard ONNX ops.
 *
 * - {@link backward}: gradients of a scalar loss (or a seeded output) w.r.t. chosen values.
 * - {@link hasGradRule}: whether an op can appear between the trainable values and the loss.
 *
 * @module
 */

export { backward, type BackwardOptions } from "./backward.ts";
export { hasGradRule } from "./registry.ts";
export { DIFFERENTIABLE_OPS, type DifferentiableOp, type GradContext, type GradRule } from "./types.ts";
