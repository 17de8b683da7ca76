/**
 * The `ort-training` engine: the trainer's step driver on ORT Web 1.19.2's TrainingSession, from
 * artifacts emitted here or from a directory made by Python's onnxruntime-training.
 *
 * One update is `lazyResetGrad()`, one `runTrainStep` per micro-batch (ORT sums the gradients in its
 * InPlaceAccumulatorV2 buffers) and `runOptimizerStep()`. What the web runtime lacks is made up
 * around it:
 * - **learning rate and schedule**: the runtime feeds a fixed 1e-3, so our optimizer model reads
 *   the rate of each update from a table indexed by the runtime's step counter (optimizer_model.ts);
 *   for a directory of Python artifacts the same optimizer model replaces theirs in memory;
 * - **gradient norm and checkpoints**: the runtime can neither save a checkpoint nor show the
 *   optimizer's moments, so the training model also outputs each gradient (adapt.ts) and a float32
 *   mirror keeps AdamW's moments (moments.ts); our checkpoints are the trainer's own (adapter +
 *   moments + step), and resuming writes them into a fresh ORT checkpoint (optimizer group `group0`
 *   with the step and momentums), which the runtime does read.
 *
 * It runs on wasm only (the training build has no WebGPU) with one thread, and is never chosen by
 * `auto`.
 *
 * @module
 */

import type { FileSource } from "../io/files.ts";
import type { TrainBackendPreference } from "../runtime/backend.ts";
import type { LoraAdapter } from "../lora/adapter.ts";
import type { LoadedModel } from "../models/load.ts";
import type { Optimizer } from "../optim/optimizer.ts";
import type { Schedule } from "../optim/schedule.ts";
import type { PreferenceLossOptions } from "../train/preference_graph.ts";
import { LOSS, stateName } from "../train/step.ts";
import type { Batch, OptimizerState, StepResult } from "../train/step_runner.ts";
import { withGradientOutputs } from "./adapt.ts";
import { ARTIFACT_FILES, checkArtifacts } from "./artifacts.ts";
import { checkArtifactsDir } from "./trainer_contract.ts";
import { CHECKPOINT_VERSION, MOMENTUM_NAMES, type NamedTensor, writeCheckpoint } from "./checkpoint.ts";
import { UpdateMirror } from "./moments.ts";
import { gradOutputName } from "./names.ts";
import { emitOptimizerModel, type OptimizerModelSpec } from "./optimizer_model.ts";
import { OrtTrainingSession } from "./session.ts";
import { emitTrainingModels } from "./training_model.ts";

/** The backend name that selects this engine (`--backend ort-training`). */
export const ORT_TRAINING_BACKEND = "ort-training" as const satisfies TrainBackendPreference;

/** What {@link OrtTrainingRunner.create} takes. */
export interface OrtTrainingRunnerOptions {
  model: LoadedModel;
  /** The starting adapter (its config and tensors). */
  adapter: LoraAdapter;
  loss: PreferenceLossOptions;
  /** The trainer's optimizer (`adamw(...)` or `sgd(...)` without momentum). */
  optimizer: Optimizer;
  lr: Schedule;
  /** Updates the run will make (the length of the learning-rate table). */
  totalSteps: number;
  gradAccum: number;
  /**
   * Micro-batches of update k (0-based), when fewer than `gradAccum` for some updates (the
   * trainer's epochs end with the micro-batches left over). Default: `gradAccum` for every update.
   */
  microBatches?: (update: number) => number;
  maxGradNorm: number;
  /**
   * Recompute each layer's activations in the backward pass (gradient checkpointing), as the fused
   * engine does for large batches; emitted artifacts only (a Python directory brings its own graph).
   */
  recompute?: boolean;
  /** Train this directory's training model (Python's `generate_artifacts` layout) instead of emitting one. */
  artifactsDir?: string | null;
  files?: FileSource;
  log?: (line: string) => void;
}

/** A trainable parameter as the engine tracks it. */
interface Param {
  name: string;
  key: string;
  shape: number[];
  size: number;
}

/** Maps the trainer's optimizer onto ORT's optimizer ops. */
function optimizerSpec(
  opt: Optimizer,
): Omit<OptimizerModelSpec, "numParams" | "lrTable" | "gradAccum" | "maxGradNorm"> {
  const c = opt.config as Record<string, number | boolean>;
  if (opt.name === "adamw") {
    return {
      kind: "adamw",
      beta1: c.beta1 as number,
      beta2: c.beta2 as number,
      eps: c.eps as number,
      weightDecay: c.weightDecay as number,
    };
  }
  if (opt.name === "sgd") {
    if ((c.momentum as number) > 0 || c.nesterov) {
      throw new RangeError(
        "--backend ort-training: ORT's SGDOptimizerV2 has no momentum; use SGD without momentum or AdamW",
      );
    }
    return { kind: "sgd", weightDecay: c.weightDecay as number };
  }
  throw new RangeError(`--backend ort-training supports the adamw and sgd optimizers, not ${opt.name}`);
}

/** Drives preference training on ORT's TrainingSession; the trainer uses it like the fused StepRunner. */
export class OrtTrainingRunner {
  readonly #o: OrtTrainingRunnerOptions;
  readonly #params: Param[];
  readonly #frozen: NamedTensor[];
  /** Kept until the first update, for a resume's session rebuild; then freed (it holds every frozen weight). */
  #trainingModel: Uint8Array | null;
  readonly #optimizerModel: Uint8Array;
  readonly #mirror: UpdateMirror;
  readonly #lossName: string;
  readonly #metricNames: string[];
  readonly #source: string;
  #session: OrtTrainingSession | null = null;
  /** Set by importState: the session must be rebuilt with the imported step and moments. */
  #stale = false;
  #step = 0;

  private constructor(
    o: OrtTrainingRunnerOptions,
    parts: {
      params: Param[];
      frozen: NamedTensor[];
      trainingModel: Uint8Array;
      optimizerModel: Uint8Array;
      userOutputs: string[];
      source: string;
    },
  ) {
    this.#o = o;
    this.#params = parts.params;
    this.#frozen = parts.frozen;
    this.#trainingModel = parts.trainingModel;
    this.#optimizerModel = parts.optimizerModel;
    this.#source = parts.source;
    const spec = optimizerSpec(o.optimizer);
    this.#mirror = new UpdateMirror(parts.params, {
      kind: spec.kind,
      gradAccum: o.gradAccum,
      maxGradNorm: o.maxGradNorm,
      beta1: spec.beta1,
      beta2: spec.beta2,
    });
    const users = parts.userOutputs.filter((n) => !n.endsWith("::grad"));
    this.#lossName = users.includes(LOSS) ? LOSS : users[0];
    this.#metricNames = users.filter((n) => n !== this.#lossName);
  }

  /** Builds the artifacts (or reads the directory's), checks them and starts a session. */
  static async create(o: OrtTrainingRunnerOptions): Promise<OrtTrainingRunner> {
    const spec = optimizerSpec(o.optimizer);
    const steps = Math.max(1, o.totalSteps);
    const lrTable = Float32Array.from({ length: steps }, (_, k) => o.lr(k));
    const microBatches = o.microBatches ? Array.from({ length: steps }, (_, k) => o.microBatches!(k)) : undefined;
    let trainingModel: Uint8Array, source: string;
    let frozen: NamedTensor[] = [];
    let checked: ReturnType<typeof checkArtifacts>;
    if (o.artifactsDir) {
      if (!o.files) throw new Error("OrtTrainingRunner: reading an artifacts directory needs `files`");
      source = o.artifactsDir;
      const dir = await checkArtifactsDir(o.artifactsDir, o.files, o.adapter);
      checked = dir.info;
      trainingModel = dir.bytes.trainingModel;
      frozen = checked.checkpoint.frozen;
      if (checked.optimizer) {
        o.log?.(
          `note: ${o.artifactsDir}/${ARTIFACT_FILES.optimizerModel} (${checked.optimizer.kind}) is replaced in memory by this run's ${spec.kind} with its learning rate baked per step (ORT Web cannot set a learning rate)`,
        );
      }
    } else {
      source = "the emitted artifacts";
      const m = emitTrainingModels({
        model: o.model,
        lora: o.adapter.config,
        loss: o.loss,
        layout: "exo",
        recompute: o.recompute,
      });
      trainingModel = m.trainingModel;
      const params = m.params.map((p) => ({ name: p.name, dims: p.shape, data: new Float32Array(sizeOf(p.shape)) }));
      checked = checkArtifacts({
        checkpoint: writeCheckpoint({ version: CHECKPOINT_VERSION, trainable: params, frozen: [] }),
        trainingModel,
      }, source);
    }
    const params: Param[] = checked.params.map((p) => ({
      name: p.name,
      key: p.key!,
      shape: p.shape,
      size: sizeOf(p.shape),
    }));
    const optimizerModel = emitOptimizerModel({
      ...spec,
      numParams: params.length,
      lrTable,
      gradAccum: o.gradAccum,
      microBatches,
      maxGradNorm: o.maxGradNorm,
    });
    const runner = new OrtTrainingRunner(o, {
      params,
      frozen,
      trainingModel: withGradientOutputs(trainingModel, params, checked.gradientOf),
      optimizerModel,
      userOutputs: checked.userOutputs,
      source,
    });
    const initial = new Map<string, Float32Array>();
    for (const [k, t] of o.adapter.tensors) initial.set(k, t.data as Float32Array);
    await runner.#start(runner.#flatten(initial), null);
    return runner;
  }

  /** Updates done so far. */
  get step(): number {
    return this.#step;
  }

  /** One optimizer update from one batch or the micro-batches of one update. */
  async run(batches: Batch | readonly Batch[]): Promise<StepResult> {
    const list: readonly Batch[] = Array.isArray(batches) ? batches : [batches as Batch];
    const expected = this.#o.microBatches ? this.#o.microBatches(this.#step) : this.#o.gradAccum;
    if (list.length !== expected) {
      throw new RangeError(
        `Update ${this.#step + 1} of this run accumulates ${expected} micro-batches, got ${list.length}`,
      );
    }
    const s = await this.#ensureSession();
    const lr = this.#o.lr(this.#step);
    const sums: Record<string, number> = { [this.#lossName]: 0 };
    for (const m of this.#metricNames) sums[m] = 0;
    await s.lazyResetGrad();
    for (let j = 0; j < list.length; j++) {
      const out = await s.trainStep(list[j]);
      for (const k of Object.keys(sums)) sums[k] += Number((out[k].data as Float32Array)[0]);
      for (const p of this.#params) this.#mirror.add(p.name, out[gradOutputName(p.name)].data as Float32Array, j === 0);
      this.#mirror.endMicroBatch();
    }
    await s.optimizerStep();
    const gradNorm = this.#mirror.finishUpdate(expected);
    this.#step++;
    this.#trainingModel = null;
    const metrics: Record<string, number> = {};
    for (const m of this.#metricNames) metrics[m] = sums[m] / list.length;
    return { step: this.#step, lr, loss: sums[this.#lossName] / list.length, gradNorm, metrics };
  }

  /** The current LoRA matrices by PEFT key (copies). */
  async getParams(): Promise<Map<string, Float32Array>> {
    const flat = await (await this.#ensureSession()).trainableParameters();
    const out = new Map<string, Float32Array>();
    let at = 0;
    for (const p of this.#params) {
      out.set(p.key, flat.slice(at, at + p.size));
      at += p.size;
    }
    return out;
  }

  /** The update count and AdamW's moments as `<PEFT key>::m` / `::v` (the fused engine's names). */
  exportState(): Promise<OptimizerState> {
    const slots = new Map<string, Float32Array>();
    for (const [name, { m, v }] of this.#mirror.moments()) {
      const key = this.#params.find((p) => p.name === name)!.key;
      slots.set(stateName(key, "m"), m);
      slots.set(stateName(key, "v"), v);
    }
    return Promise.resolve({ step: this.#step, optimizer: this.#o.optimizer.name, slots });
  }

  /** Restores a checkpoint's step and moments; the session is rebuilt before the next call. */
  importState(state: OptimizerState): void {
    if (!this.#trainingModel) throw new Error("OrtTrainingRunner.importState() must come before the first run()");
    if (state.optimizer !== this.#o.optimizer.name) {
      throw new RangeError(`Optimizer state is for ${state.optimizer}, this run uses ${this.#o.optimizer.name}`);
    }
    if (!(Number.isInteger(state.step) && state.step >= 0)) throw new RangeError(`Invalid step ${state.step}`);
    if (this.#o.optimizer.name === "adamw") {
      for (const p of this.#params) {
        const m = state.slots.get(stateName(p.key, "m")), v = state.slots.get(stateName(p.key, "v"));
        if (!m || !v || m.length !== p.size || v.length !== p.size) {
          throw new RangeError(`Optimizer state of ${p.key} is missing or has the wrong size`);
        }
        this.#mirror.setMoments(p.name, m, v);
      }
    }
    this.#step = state.step;
    this.#stale = true;
  }

  /** Frees the session. */
  async release(): Promise<void> {
    await this.#session?.release();
    this.#session = null;
  }

  #flatten(params: ReadonlyMap<string, Float32Array>): Float32Array {
    const flat = new Float32Array(this.#params.reduce((a, p) => a + p.size, 0));
    let at = 0;
    for (const p of this.#params) {
      const data = params.get(p.key);
      if (!data || data.length !== p.size) {
        throw new RangeError(`The adapter's ${p.key} is missing or has ${data?.length} values, not ${p.size}`);
      }
      flat.set(data, at);
      at += p.size;
    }
    return flat;
  }

  async #ensureSession(): Promise<OrtTrainingSession> {
    if (this.#stale) {
      this.#stale = false;
      const flat = await this.#session!.trainableParameters();
      await this.#session!.release();
      this.#session = null;
      await this.#start(flat, this.#step);
    }
    return this.#session!;
  }

  /** Writes an ORT checkpoint (parameters, frozen tensors, optional optimizer group) and opens a session on it. */
  async #start(flat: Float32Array, step: number | null): Promise<void> {
    let at = 0;
    const trainable: NamedTensor[] = this.#params.map((p) => {
      const t = { name: p.name, dims: p.shape, data: flat.subarray(at, at + p.size) };
      at += p.size;
      return t;
    });
    let optimizer = null;
    if (step !== null) {
      const moments = this.#mirror.moments();
      optimizer = {
        name: "group0",
        step,
        initialLearningRate: this.#o.lr(0),
        states: this.#params.map((p) => {
          const mv = moments.get(p.name);
          // SGD keeps one (unused) momentum per parameter, AdamW two.
          const data = mv ? [mv.m, mv.v] : [new Float32Array(p.size)];
          return {
            param: p.name,
            momentums: data.map((d, i) => ({ name: MOMENTUM_NAMES[i], dims: p.shape, data: d })),
          };
        }),
      };
    }
    const checkpoint = writeCheckpoint({ version: CHECKPOINT_VERSION, trainable, frozen: this.#frozen, optimizer });
    this.#session = await OrtTrainingSession.create(
      { checkpointState: checkpoint, trainModel: this.#trainingModel!, optimizerModel: this.#optimizerModel },
      this.#source,
    );
  }
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
