/**
 * The fused training-step compiler: forward + loss + backward + clipping + optimizer update as ONE
 * plain ONNX inference graph, which ORT Web runs on WebGPU or wasm like any model.
 *
 * Graph contract (names are what {@link StepRunner} feeds and fetches):
 * - inputs: every trainable parameter `<p>` (float, static shape), its optimizer state
 *   `<p>::<slot>` (e.g. `<p>::m`, `<p>::v`), the optimizer's step-dependent scalars
 *   `optim::<name>` (computed in JS), and the data inputs (every other input of the forward graph);
 * - outputs: `<p>::next`, `<p>::<slot>::next`, `loss`, `grad_norm` (before clipping) and the
 *   requested scalar metrics under their names.
 *
 * Gradient accumulation over N micro-batches compiles two graphs instead:
 * - accumulate: forward + backward, `<p>::grad_acc` in, `<p>::grad_acc::next = acc + grad` out,
 *   plus `loss` and the metrics of that micro-batch;
 * - apply: `grad = acc * accum::scale` (1/N), clip, update, and `<p>::grad_acc::next` = zeros, so
 *   the accumulators are reset without leaving the GPU.
 *
 * @module
 */

import type { DType } from "../onnx/dtype.ts";
import { isFloat } from "../onnx/dtype.ts";
import { formatShape, Graph, GraphError, isStatic, type Value } from "../onnx/graph.ts";
import * as op from "../onnx/ops.ts";
import { type SerializedModel, serializeModel, type SerializeOptions } from "../onnx/serialize.ts";
import { backward } from "../autodiff/mod.ts";
import { clipByGlobalNorm } from "../optim/clip.ts";
import type { Optimizer } from "../optim/optimizer.ts";

/** Output name of the loss. */
export const LOSS = "loss";
/** Output name of the global gradient norm (before clipping). */
export const GRAD_NORM = "grad_norm";
/** Input name of the 1/N gradient scale of the apply graph. */
export const ACCUM_SCALE = "accum::scale";

/** `<p>::next`: the updated parameter. */
export const nextName = (name: string): string => `${name}::next`;
/** `<p>::<slot>`: an optimizer state input. */
export const stateName = (name: string, slot: string): string => `${name}::${slot}`;
/** `<p>::grad_acc`: a gradient accumulator input. */
export const accName = (name: string): string => `${name}::grad_acc`;
/** `optim::<name>`: a step-dependent scalar input. */
export const scalarName = (name: string): string => `optim::${name}`;

/** What the step compiler needs. */
export interface StepSpec {
  /** The forward graph, whose inputs include the trainable parameters. It is extended in place. */
  graph: Graph;
  /** The scalar loss. */
  loss: Value;
  /** The trainable parameters: float inputs of `graph` with static shapes. */
  params: readonly Value[];
  /** Extra scalar values to report each step, by output name. */
  metrics?: Readonly<Record<string, Value>>;
  optimizer: Optimizer;
  /** Global-norm clipping threshold; 0 (default) disables clipping (the norm is still reported). */
  maxGradNorm?: number;
  /** Compile the accumulate/apply pair for gradient accumulation instead of one fused graph. */
  accumulate?: boolean;
  /** Serialization options (e.g. external data for big frozen weights). */
  serialize?: SerializeOptions;
}

/** One trainable parameter of a compiled step. */
export interface ParamInfo {
  name: string;
  dtype: DType;
  shape: number[];
}

/** The names and shapes a runner needs. */
export interface StepLayout {
  params: ParamInfo[];
  slots: string[];
  /** The optimizer's scalar names (graph inputs are `optim::<name>`). */
  scalars: string[];
  /** Inputs the caller feeds each step. */
  dataInputs: string[];
  metrics: string[];
}

/** A compiled training step: one fused model, or the accumulate/apply pair. */
export type CompiledStep =
  & { layout: StepLayout; optimizer: Optimizer; maxGradNorm: number }
  & (
    | { mode: "fused"; fused: SerializedModel }
    | { mode: "accumulate"; accumulate: SerializedModel; apply: SerializedModel }
  );

/** Compiles a training step (see the module doc for the graph contract). */
export function compileStep(spec: StepSpec): CompiledStep {
  const layout = checkSpec(spec);
  const maxGradNorm = spec.maxGradNorm ?? 0;
  const { graph: g, loss, params, optimizer } = spec;
  const grads = backward(loss, params);
  if (!spec.accumulate) {
    const { grads: clipped, norm } = clipByGlobalNorm(grads, maxGradNorm);
    emitUpdate(g, params, clipped, optimizer);
    g.output(loss, LOSS);
    g.output(norm, GRAD_NORM);
    for (const [name, v] of Object.entries(spec.metrics ?? {})) g.output(v, name);
    return { mode: "fused", layout, optimizer, maxGradNorm, fused: serializeModel(g, spec.serialize) };
  }
  params.forEach((p, i) => {
    const acc = g.input(accName(p.name), p.dtype, p.shape);
    g.output(op.add(acc, grads[i]), nextName(acc.name));
  });
  g.output(loss, LOSS);
  for (const [name, v] of Object.entries(spec.metrics ?? {})) g.output(v, name);
  const accumulate = serializeModel(g, spec.serialize);

  const a = new Graph(`${g.name}_apply`);
  const ps = params.map((p) => a.input(p.name, p.dtype, p.shape));
  const scale = a.input(ACCUM_SCALE, layout.params[0].dtype, []);
  const avg = params.map((p) => op.mul(a.input(accName(p.name), p.dtype, p.shape), scale));
  const { grads: clipped, norm } = clipByGlobalNorm(avg, maxGradNorm);
  emitUpdate(a, ps, clipped, optimizer);
  for (const p of ps) {
    const zeros = op.expand(a.scalar(0, p.dtype), p.shape);
    a.output(zeros, nextName(accName(p.name)));
  }
  a.output(norm, GRAD_NORM);
  return { mode: "accumulate", layout, optimizer, maxGradNorm, accumulate, apply: serializeModel(a) };
}

/** Adds the optimizer's inputs, update nodes and `::next` outputs to a graph. */
function emitUpdate(g: Graph, params: readonly Value[], grads: readonly Value[], optimizer: Optimizer): void {
  const dtype = params[0].dtype;
  const scalars: Record<string, Value> = {};
  for (const s of optimizer.scalarNames) scalars[s] = g.input(scalarName(s), dtype, []);
  params.forEach((p, i) => {
    const state = optimizer.slots.map((slot) => g.input(stateName(p.name, slot), p.dtype, p.shape));
    const u = optimizer.update(p, grads[i], state, scalars);
    g.output(u.param, nextName(p.name));
    u.state.forEach((s, k) => g.output(s, nextName(stateName(p.name, optimizer.slots[k]))));
  });
}

function checkSpec(spec: StepSpec): StepLayout {
  const { graph: g, loss, params } = spec;
  if (params.length === 0) throw new GraphError("compileStep(): no trainable parameters");
  const names = new Set<string>();
  for (const p of params) {
    if (p.graph !== g || !g.inputs.includes(p)) {
      throw new GraphError(`compileStep(): parameter ${p.name} must be an input of graph ${g.name}`);
    }
    if (!isFloat(p.dtype)) throw new GraphError(`compileStep(): parameter ${p.name} must be float, got ${p.dtype}`);
    if (!isStatic(p.shape)) {
      throw new GraphError(`compileStep(): parameter ${p.name} needs a static shape, got [${formatShape(p.shape)}]`);
    }
    if (p.dtype !== params[0].dtype) throw new GraphError("compileStep(): all parameters must share one dtype");
    if (names.has(p.name)) throw new GraphError(`compileStep(): parameter ${p.name} is listed twice`);
    names.add(p.name);
  }
  const reserved = new Set([LOSS, GRAD_NORM]);
  for (const [name, v] of Object.entries(spec.metrics ?? {})) {
    if (reserved.has(name) || (g.values.has(name) && g.values.get(name) !== v)) {
      throw new GraphError(`compileStep(): metric name ${JSON.stringify(name)} is taken; choose another`);
    }
    if (!(v.shape.length === 0 || (v.shape.length === 1 && v.shape[0] === 1))) {
      throw new GraphError(`compileStep(): metric ${name} must be a scalar, got [${formatShape(v.shape)}]`);
    }
  }
  if ((g.values.has(LOSS) && loss.name !== LOSS) || g.values.has(GRAD_NORM)) {
    throw new GraphError(`compileStep(): the names ${LOSS} and ${GRAD_NORM} are reserved for the step's outputs`);
  }
  return {
    params: params.map((p) => ({ name: p.name, dtype: p.dtype, shape: [...p.shape as number[]] })),
    slots: [...spec.optimizer.slots],
    scalars: [...spec.optimizer.scalarNames],
    dataInputs: g.inputs.filter((v) => !names.has(v.name)).map((v) => v.name),
    metrics: Object.keys(spec.metrics ?? {}),
  };
}
