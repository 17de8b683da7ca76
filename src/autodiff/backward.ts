/**
 * The reverse-mode walker: appends the backward pass of a graph to the same graph, as standard
 * ONNX ops, for the chosen `wrt` values only.
 *
 * The walker owns everything the rules should not repeat: pruning to the nodes between `wrt` and
 * the loss, summing fan-out gradients, un-broadcasting (ReduceSum over broadcast axes, Squeeze of
 * extra leading axes) and checking every rule's output dtype and shape, naming the op and node in
 * errors. Integer and bool values never carry gradients (indices, shapes, masks).
 *
 * Builders can save memory through `custom.ts`: a value with a custom gradient is differentiated
 * by the builder's function rather than through its region of nodes, and a rule that reads a value
 * with a recompute recipe (a float32 view of a stored weight) gets a copy rebuilt after the
 * cotangent exists, so the forward copy is not kept alive for the backward pass.
 *
 * @module
 */

import { isFloat } from "../onnx/dtype.ts";
import { formatShape, type Graph, GraphError, type Node, type Value } from "../onnx/graph.ts";
import * as op from "../onnx/ops.ts";
import { customGradientOf, recomputeOf } from "./custom.ts";
import { GRAD_RULES, hasGradRule } from "./registry.ts";
import { sameShape, sumTo, zerosLike } from "./_util.ts";

/** Options of {@link backward}. */
export interface BackwardOptions {
  /** The cotangent of `loss` (same shape and dtype); default 1, which needs a scalar loss. */
  seed?: Value;
}

/**
 * Gradients of `loss` with respect to each `wrt` value, appended to the loss's graph as ONNX ops.
 *
 * `loss` must be a float scalar (shape `[]` or `[1]`) unless `seed` is given. Returns one gradient
 * per `wrt`, with its shape and dtype; a `wrt` the loss does not depend on gets zeros.
 *
 * @example
 * ```ts
 * import { Graph } from "../onnx/graph.ts";
 * import * as op from "../onnx/ops.ts";
 * import { backward } from "./mod.ts";
 * const g = new Graph();
 * const w = g.input("w", "float32", [3]);
 * const loss = op.reduceSum(op.mul(w, w), [0]);
 * const [dw] = backward(loss, [w]); // 2 * w
 * g.output(dw, "dw");
 * ```
 */
export function backward(loss: Value, wrt: readonly Value[], options: BackwardOptions = {}): Value[] {
  const g = loss.graph;
  checkArguments(loss, wrt, options);
  const nodes = g.nodes.slice(); // the forward graph: nodes appended below are not walked
  const wrtNames = new Set(wrt.map((w) => w.name));

  // Forward reachability from wrt (float values only), backward reachability from the loss.
  const dependsOnWrt = new Set(wrtNames);
  for (const n of nodes) {
    if (n.inputs.some((i) => i && dependsOnWrt.has(i))) {
      for (const o of n.outputs) if (isFloat(g.get(o).dtype)) dependsOnWrt.add(o);
    }
  }
  const feedsLoss = new Set([loss.name]);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k];
    if (n.outputs.some((o) => feedsLoss.has(o))) { for (const i of n.inputs) if (i) feedsLoss.add(i); }
  }

  const contributions = new Map<string, Value[]>();
  const addGrad = (name: string, v: Value) => {
    const list = contributions.get(name);
    if (list) list.push(v);
    else contributions.set(name, [v]);
  };
  const gradOf = (name: string): Value | null => {
    const list = contributions.get(name);
    if (!list || list.length === 0) return null;
    // Fan-out: sum once, in a left-to-right chain (Sum falls back to CPU on WebGPU).
    let acc = list[0];
    for (let i = 1; i < list.length; i++) acc = op.add(acc, list[i]);
    contributions.set(name, [acc]);
    return acc;
  };

  addGrad(loss.name, options.seed ?? g.constant(onesOf(loss), [...loss.shape as number[]], loss.dtype));

  for (let k = nodes.length - 1; k >= 0; k--) {
    const node = nodes[k];
    if (!node.outputs.some((o) => feedsLoss.has(o) && dependsOnWrt.has(o))) continue;
    const custom = node.outputs.length === 1 ? customGradientOf(g, node.outputs[0]) : undefined;
    if (custom) {
      const dy = gradOf(node.outputs[0]);
      if (!dy) continue;
      const grads = custom.vjp(dy);
      custom.inputs.forEach((x, i) => {
        const gi = grads[i];
        if (gi && dependsOnWrt.has(x.name) && feedsLoss.has(x.name)) addGrad(x.name, checked(gi, x, node, i));
      });
      continue;
    }
    const needs = node.inputs.map((i) => i !== "" && dependsOnWrt.has(i) && feedsLoss.has(i));
    if (!needs.some(Boolean)) continue;
    const dys = node.outputs.map((o) => gradOf(o));
    if (dys.every((d) => d === null)) continue;
    const grads = applyRule(g, node, needs, dys);
    node.inputs.forEach((name, i) => {
      const gi = grads[i];
      if (needs[i] && gi) addGrad(name, gi);
    });
  }

  return wrt.map((w) => gradOf(w.name) ?? zerosLike(w));
}

function checkArguments(loss: Value, wrt: readonly Value[], options: BackwardOptions): void {
  if (!isFloat(loss.dtype)) throw new GraphError(`backward(): the loss ${loss.name} must be float, got ${loss.dtype}`);
  const seed = options.seed;
  if (seed) {
    if (seed.graph !== loss.graph) throw new GraphError(`backward(): the seed ${seed.name} belongs to another graph`);
    if (seed.dtype !== loss.dtype || !sameShape(seed.shape, loss.shape)) {
      throw new GraphError(
        `backward(): the seed must have the loss's dtype and shape (${loss.dtype} [${
          formatShape(loss.shape)
        }]), got ${seed.dtype} [${formatShape(seed.shape)}]`,
      );
    }
  } else if (!(loss.shape.length === 0 || (loss.shape.length === 1 && loss.shape[0] === 1))) {
    throw new GraphError(
      `backward(): the loss must be a scalar (shape [] or [1]), got [${
        formatShape(loss.shape)
      }]; reduce it first or pass a seed`,
    );
  }
  for (const w of wrt) {
    if (w.graph !== loss.graph) throw new GraphError(`backward(): wrt value ${w.name} belongs to another graph`);
    if (!isFloat(w.dtype)) throw new GraphError(`backward(): wrt value ${w.name} must be float, got ${w.dtype}`);
  }
}

function onesOf(loss: Value): Float32Array | Float64Array {
  return loss.dtype === "float64" ? new Float64Array([1]) : new Float32Array([1]);
}

function applyRule(g: Graph, node: Node, needs: boolean[], dys: (Value | null)[]): (Value | null)[] {
  const where = `${node.op} (node ${node.name})`;
  if (node.domain !== "" && node.domain !== "ai.onnx") {
    throw new GraphError(`No gradient rule for ${node.domain}::${where}: only standard ONNX ops are differentiable`);
  }
  if (!hasGradRule(node.op)) {
    throw new GraphError(
      `No gradient rule for ${where}: add one in src/autodiff/rules/ or keep this op off the path from the trainable values to the loss`,
    );
  }
  const inputs = node.inputs.map((n) => (n ? g.get(n) : null));
  const outputs = node.outputs.map((n) => g.get(n));
  // Inputs with a recompute recipe are rebuilt after the cotangent, on first use by the rule.
  const dep = dys.find((d) => d !== null)!;
  const seen = inputs.slice();
  inputs.forEach((x, i) => {
    const recipe = x && !needs[i] ? recomputeOf(g, x.name) : undefined;
    if (!recipe) return;
    let built: Value | undefined;
    Object.defineProperty(seen, i, { get: () => (built ??= recipe(dep)), enumerable: true });
  });
  const raw = GRAD_RULES[node.op]({ graph: g, node, inputs: seen, outputs, needs, dys });
  return inputs.map((x, i) => {
    const gi = raw[i];
    if (!needs[i] || !gi || !x) return null;
    return checked(gi, x, node, i);
  });
}

/** A gradient checked against its input's dtype and summed down to its shape. */
function checked(gi: Value, x: Value, node: Node, i: number): Value {
  const where = `${node.op} (node ${node.name})`;
  if (gi.dtype !== x.dtype) {
    throw new GraphError(
      `Gradient rule of ${where} returned ${gi.dtype} for input ${i} (${x.name}), which is ${x.dtype}`,
    );
  }
  const fitted = sumTo(gi, x.shape);
  if (!fitted) {
    throw new GraphError(
      `Gradient rule of ${where} returned shape [${
        formatShape(gi.shape)
      }] for input ${i} (${x.name}), which has shape [${formatShape(x.shape)}] and does not broadcast to it`,
    );
  }
  return fitted;
}
