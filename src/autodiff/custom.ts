/**
 * What a graph builder can tell the backward walker beyond the op rules, to save memory:
 *
 * - a **custom gradient** for a value computed by a region of nodes (jax's `custom_vjp`): the walker
 *   calls the builder's function with the value's cotangent instead of walking the region, so the
 *   region's big intermediates (e.g. vocabulary-sized logits) are not kept for the backward pass;
 *   the function recomputes what it needs;
 * - a **recompute recipe** for a value that is cheap to rebuild from constants (a float32 view of a
 *   stored weight): a gradient rule that reads the value gets a fresh copy built after the
 *   cotangent exists, so the forward copy dies right after its forward use.
 *
 * Both registries are per graph and are consulted by {@link backward}.
 *
 * @module
 */

import type { Graph, Value } from "../onnx/graph.ts";
import { GraphError } from "../onnx/graph.ts";

/** A custom vector-Jacobian product: cotangent of the value in, one gradient per input out. */
export interface CustomGradient {
  /** The values the gradient flows to (others the region reads get none). */
  inputs: readonly Value[];
  /** Returns d(loss)/d(input) for each input (null: none), given d(loss)/d(value). */
  vjp: (dy: Value) => (Value | null)[];
}

const CUSTOM = new WeakMap<Graph, Map<string, CustomGradient>>();
const RECOMPUTE = new WeakMap<Graph, Map<string, (after: Value) => Value>>();

/**
 * Gives `value` a custom gradient. `value` must be the only output of its node (end a region with
 * a Reshape or Identity if needed).
 */
export function setCustomGradient(value: Value, gradient: CustomGradient): void {
  const g = value.graph;
  for (const x of gradient.inputs) {
    if (x.graph !== g) throw new GraphError(`setCustomGradient: ${x.name} belongs to another graph`);
  }
  let m = CUSTOM.get(g);
  if (!m) CUSTOM.set(g, m = new Map());
  m.set(value.name, gradient);
}

/** The custom gradient of a value, if one was set. */
export function customGradientOf(g: Graph, name: string): CustomGradient | undefined {
  return CUSTOM.get(g)?.get(name);
}

/**
 * Registers how to rebuild `value` (same dtype and shape) once `after` exists. Gradient rules that
 * read `value` get `recipe(cotangent)` instead.
 */
export function setRecompute(value: Value, recipe: (after: Value) => Value): void {
  let m = RECOMPUTE.get(value.graph);
  if (!m) RECOMPUTE.set(value.graph, m = new Map());
  m.set(value.name, recipe);
}

/** The recompute recipe of a value, if one was set. */
export function recomputeOf(g: Graph, name: string): ((after: Value) => Value) | undefined {
  return RECOMPUTE.get(g)?.get(name);
}
