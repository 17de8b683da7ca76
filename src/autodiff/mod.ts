/**
 * Reverse-mode differentiation of ONNX graphs, emitting the backward pass as standard ONNX ops.
 *
 * - {@link backward}: gradients of a scalar loss (or a seeded output) w.r.t. chosen values.
 * - {@link hasGradRule}: whether an op can appear between the trainable values and the loss.
 * - {@link setCustomGradient}, {@link setRecompute}: builder hints that save memory (see custom.ts).
 *
 * @module
 */

export { backward, type BackwardOptions } from "./backward.ts";
export { type CustomGradient, setCustomGradient, setRecompute } from "./custom.ts";
export { hasGradRule } from "./registry.ts";
export { DIFFERENTIABLE_OPS, type DifferentiableOp, type GradContext, type GradRule } from "./types.ts";
