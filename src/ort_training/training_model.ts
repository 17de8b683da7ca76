/**
 * The training and eval models of ORT's training API, emitted from the same preference graph and
 * autodiff as the fused engine (`buildPreferenceGraph` + `backward`).
 *
 * - **eval model**: forward + loss; outputs `loss` then the TRL-named metrics. Its inputs are the
 *   data inputs and the parameters **in the training model's order** (ORT feeds them positionally:
 *   another order silently computes with the wrong tensors).
 * - **training model**: the eval graph plus the backward pass. Every trainable parameter `p` is a
 *   graph input; its gradient `p_grad` goes into ORT's gradient accumulation,
 *
 *     InPlaceAccumulatorV2(p_grad.accumulation.buffer, p_grad, lazy_reset_grad) -> p_grad.accumulation.out
 *
 *   (com.microsoft): buffer += p_grad, or buffer = p_grad when `lazy_reset_grad` is true, which ORT
 *   sets on the first `runTrainStep` after `lazyResetGrad()`. Buffers and the flag are graph inputs
 *   (ORT allocates and feeds them); a buffer no accumulator writes would train on zeros. Outputs:
 *   the user outputs (loss first, then metrics), then every `p_grad.accumulation.out`.
 *
 * Two layouts of the same graphs:
 * - `exo`: frozen weights stay initializers of both models; the checkpoint holds only the LoRA
 *   matrices (small, rebuilt cheaply for every resume); parameter names are PEFT's saved keys.
 * - `python`: what `onnxruntime.training.artifacts.generate_artifacts` makes from a
 *   `torch.onnx.export`ed PeftModel: every weight is a graph input and lives in the checkpoint
 *   (frozen ones in `frozen_params`), LoRA names carry the adapter name (`lora_A.default.weight`).
 *
 * How the weights enter the graphs (see `BuildOptions`): ORT's training API takes each model as
 * bytes, with no external-data option, so every initializer is written into the model itself
 * (`inline`), never as a reference to the safetensors file. In the exo layout weights are read as
 * the fused engines read them ("once": stored type and layout, cast next to each use, nothing ORT
 * could fold into a second copy). In the python layout they are float32 graph inputs (the checkpoint
 * holds float32 tensors), which ORT neither folds nor prepacks anyway, so the graph is built in the
 * plain "constant" mode with 16-bit weights upcast: "once" mode's backward rebuilds each weight's
 * cast from its initializer, which the python layout has turned into an input.
 *
 * @module
 */

import { type Graph, GraphError, type Value } from "../onnx/graph.ts";
import { serializeModel } from "../onnx/serialize.ts";
import { backward } from "../autodiff/mod.ts";
import type { LoadedModel } from "../models/load.ts";
import type { LoraConfig } from "../lora/config.ts";
import type { BuildOptions } from "../models/layers.ts";
import { buildPreferenceGraph, type PreferenceLossOptions } from "../train/preference_graph.ts";
import { LOSS } from "../train/step.ts";
import type { NamedTensor } from "./checkpoint.ts";
import { accumulatedName, bufferName, gradName, LAZY_RESET, peftKeyOf, peftModuleName } from "./names.ts";
import { MS_DOMAIN } from "./optimizer_model.ts";

/** How the artifacts are laid out (see the module doc). */
export type ArtifactLayout = "exo" | "python";

/** One trainable parameter. */
export interface TrainableParam {
  /** Its name in the artifacts (graph input and checkpoint tensor). */
  name: string;
  /** PEFT's saved key. */
  key: string;
  shape: number[];
}

/** The emitted training and eval models. */
export interface EmittedModels {
  trainingModel: Uint8Array;
  evalModel: Uint8Array;
  /** Trainable parameters in training-graph input order. */
  params: TrainableParam[];
  /** Frozen weights that are graph inputs (python layout), in input order; empty for exo. */
  frozen: NamedTensor[];
  /** The user inputs fed each step. */
  dataInputs: string[];
  /** The user outputs: `loss`, then the metrics. */
  userOutputs: string[];
}

/** What {@link emitTrainingModels} builds from. */
export interface TrainingModelSpec {
  model: LoadedModel;
  lora: LoraConfig;
  loss: PreferenceLossOptions;
  layout?: ArtifactLayout;
  /** Recompute each layer's activations in the backward pass (see `BuildOptions.recompute`). */
  recompute?: boolean;
}

/** How each layout builds its graphs (see the module doc). */
function buildOptions(layout: ArtifactLayout, recompute: boolean): BuildOptions {
  return layout === "python"
    ? { weights: "constant", halfDtypes: { bfloat16: "float32", float16: "float32" }, recompute }
    : { weights: "once", recompute };
}

/** ORT's training API takes model bytes only: no external data (see the module doc). */
const SERIALIZE = { producer: "exo-tune ort_training", inline: true } as const;

/** Emits the eval model, then extends the same graph into the training model. */
export function emitTrainingModels(spec: TrainingModelSpec): EmittedModels {
  const layout = spec.layout ?? "exo";
  const naming = layout === "python" ? (key: string) => peftModuleName(key) : (key: string) => key;
  const build = buildOptions(layout, spec.recompute ?? false);
  const pg = buildPreferenceGraph(spec.model, spec.lora, spec.loss, build, naming);
  const g = pg.graph;
  // In input order (buildPreferenceGraph adds A then B per target).
  const params: TrainableParam[] = pg.params.map((p) => ({
    name: p.name,
    key: peftKeyOf(p.name)!,
    shape: [...p.shape as number[]],
  }));
  const frozen = layout === "python" ? frozenToInputs(g) : [];

  g.output(pg.loss, LOSS);
  for (const [name, v] of Object.entries(pg.metrics)) g.output(v, name);
  const userOutputs = g.outputs.map((v) => v.name);
  const evalModel = serializeModel(g, SERIALIZE).model;

  appendGradientAccumulation(g, pg.loss, pg.params);
  const trainingModel = serializeModel(g, SERIALIZE).model;
  return { trainingModel, evalModel, params, frozen, dataInputs: pg.dataInputs, userOutputs };
}

/**
 * Appends backward + one InPlaceAccumulatorV2 per parameter (see the module doc) to a graph whose
 * outputs are already the user outputs.
 */
export function appendGradientAccumulation(g: Graph, loss: Value, params: readonly Value[]): void {
  const grads = backward(loss, params);
  g.extraOpsets.set(MS_DOMAIN, 1);
  const reset = g.input(LAZY_RESET, "bool", [1]);
  params.forEach((p, i) => {
    const grad = g.addNode("Identity", [grads[i]], [{ dtype: p.dtype, shape: p.shape, name: gradName(p.name) }])[0];
    const buffer = g.input(bufferName(p.name), p.dtype, p.shape);
    const [done] = g.addNode(
      "InPlaceAccumulatorV2",
      [buffer, grad, reset],
      [{ dtype: "bool", shape: [1], name: accumulatedName(p.name) }],
      {},
      MS_DOMAIN,
    );
    g.outputs.push(done);
  });
}

/**
 * Python's layout: every weight initializer (not our small `const_*` constants; all float32, see
 * `buildOptions`) becomes a graph input, returned as a frozen checkpoint tensor.
 */
function frozenToInputs(g: Graph): NamedTensor[] {
  const frozen: NamedTensor[] = [];
  for (const [name, t] of [...g.initializers]) {
    if (name.startsWith("const_")) continue;
    if (t.dtype !== "float32") {
      throw new GraphError(
        `emitTrainingModels(): weight ${name} is ${t.dtype}; the python layout holds float32 weights`,
      );
    }
    g.initializers.delete(name);
    g.inputs.push(g.get(name));
    frozen.push({ name, dims: [...t.shape], data: t.data as Float32Array });
  }
  return frozen;
}
