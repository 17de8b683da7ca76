/**
 * The four artifacts of ORT's training API as one set: emitted from TypeScript, written to or read
 * from a directory in the file layout of Python's `generate_artifacts` (`checkpoint`,
 * `training_model.onnx`, `eval_model.onnx`, `optimizer_model.onnx`, plus PEFT's
 * `adapter_config.json` so the tuned adapter can be exported), and checked against the contract the
 * runtime relies on without saying so ({@link checkArtifacts}).
 *
 * @module
 */

import { type FileSink, type FileSource, joinPath } from "../io/files.ts";
import type { LoadedModel } from "../models/load.ts";
import { adapterConfigJson, type LoraConfig } from "../lora/config.ts";
import type { PreferenceLossOptions } from "../train/preference_graph.ts";
import {
  CHECKPOINT_VERSION,
  type CheckpointState,
  type NamedTensor,
  readCheckpoint,
  writeCheckpoint,
} from "./checkpoint.ts";
import { emitOptimizerModel, MS_DOMAIN, optimizerInputNames, type OptimizerModelSpec } from "./optimizer_model.ts";
import { type ArtifactLayout, emitTrainingModels, type TrainableParam } from "./training_model.ts";
import { bufferName, isGradientName, LAZY_RESET, peftKeyOf } from "./names.ts";
import { type ModelInfo, readModel, type ValueInfo } from "./onnx_read.ts";

/** File names, as Python's `generate_artifacts` writes them. */
export const ARTIFACT_FILES = {
  checkpoint: "checkpoint",
  trainingModel: "training_model.onnx",
  evalModel: "eval_model.onnx",
  optimizerModel: "optimizer_model.onnx",
} as const;
/** PEFT's adapter config, kept beside the artifacts (it is not inferable from them: lora_alpha). */
export const ADAPTER_CONFIG_FILE = "adapter_config.json";

/** The four artifacts as bytes. */
export interface ArtifactBytes {
  checkpoint: Uint8Array;
  trainingModel: Uint8Array;
  evalModel: Uint8Array;
  optimizerModel: Uint8Array;
}

/** An artifact that breaks the runtime's contract; names the file and what is wrong. */
export class ArtifactError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "ArtifactError";
  }
}

/** What {@link emitArtifacts} builds from. */
export interface EmitArtifactsOptions {
  model: LoadedModel;
  lora: LoraConfig;
  /** Initial LoRA matrices by PEFT key (an adapter's tensors). */
  params: ReadonlyMap<string, Float32Array>;
  loss: PreferenceLossOptions;
  optimizer: Omit<OptimizerModelSpec, "numParams">;
  layout?: ArtifactLayout;
}

/** An emitted set and what it contains. */
export interface EmittedArtifacts {
  bytes: ArtifactBytes;
  params: TrainableParam[];
  dataInputs: string[];
  userOutputs: string[];
}

/** Emits all four artifacts for preference training of a LoRA adapter. */
export function emitArtifacts(o: EmitArtifactsOptions): EmittedArtifacts {
  const models = emitTrainingModels({ model: o.model, lora: o.lora, loss: o.loss, layout: o.layout });
  const trainable: NamedTensor[] = models.params.map((p) => {
    const data = o.params.get(p.key);
    if (!data) throw new RangeError(`emitArtifacts(): no initial value for ${p.key}`);
    return { name: p.name, dims: p.shape, data };
  });
  const checkpoint = writeCheckpoint({ version: CHECKPOINT_VERSION, trainable, frozen: models.frozen });
  const optimizerModel = emitOptimizerModel({ ...o.optimizer, numParams: models.params.length });
  return {
    bytes: { checkpoint, trainingModel: models.trainingModel, evalModel: models.evalModel, optimizerModel },
    params: models.params,
    dataInputs: models.dataInputs,
    userOutputs: models.userOutputs,
  };
}

/** Writes a set (each file atomically) and PEFT's adapter config into `dir`. */
export async function writeArtifacts(
  dir: string,
  bytes: ArtifactBytes,
  lora: LoraConfig,
  files: FileSink,
): Promise<void> {
  await files.mkdir(dir);
  for (const [k, name] of Object.entries(ARTIFACT_FILES)) {
    await files.writeBytes(joinPath(dir, name), bytes[k as keyof ArtifactBytes]);
  }
  await files.writeText(joinPath(dir, ADAPTER_CONFIG_FILE), JSON.stringify(adapterConfigJson(lora), null, 2) + "\n");
}

/** True when `dir` holds a checkpoint and a training model (an artifacts directory). */
export async function isArtifactsDir(dir: string, files: FileSource): Promise<boolean> {
  return (await files.exists(joinPath(dir, ARTIFACT_FILES.checkpoint))) &&
    (await files.exists(joinPath(dir, ARTIFACT_FILES.trainingModel)));
}

/** Reads a set from `dir`; the eval and optimizer models are optional (null when absent). */
export async function readArtifacts(dir: string, files: FileSource): Promise<
  Omit<ArtifactBytes, "evalModel" | "optimizerModel"> & {
    evalModel: Uint8Array | null;
    optimizerModel: Uint8Array | null;
  }
> {
  const opt = async (name: string) => {
    const path = joinPath(dir, name);
    return (await files.exists(path)) ? await files.readBytes(path) : null;
  };
  for (const name of [ARTIFACT_FILES.checkpoint, ARTIFACT_FILES.trainingModel]) {
    if (!(await files.exists(joinPath(dir, name)))) {
      throw new ArtifactError(joinPath(dir, name), "missing: an ORT training artifacts directory needs it");
    }
  }
  return {
    checkpoint: await files.readBytes(joinPath(dir, ARTIFACT_FILES.checkpoint)),
    trainingModel: await files.readBytes(joinPath(dir, ARTIFACT_FILES.trainingModel)),
    evalModel: await opt(ARTIFACT_FILES.evalModel),
    optimizerModel: await opt(ARTIFACT_FILES.optimizerModel),
  };
}

/** What a checked set holds. */
export interface ArtifactsInfo {
  checkpoint: CheckpointState;
  training: ModelInfo;
  /** Trainable parameters in training-graph input order, with PEFT keys (null for non-LoRA names). */
  params: (Omit<TrainableParam, "key"> & { key: string | null })[];
  /** Parameter -> the gradient value its accumulator adds. */
  gradientOf: Map<string, string>;
  /** Inputs the caller feeds (neither parameters, buffers nor the reset flag). */
  userInputs: ValueInfo[];
  /** Outputs `runTrainStep` returns, in order. */
  userOutputs: string[];
  eval: ModelInfo | null;
  optimizer: { kind: "adamw" | "sgd"; attributes: Record<string, unknown> } | null;
}

const FLOAT = 1, INT64 = 7, BOOL = 9;

/**
 * Checks a set against what ORT's training runtime relies on (file names in errors are `source`
 * joined with the artifact's file name):
 * - checkpoint: identifier `ODTC`, version 2, module state with frozen params present;
 * - training model: every checkpoint tensor it uses is a float graph input of the checkpoint's shape;
 *   every trainable parameter `p` has a float input `p_grad.accumulation.buffer` of its shape that a
 *   com.microsoft InPlaceAccumulatorV2 writes (else `p` trains on zero gradients), with
 *   `lazy_reset_grad` (BOOL) as its third input (else gradients pile up across updates); no buffer
 *   without a parameter; at least one user output (the loss, first);
 * - eval model: the parameters it takes appear in the same order as in the training model, and it
 *   has no gradient inputs;
 * - optimizer model: one optimizer op type (AdamWOptimizer or SGDOptimizerV2, com.microsoft) and
 *   exactly the inputs the runtime feeds, in its order, with their types.
 */
export function checkArtifacts(
  bytes: {
    checkpoint: Uint8Array;
    trainingModel: Uint8Array;
    evalModel?: Uint8Array | null;
    optimizerModel?: Uint8Array | null;
  },
  source = ".",
): ArtifactsInfo {
  const file = (name: string) => joinPath(source, name);
  const checkpoint = readCheckpoint(bytes.checkpoint, file(ARTIFACT_FILES.checkpoint));
  const tf = file(ARTIFACT_FILES.trainingModel);
  const training = readModel(bytes.trainingModel, tf);
  const inputs = new Map(training.inputs.map((v) => [v.name, v]));
  const trainable = new Map(checkpoint.trainable.map((t) => [t.name, t]));
  const allParams = new Map([...trainable, ...checkpoint.frozen.map((t) => [t.name, t] as const)]);

  if (trainable.size === 0) throw new ArtifactError(file(ARTIFACT_FILES.checkpoint), "no trainable parameters");
  for (const [name, t] of allParams) {
    const v = inputs.get(name);
    if (!v) {
      if (trainable.has(name)) throw new ArtifactError(tf, `trainable parameter ${name} is not a graph input`);
      continue;
    }
    if (training.initializers.has(name) && trainable.has(name)) {
      throw new ArtifactError(tf, `trainable parameter ${name} is also an initializer; it must be a graph input only`);
    }
    expectTensor(tf, v, FLOAT, t.dims);
  }

  const accumulators = training.nodes.filter((n) => n.opType === "InPlaceAccumulatorV2");
  const reset = inputs.get(LAZY_RESET);
  if (!reset) throw new ArtifactError(tf, `input ${LAZY_RESET} is missing (BOOL [1], fed by ORT)`);
  expectTensor(tf, reset, BOOL, [1]);
  const gradientOf = new Map<string, string>();
  const params: ArtifactsInfo["params"] = [];
  for (const v of training.inputs) {
    const t = trainable.get(v.name);
    if (!t) continue;
    const p = v.name;
    const buf = inputs.get(bufferName(p));
    if (!buf) throw new ArtifactError(tf, `trainable parameter ${p} has no input ${bufferName(p)}`);
    expectTensor(tf, buf, FLOAT, t.dims);
    const acc = accumulators.find((n) => n.inputs[0] === bufferName(p));
    if (!acc) {
      throw new ArtifactError(
        tf,
        `no InPlaceAccumulatorV2 writes ${bufferName(p)}: ${p} would train on zero gradients`,
      );
    }
    if (acc.domain !== MS_DOMAIN) {
      throw new ArtifactError(tf, `the accumulator of ${p} is in domain "${acc.domain}", not ${MS_DOMAIN}`);
    }
    if (acc.inputs[2] !== LAZY_RESET) {
      throw new ArtifactError(
        tf,
        `the accumulator of ${p} takes ${JSON.stringify(acc.inputs[2] ?? "")} as its reset flag, not ${LAZY_RESET}`,
      );
    }
    if (!acc.inputs[1]) throw new ArtifactError(tf, `the accumulator of ${p} adds nothing`);
    gradientOf.set(p, acc.inputs[1]);
    params.push({ name: p, key: peftKeyOf(p), shape: t.dims.map(Number) });
  }
  for (const v of training.inputs) {
    const m = /^(.*)_grad\.accumulation\.buffer$/.exec(v.name);
    if (m && !trainable.has(m[1])) {
      throw new ArtifactError(
        tf,
        `input ${v.name} is a gradient buffer of ${m[1]}, which is not a trainable parameter of the checkpoint`,
      );
    }
  }
  const userInputs = training.inputs.filter((v) =>
    !allParams.has(v.name) && v.name !== LAZY_RESET && !isGradientName(v.name)
  );
  const userOutputs = training.outputs.map((o) => o.name).filter((n) => !isGradientName(n));
  if (userOutputs.length === 0) throw new ArtifactError(tf, "no user outputs: the loss must be the first graph output");

  let evalInfo: ModelInfo | null = null;
  if (bytes.evalModel) {
    const ef = file(ARTIFACT_FILES.evalModel);
    evalInfo = readModel(bytes.evalModel, ef);
    const trainOrder = training.inputs.map((v) => v.name).filter((n) => allParams.has(n));
    const evalOrder = evalInfo.inputs.map((v) => v.name).filter((n) => allParams.has(n));
    const expected = trainOrder.filter((n) => evalOrder.includes(n));
    const wrong = evalOrder.findIndex((n, i) => n !== expected[i]);
    if (wrong >= 0) {
      throw new ArtifactError(
        ef,
        `parameter ${evalOrder[wrong]} is input ${wrong} of the eval model's parameters, but the training model has ${
          expected[wrong]
        } there: ORT feeds parameters in the training model's order, so the eval model must list them in that order`,
      );
    }
    const grads = evalInfo.inputs.filter((v) => isGradientName(v.name) || v.name === LAZY_RESET);
    if (grads.length) {
      throw new ArtifactError(
        ef,
        `gradient inputs in an eval model: ${grads.map((v) => v.name).join(", ")}`,
      );
    }
  }

  let optimizer: ArtifactsInfo["optimizer"] = null;
  if (bytes.optimizerModel) {
    optimizer = checkOptimizer(
      readModel(bytes.optimizerModel, file(ARTIFACT_FILES.optimizerModel)),
      file(ARTIFACT_FILES.optimizerModel),
    );
  }
  return { checkpoint, training, params, gradientOf, userInputs, userOutputs, eval: evalInfo, optimizer };
}

function checkOptimizer(m: ModelInfo, of: string): NonNullable<ArtifactsInfo["optimizer"]> {
  const ops = m.nodes.filter((n) =>
    n.domain === MS_DOMAIN && (n.opType === "AdamWOptimizer" || n.opType === "SGDOptimizerV2")
  );
  const types = new Set(ops.map((n) => n.opType));
  if (types.size !== 1 || ops.length !== 1) {
    throw new ArtifactError(
      of,
      `needs exactly one com.microsoft AdamWOptimizer or SGDOptimizerV2 node, found ${
        ops.map((n) => n.opType).join(", ") || "none"
      }`,
    );
  }
  const kind = ops[0].opType === "AdamWOptimizer" ? "adamw" : "sgd";
  const want = optimizerInputNames(kind);
  const got = m.inputs.map((v) => v.name);
  if (got.join(",") !== want.join(",")) {
    throw new ArtifactError(of, `inputs must be exactly [${want.join(", ")}] in this order, got [${got.join(", ")}]`);
  }
  expectTensor(of, m.inputs[0], FLOAT, [1]);
  expectTensor(of, m.inputs[1], INT64, [1]);
  for (const v of m.inputs.slice(2)) {
    if (v.kind !== "sequence" || v.elemType !== FLOAT) {
      throw new ArtifactError(of, `input ${v.name} must be seq(tensor(float))`);
    }
  }
  const flag = ops[0].outputs[0];
  if (
    m.outputs[0]?.name !== flag &&
    !m.nodes.some((n) => n.opType === "Identity" && n.inputs[0] === flag && n.outputs[0] === m.outputs[0]?.name)
  ) {
    throw new ArtifactError(
      of,
      `the first graph output must be the optimizer's BOOL flag (${flag}); ORT only counts a step when it is true`,
    );
  }
  return { kind, attributes: ops[0].attributes };
}

function expectTensor(file: string, v: ValueInfo, elemType: number, dims: readonly number[]): void {
  const name = { [FLOAT]: "float", [INT64]: "int64", [BOOL]: "bool" }[elemType] ?? String(elemType);
  if (v.kind !== "tensor" || v.elemType !== elemType) {
    throw new ArtifactError(file, `input ${v.name} must be a ${name} tensor`);
  }
  if (v.shape && (v.shape.length !== dims.length || v.shape.some((d, i) => typeof d === "number" && d !== dims[i]))) {
    throw new ArtifactError(file, `input ${v.name} has shape [${v.shape}], expected [${dims}]`);
  }
}
