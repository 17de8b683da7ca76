/**
 * The interface an optimizer implements to be fused into a training-step graph.
 *
 * The update is written in ONNX ops; everything that depends on the step number (learning rate,
 * bias corrections, first-step momentum) is a float scalar graph input computed in JS by
 * `scalars()`, so schedules live outside the graph and no int64 math runs on the GPU (ORT's WebGPU
 * EP places int64 arithmetic on the CPU).
 *
 * @module
 */

import type { Value } from "../onnx/graph.ts";

/** What one parameter's update produces. */
export interface ParamUpdate {
  /** The updated parameter. */
  param: Value;
  /** The updated state, one per slot, in slot order. */
  state: Value[];
}

/** An optimizer that can be emitted as graph ops. */
export interface Optimizer {
  /** A short name ("adamw", "sgd"). */
  readonly name: string;
  /** Per-parameter state slots, each shaped like the parameter (e.g. `["m", "v"]`). */
  readonly slots: readonly string[];
  /** Names of the float scalar inputs `update` reads. */
  readonly scalarNames: readonly string[];
  /** The scalar inputs' values for update number `step` (1-based) at learning rate `lr`. */
  scalars(step: number, lr: number): Record<string, number>;
  /** Emits the update of one parameter from its (already clipped) gradient. */
  update(param: Value, grad: Value, state: readonly Value[], scalars: Readonly<Record<string, Value>>): ParamUpdate;
  /** The options, as plain JSON (for checkpoints and logs). */
  readonly config: Readonly<Record<string, number | boolean>>;
}
