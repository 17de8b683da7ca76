/**
 * The optimizer model of ORT's training API: one `com.microsoft` optimizer node over sequences of
 * every trainable parameter, its gradient and its momentums.
 *
 * Contract (ORT 1.19 `training_api/optimizer.cc`): graph inputs exactly `learning_rate` FLOAT[1],
 * `step` INT64[1], `params`, `gradients`, `first_order_moments` (+ `second_order_moments` for AdamW),
 * the sequences `seq(tensor(float))`; exactly one optimizer node type (`AdamWOptimizer` or
 * `SGDOptimizerV2`), which updates the parameters and momentums in place; its BOOL output first
 * (the step counter only advances when it is true). The sequences are built by ORT from a hash map
 * of the parameters, so their order is unknown here: every per-parameter computation below pairs
 * elements of equal index only, and the global norm is a sum, so no order is assumed.
 *
 * What we put around the node, all in standard ops:
 * - **the learning rate** (ORT Web's workaround): the web runtime feeds `learning_rate` = 1e-3
 *   whatever the checkpoint says and has no setter, so the graph ignores that input and reads the
 *   rate of update k from a table baked in at emit time, indexed by `step` (which ORT does honour
 *   and feeds as k + 1): lr = table[min(step − 1, len − 1)]. This carries any schedule exactly (the
 *   same float32 rates the fused engine feeds);
 * - **gradient accumulation**: ORT's accumulators sum N micro-batch gradients; `g ← g · (1/N)`
 *   makes it the mean, as the fused engine does. When N varies (the trainer's epochs end with the
 *   micro-batches left over), 1/N_k is read from a second baked table, indexed as the rate is;
 * - **global-norm clipping** as torch.nn.utils.clip_grad_norm_: g ← g · min(1, c / (‖g‖ + 1e-6));
 * - **SGD weight decay** (coupled, as torch.optim.SGD): g ← g + wd · p (SGDOptimizerV2 has none;
 *   AdamWOptimizer's own `weight_decay` is PyTorch's decoupled decay, adam_mode 0).
 *
 * AdamWOptimizer, adam_mode 0 (PyTorch), per parameter:
 *   p ← p − p·lr·wd;  m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²;
 *   p ← p − lr·m / ((1 − β1^t) (√(v / (1 − β2^t)) + ε))
 * SGDOptimizerV2: p ← p − lr·g.
 *
 * @module
 */

import { attr, Graph, type Value } from "../onnx/graph.ts";
import { serializeModel } from "../onnx/serialize.ts";

/** Where ORT looks for training ops. */
export const MS_DOMAIN = "com.microsoft";

/** What the optimizer model does. */
export interface OptimizerModelSpec {
  kind: "adamw" | "sgd";
  /** Number of trainable parameters (the sequences' length). */
  numParams: number;
  /** Learning rate of update k (0-based); later updates keep the last entry. */
  lrTable: Float32Array;
  /** Micro-batches per update: the summed gradients are divided by it. Default 1. */
  gradAccum?: number;
  /**
   * Micro-batches of update k (0-based) where they vary, indexed as `lrTable` (later updates keep
   * the last entry), each in 1..gradAccum: an epoch's last update takes the micro-batches left
   * over. Default: `gradAccum` for every update.
   */
  microBatches?: readonly number[];
  /** Global-norm clipping threshold; 0 disables. */
  maxGradNorm: number;
  weightDecay: number;
  /** AdamW β1, β2, ε (PyTorch's defaults). */
  beta1?: number;
  beta2?: number;
  eps?: number;
}

/** Graph input names the runtime feeds, in the order it checks them. */
export function optimizerInputNames(kind: "adamw" | "sgd"): string[] {
  const common = ["learning_rate", "step", "params", "gradients", "first_order_moments"];
  return kind === "adamw" ? [...common, "second_order_moments"] : common;
}

/** Builds and serializes the optimizer model. */
export function emitOptimizerModel(spec: OptimizerModelSpec): Uint8Array {
  const n = spec.numParams;
  if (!(Number.isInteger(n) && n > 0)) throw new RangeError(`Optimizer model: numParams must be >= 1, got ${n}`);
  if (spec.lrTable.length === 0) throw new RangeError("Optimizer model: the learning-rate table is empty");
  const accum = spec.gradAccum ?? 1;
  if (!(Number.isInteger(accum) && accum >= 1)) {
    throw new RangeError(`Optimizer model: gradAccum must be >= 1, got ${accum}`);
  }
  const micro = spec.microBatches ?? null;
  if (micro !== null) {
    if (micro.length === 0) throw new RangeError("Optimizer model: the micro-batch table is empty");
    const bad = micro.find((m) => !(Number.isInteger(m) && m >= 1 && m <= accum));
    if (bad !== undefined) {
      throw new RangeError(`Optimizer model: micro-batches per update must be in 1..${accum}, got ${bad}`);
    }
  }
  // One scale for every update unless the table holds another count than gradAccum.
  const varying = micro !== null && micro.some((m) => m !== accum);
  if (!(spec.maxGradNorm >= 0)) {
    throw new RangeError(`Optimizer model: maxGradNorm must be >= 0, got ${spec.maxGradNorm}`);
  }
  if (!(spec.weightDecay >= 0)) {
    throw new RangeError(`Optimizer model: weightDecay must be >= 0, got ${spec.weightDecay}`);
  }

  const g = new Graph(`${spec.kind}_optimizer`);
  g.extraOpsets.set(MS_DOMAIN, 1);
  // Element shapes are not known (nor needed: only graph inputs and outputs carry types).
  const elem = ["elem"];
  const node = (op: string, inputs: (Value | null)[], dtype: "float32" | "int64" | "bool" = "float32", a = {}) =>
    g.addNode(op, inputs, [{ dtype, shape: elem }], a)[0];
  const seq = (name: string) => {
    const v = g.input(name, "float32", elem);
    g.sequences.add(name);
    return v;
  };

  g.input("learning_rate", "float32", [1]); // fed 1e-3 by ORT Web whatever we ask: not used, see above
  const step = g.input("step", "int64", [1]);
  const params = seq("params");
  const gradients = seq("gradients");
  const m1 = seq("first_order_moments");
  const m2 = spec.kind === "adamw" ? seq("second_order_moments") : null;

  // lr = table[min(step - 1, len - 1)] ([1]).
  const table = g.constant(Float32Array.from(spec.lrTable), [spec.lrTable.length]);
  const k = node("Max", [node("Sub", [step, g.int64s([1])], "int64"), g.int64s([0])], "int64");
  const lr = node("Gather", [table, node("Min", [k, g.int64s([spec.lrTable.length - 1])], "int64")]);

  let grads = gradients;
  const needsRewrite = accum > 1 || spec.maxGradNorm > 0 || (spec.kind === "sgd" && spec.weightDecay > 0);
  if (needsRewrite) {
    let gs: Value[] = Array.from({ length: n }, (_, i) => node("SequenceAt", [gradients, g.int64s([i])]));
    if (varying) {
      // scale = (1/N)[min(step - 1, len - 1)] ([1]), the float32 1/N_k the fused engine feeds.
      const scales = g.constant(Float32Array.from(micro!, (m) => 1 / m), [micro!.length]);
      const scale = node("Gather", [scales, node("Min", [k, g.int64s([micro!.length - 1])], "int64")]);
      gs = gs.map((x) => node("Mul", [x, scale]));
    } else if (accum > 1) gs = gs.map((x) => node("Mul", [x, g.scalar(1 / accum)]));
    if (spec.maxGradNorm > 0) {
      // norm = sqrt(sum_i sum(g_i^2)); coef = min(1, c / (norm + 1e-6)), as clip_grad_norm_.
      const sq = gs.map((x) => node("ReduceSum", [node("Mul", [x, x])], "float32", { keepdims: attr.int(0) }));
      const total = sq.slice(1).reduce((a, b) => node("Add", [a, b]), sq[0]);
      const norm = node("Sqrt", [total]);
      const coef = node("Min", [
        g.scalar(1),
        node("Div", [g.scalar(spec.maxGradNorm), node("Add", [norm, g.scalar(1e-6)])]),
      ]);
      gs = gs.map((x) => node("Mul", [x, coef]));
    }
    if (spec.kind === "sgd" && spec.weightDecay > 0) {
      gs = gs.map((x, i) =>
        node("Add", [x, node("Mul", [node("SequenceAt", [params, g.int64s([i])]), g.scalar(spec.weightDecay)])])
      );
    }
    grads = node("SequenceConstruct", gs);
    g.sequences.add(grads.name);
  }

  let done: Value;
  if (spec.kind === "adamw") {
    done = g.addNode("AdamWOptimizer", [lr, step, params, grads, m1, m2], [{ dtype: "bool", shape: [1] }], {
      alpha: attr.float(spec.beta1 ?? 0.9),
      beta: attr.float(spec.beta2 ?? 0.999),
      epsilon: attr.float(spec.eps ?? 1e-8),
      weight_decay: attr.float(spec.weightDecay),
      adam_mode: attr.int(0),
      correct_bias: attr.int(1),
    }, MS_DOMAIN)[0];
  } else {
    // ORT 1.19 infers a scalar flag here (declaring [1] fails shape inference), for AdamW a [1].
    done = g.addNode("SGDOptimizerV2", [lr, params, grads], [{ dtype: "bool", shape: [] }], {}, MS_DOMAIN)[0];
  }
  g.output(done, "update_completed");
  return serializeModel(g).model;
}
