/**
 * Whether a training step should recompute its layers in the backward pass (gradient
 * checkpointing), from a rough estimate of the activations a step keeps without it.
 *
 * Per token and layer the backward pass reads about 10 hidden-sized and 6 MLP-sized float32
 * tensors (norm inputs and outputs, projections, activations, LoRA inputs), and per row, head and
 * layer 3 attention-score matrices `[T, T]`. Measured on GPT-2 small (4 × 128 tokens, LoRA on
 * `c_attn`) the step's wasm heap grew by ~0.7 GB over the weights, against 0.9 GB estimated here:
 * the estimate errs high, which errs toward recomputing.
 *
 * @module
 */

import type { ModelConfig } from "../models/config.ts";

/** Above this many estimated bytes of kept activations, layers are recomputed. */
export const RECOMPUTE_ABOVE_BYTES: number = 1.5 * 2 ** 30;

/** Estimated bytes of activations a step keeps for its backward pass without recomputation. */
export function activationBytes(c: ModelConfig, rows: number, seqLen: number): number {
  const tokens = rows * seqLen;
  const perToken = 10 * c.hiddenSize + 6 * c.intermediateSize;
  const scores = 3 * rows * c.numHeads * seqLen * seqLen;
  return 4 * c.numLayers * (tokens * perToken + scores);
}

/** True when the largest batch's activations would exceed {@link RECOMPUTE_ABOVE_BYTES}. */
export function shouldRecompute(c: ModelConfig, rows: number, seqLen: number): boolean {
  return activationBytes(c, rows, seqLen) > RECOMPUTE_ABOVE_BYTES;
}
