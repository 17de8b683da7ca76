/**
 * The preference trainer: tunes a LoRA adapter on preference pairs or reward groups with EXO or
 * DPO, on the device, and writes a PEFT adapter.
 *
 * Everything that can be wrong with the input (model, data, options, a checkpoint to resume) is
 * checked before the output directory is touched. Reference log-probs are computed once per
 * example with the adapter disabled (the base model: no second copy of the weights) and cached;
 * each optimizer update is one fused ONNX graph (forward, loss, backward, clipping, AdamW/SGD) whose
 * parameters and moments stay on the GPU under WebGPU.
 *
 * @module
 */

import {
  BatchSampler,
  type DataCursor,
  exampleLength,
  type PaddedBatch,
  padGroups,
  padPairs,
} from "../data/batching.ts";
import { encodeDataset, type EncodedGroup, type EncodedPair, type TruncationStats } from "../data/encode.ts";
import type { Dataset } from "../data/formats.ts";
import { DataError, type DataWarning } from "../data/jsonl.ts";
import { type FileSink, type FileSource, joinPath, localFiles } from "../io/files.ts";
import { initLoraAdapter, type LoraAdapter, validateAdapter, writeAdapter } from "../lora/adapter.ts";
import { createLoraConfig, type LoraConfig } from "../lora/config.ts";
import { loraTargets } from "../lora/targets.ts";
import { type LoadedModel, loadModel, releaseWeights } from "../models/load.ts";
import { Scorer, type ScoreSequence } from "../models/score.ts";
import type { Optimizer } from "../optim/optimizer.ts";
import { lrSchedule } from "../optim/schedule.ts";
import { fingerprintValues, type Namer, OPTION_NAMES, OptionError } from "../options/table.ts";
import { resolveBackend } from "../runtime/backend.ts";
import type { BackendName } from "../runtime/ort.ts";
import { Engine, type OrtTensor } from "../runtime/session.ts";
import { Rng } from "../util/rng.ts";
import { type Checkpoint, latestCheckpoint, loadCheckpoint, saveCheckpoint, type TrainerState } from "./checkpoint.ts";
import {
  OPTIMIZERS,
  type ResolvedTrainOptions,
  resolveTrainOptions,
  TRAIN_OPTIONS,
  type TrainOptions,
} from "./options.ts";
import { buildPreferenceGraph, INPUT, isRewardLoss, type LossKind } from "./preference_graph.ts";
import { ProgressReporter, type ProgressSink } from "./progress.ts";
import { compileStep } from "./step.ts";
import { activationBytes, shouldRecompute } from "./memory_plan.ts";
import { halfDtypesFor } from "../models/half_dtypes.ts";
import { type Batch, type OptimizerState, StepRunner } from "./step_runner.ts";
import { readTrainData } from "./data_input.ts";
// The ort-training engine (src/ort_training/): chosen only by `--backend ort-training`, never by auto.
import {
  checkArtifactsDir,
  isArtifactsDir,
  ORT_TRAINING_BACKEND,
  OrtTrainingRunner,
  readInitAdapter,
} from "../ort_training/mod.ts";

export { type ResolvedTrainOptions, resolveTrainOptions, TRAIN_OPTIONS, type TrainOptions } from "./options.ts";

/** The tuned adapter and optimizer state, in memory. */
export interface TrainedState {
  /** The adapter after the last update: for `Generator.setAdapter`, or `writeAdapter` to any sink. */
  adapter: LoraAdapter;
  /** The optimizer's update count and moments (what a checkpoint holds beside the adapter). */
  optimizer: OptimizerState;
}

/** What a run reports at the end (`--json` prints it, without `trained`). */
export interface TrainSummary {
  /** The output directory, or null when the run wrote nothing (no `out`). */
  out: string | null;
  /** The directory of the written PEFT adapter (= `out`), or null. */
  adapter: string | null;
  /** The adapter and optimizer state in memory (with or without `out`). */
  trained: TrainedState;
  backend: BackendName | typeof ORT_TRAINING_BACKEND;
  backendReason: string;
  loss: LossKind;
  steps: number;
  epochs: number;
  examples: number;
  truncation: TruncationStats;
  warnings: number;
  resumedFromStep: number | null;
  interrupted: boolean;
  finalLoss: number | null;
  finalMetrics: Record<string, number>;
  tokensPerSecond: number;
  seconds: number;
  referenceSeconds: number;
}

/**
 * The error of a non-finite loss: names the step and the batch's data lines, and the options that
 * help (`describe(namer)` names them as flags for the CLI).
 */
export class NonFiniteLossError extends Error {
  readonly step: number;
  readonly lines: number[];
  readonly #detail: string;
  constructor(step: number, lines: number[], detail: string) {
    super();
    this.name = "NonFiniteLossError";
    this.step = step;
    this.lines = lines;
    this.#detail = detail;
    this.message = this.describe(OPTION_NAMES);
  }

  /** The message with options named by `name`. */
  describe(name: Namer): string {
    const lines = `${this.lines.slice(0, 20).join(", ")}${this.lines.length > 20 ? ", ..." : ""}`;
    return `Non-finite loss at step ${this.step} (${this.#detail}), batch of data lines ${lines}. ` +
      "Training stopped; checkpoints written before this step are kept. " +
      `Lower ${name("lr")} or ${name("beta")}, or enable ${name("maxGradNorm")}`;
  }
}

/** Data of the wrong kind for the loss (pairs for a `*-rw` loss, or groups for a `*-pref` one). */
class DataKindError extends DataError {
  readonly #render: (name: Namer) => string;
  constructor(file: string, loss: LossKind, found: string) {
    const want = isRewardLoss(loss)
      ? 'reward groups {"prompt","completions","rewards"}'
      : 'preference pairs {"prompt","chosen","rejected"}';
    const render = (name: Namer) => `${name("loss")} ${loss} needs ${want}, but the file holds ${found}`;
    super({ file, line: null, field: null }, render(OPTION_NAMES));
    this.#render = (name) => `${file}: ${render(name)}`;
  }

  /** The message with options named by `name`. */
  describe(name: Namer): string {
    return this.#render(name);
  }
}

/** Encoded training examples: pairs, or reward groups of K completions. */
export type Examples = { kind: "pairs"; items: EncodedPair[] } | { kind: "groups"; items: EncodedGroup[]; k: number };

/** Everything checked and prepared before any output is written. */
interface Prepared {
  o: ResolvedTrainOptions;
  model: LoadedModel;
  examples: Examples;
  truncation: TruncationStats;
  warnings: DataWarning[];
  adapter: LoraAdapter;
  fingerprint: { hash: string; options: Record<string, unknown> };
  /** The checkpoint to resume from (already checked against the fingerprint), or null. */
  resume: Checkpoint | null;
}

/**
 * What must not change between a run and its resume: the table's fingerprinted options, the model,
 * the adapter config and the data. `options` is stored in the checkpoint so that a refusal can name
 * what changed; the hash covers everything.
 */
function fingerprintOf(o: ResolvedTrainOptions, model: LoadedModel, lora: LoraConfig, dataText: string) {
  const options = Object.fromEntries(fingerprintValues(TRAIN_OPTIONS, o));
  const key = JSON.stringify({ options, model: model.dir, arch: model.config.arch, lora, data: hash(dataText) });
  return { hash: hash(key), options };
}

/** The options whose values differ from a checkpoint's, named by `name`: ` (lr 0.005 then, 0.001 now)`. */
export function optionChanges(
  saved: Record<string, unknown> | undefined,
  now: Record<string, unknown>,
  name: Namer,
): string {
  if (!saved) return "";
  const show = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));
  const diffs = Object.keys(now).filter((k) => JSON.stringify(saved[k] ?? null) !== JSON.stringify(now[k]))
    .map((k) => `${name(k)} ${show(saved[k] ?? null)} then, ${show(now[k])} now`);
  return diffs.length > 0 ? ` (${diffs.join("; ")})` : "";
}

export function hash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0") + s.length.toString(16);
}

/** Loads and validates everything. Throws DataError / RangeError / Error before touching `out`. */
async function prepare(options: TrainOptions, files: FileSource & FileSink): Promise<Prepared> {
  const o = resolveTrainOptions(options);
  const model = typeof o.model === "string"
    ? await loadModel(o.model, files, { hub: { revision: o.revision } })
    : o.model;
  if (o.out === null && (o.resume || o.checkpointEvery > 0)) {
    throw new OptionError(
      o.resume ? "resume" : "checkpointEvery",
      (n) => `${n(o.resume ? "resume" : "checkpointEvery")} needs ${n("out")}: checkpoints are written there`,
    );
  }
  // A file, a list of records or a stream: validated alike (src/train/data_input.ts).
  const data = await readTrainData(o.data, files, { vocabSize: model.config.vocabSize });
  const wantKind = isRewardLoss(o.loss) ? "groups" : "pairs";
  const ds: Dataset = data.dataset;
  if (ds.kind !== wantKind) throw new DataKindError(data.name, o.loss, ds.kind);
  const enc = encodeDataset(ds, model.tokenizer, {
    maxLength: model.config.maxPositions,
    vocabSize: model.config.vocabSize,
  });
  let examples: Examples;
  if (enc.kind === "pairs") examples = { kind: "pairs", items: enc.examples };
  else if (enc.kind === "groups") {
    examples = { kind: "groups", items: enc.examples, k: enc.examples[0]?.completionIds.length ?? 0 };
  } else throw new Error(`unreachable: ${enc.kind}`);
  if (examples.items.length === 0) throw new DataError({ file: data.name, line: null, field: null }, "no examples");

  let adapter: LoraAdapter;
  if (o.initAdapter) {
    adapter = await readInitAdapter(o.initAdapter, files, model.config);
  } else {
    adapter = newAdapter(model, o); // throws on unknown target names, before anything is written
  }
  validateAdapter(adapter, model.config, o.initAdapter ?? "new adapter");
  // ort-training from an artifacts directory: its models are checked now, before anything is written.
  if (o.backend === ORT_TRAINING_BACKEND && o.initAdapter && (await isArtifactsDir(o.initAdapter, files))) {
    await checkArtifactsDir(o.initAdapter, files, adapter);
  }
  const fingerprint = fingerprintOf(o, model, adapter.config, data.key);
  let resume: Checkpoint | null = null;
  if (o.out === null) {
    // Nothing is written: no directory to check.
  } else if (!o.resume) {
    // A fresh run beside an earlier run's checkpoints would have its own pruned away (names sort by
    // step) and block a later resume: refuse rather than mix two runs in one directory.
    const earlier = await latestCheckpoint(o.out, files);
    if (earlier) {
      throw new OptionError(
        "out",
        (n) =>
          `${n("out")} ${o.out} already holds checkpoints of an earlier run (${earlier}): pass ${
            n("resume")
          } to continue it, or use a new ${n("out")}`,
      );
    }
  } else {
    const resumeFrom = await latestCheckpoint(o.out, files);
    if (resumeFrom) {
      resume = await loadCheckpoint(resumeFrom, files);
      if (resume.state.fingerprint !== fingerprint.hash) {
        const saved = resume.state.options;
        throw new OptionError(
          "resume",
          (n) =>
            `Cannot resume from ${resumeFrom}: it was written with other options, data or model${
              optionChanges(saved, fingerprint.options, n)
            }. Use the same options as the interrupted run, or a new ${n("out")}`,
        );
      }
    }
  }
  const warnings = [...ds.warnings, ...enc.warnings];
  return { o, model, examples, truncation: enc.truncation, warnings, adapter, fingerprint, resume };
}

/**
 * Reference log-probs of every completion, base model (adapter disabled): per example, [chosen,
 * rejected] for pairs or the K completions of a group.
 */
async function referenceLogps(engine: Engine, model: LoadedModel, ex: Examples, tau: number): Promise<Float32Array[]> {
  const completions = ex.kind === "pairs"
    ? ex.items.map((p) => [p.chosenIds, p.rejectedIds])
    : ex.items.map((g) => g.completionIds);
  const seqs: ScoreSequence[] = ex.items.flatMap((e, i) =>
    completions[i].map((c) => ({ promptIds: e.promptIds, completionIds: c }))
  );
  const scorer = await Scorer.create(model, { engine });
  try {
    const lp = await scorer.score(seqs, { temperature: tau, batchSize: 16 });
    let at = 0;
    return completions.map((cs) => Float32Array.from(lp.slice(at, at += cs.length)));
  } finally {
    await scorer.release();
  }
}

function toFeeds(engine: Engine, padded: PaddedBatch, ref: Float32Array, rewards?: Float32Array, k?: number): Batch {
  const rows = padded.rows, t = padded.length;
  const feeds: Record<string, OrtTensor> = {
    [INPUT.inputIds]: engine.tensor(padded.inputIds as BigInt64Array, [rows, t]),
    [INPUT.attentionMask]: engine.tensor(padded.attentionMask as BigInt64Array, [rows, t]),
    [INPUT.targets]: engine.tensor(padded.targets as BigInt64Array, [rows, t]),
    [INPUT.completionMask]: engine.tensor(padded.completionMask as Float32Array, [rows, t]),
    [INPUT.refLogps]: engine.tensor(ref, [rows]),
  };
  if (rewards && k) feeds[INPUT.rewards] = engine.tensor(rewards, [rows / k, k]);
  return feeds;
}

/** Builds one micro-batch's feeds and its token count from example indices. */
export function makeBatch(engine: Engine, ex: Examples, refs: Float32Array[], idx: number[], maxLength: number): {
  feeds: Batch;
  tokens: number;
  lines: number[];
} {
  if (ex.kind === "pairs") {
    const items = idx.map((i) => ex.items[i]);
    const padded = padPairs(items, { maxLength });
    const b = items.length;
    const ref = new Float32Array(2 * b);
    idx.forEach((i, j) => {
      ref[j] = refs[i][0];
      ref[b + j] = refs[i][1];
    });
    return { feeds: toFeeds(engine, padded, ref), tokens: sum(padded.rowLengths), lines: items.map((e) => e.line) };
  }
  const items = idx.map((i) => ex.items[i]);
  const padded = padGroups(items, { maxLength });
  const ref = new Float32Array(items.length * ex.k);
  idx.forEach((i, j) => ref.set(refs[i], j * ex.k));
  return {
    feeds: toFeeds(engine, padded, ref, Float32Array.from(padded.rewards), ex.k),
    tokens: sum(padded.rowLengths),
    lines: items.map((e) => e.line),
  };
}

function sum(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s;
}

/**
 * A training run. `Trainer.create()` validates everything (no output written on failure);
 * `train()` runs it.
 *
 * @example
 * ```ts ignore
 * const trainer = await Trainer.create({ model: "models/review-gpt2", data: "data/pairs.jsonl", out: "runs/a" });
 * const summary = await trainer.train();
 * console.log(summary.adapter);
 * ```
 */
export class Trainer {
  readonly options: ResolvedTrainOptions;
  readonly model: LoadedModel;
  /** Data warnings (e.g. chosen identical to rejected). */
  readonly warnings: readonly DataWarning[];
  #p: Prepared;
  #files: FileSource & FileSink;
  #progress?: ProgressSink;
  #log: (line: string) => void;
  #signal?: AbortSignal;

  private constructor(p: Prepared, options: TrainOptions, files: FileSource & FileSink) {
    this.#p = p;
    this.options = p.o;
    this.model = p.model;
    this.warnings = p.warnings;
    this.#files = files;
    this.#progress = options.progress;
    this.#log = options.log ?? (() => {});
    this.#signal = options.signal;
  }

  /** Loads the model and data and checks every option; throws before anything is written. */
  static async create(options: TrainOptions): Promise<Trainer> {
    const files = options.files ?? localFiles();
    const p = await prepare(options, files);
    return new Trainer(p, options, files);
  }

  /** Trains and writes the adapter; returns the summary. */
  async train(): Promise<TrainSummary> {
    const { o, model, examples: ex, fingerprint } = this.#p;
    const files = this.#files;
    const t0 = performance.now();
    // ort-training steps run on ORT 1.19.2's TrainingSession; the reference log-probs on wasm.
    const choice = o.backend === ORT_TRAINING_BACKEND
      ? {
        backend: ORT_TRAINING_BACKEND,
        reason: "ort-training requested (ORT Web 1.19.2 TrainingSession, wasm)",
      } as const
      : await resolveBackend(o.backend);
    const ortTraining = choice.backend === ORT_TRAINING_BACKEND;
    this.#log(`backend: ${choice.backend} (${choice.reason})`);
    for (const w of this.warnings.slice(0, 10)) this.#log(`warning: ${w.message}`);
    if (this.warnings.length > 10) this.#log(`warning: ... ${this.warnings.length - 10} more`);
    const tr = this.#p.truncation;
    if (tr.truncatedExamples > 0) {
      this.#log(
        `truncated ${tr.truncatedExamples} of ${tr.examples} examples to the model's ${tr.maxLength} positions`,
      );
    }
    const engine = await Engine.create(choice.backend === ORT_TRAINING_BACKEND ? "wasm" : choice.backend, {
      threads: o.threads ?? undefined,
    });

    const resume = this.#p.resume;
    const adapter = resume ? resume.adapter : this.#p.adapter;
    const state: TrainerState | null = resume ? resume.state : null;
    if (resume) this.#log(`resuming from ${resume.dir} (step ${resume.state.step})`);
    // Without `out` nothing is written: no metrics file, no checkpoints, no adapter directory.
    const out = o.out;
    const metricsPath = out === null ? null : joinPath(out, "metrics.jsonl");
    if (out !== null) await files.mkdir(out);
    if (metricsPath !== null) await truncateLines(files, metricsPath, state ? state.metricsLines : 0);
    let metricsLines = state ? state.metricsLines : 0;

    const tRef = performance.now();
    const refs = await referenceLogps(engine, model, ex, o.logitTemperature);
    const referenceSeconds = (performance.now() - tRef) / 1000;

    const sampler = new BatchSampler(ex.items.map((e) => exampleLength(e)), {
      batchSize: o.batchSize,
      seed: o.seed,
      shuffle: o.order === "bucketed",
    });
    // An epoch is cut into updates of gradAccum micro-batches, its last update taking the ones left
    // over: no update spans two epochs, and every epoch sees each example once.
    const updatesPerEpoch = Math.ceil(sampler.batchesPerEpoch / o.gradAccum);
    const totalSteps = o.maxSteps ?? updatesPerEpoch * o.epochs;
    const optimizer: Optimizer = OPTIMIZERS[o.optimizer](o);

    const lossOptions = {
      loss: o.loss,
      betaPi: o.beta,
      betaR: o.betaR,
      eps: o.epsilon,
      temperature: o.logitTemperature,
      k: ex.kind === "groups" ? ex.k : undefined,
    };
    const schedule = lrSchedule({ kind: o.schedule, lr: o.lr, warmupSteps: o.warmupSteps, totalSteps });

    // Layers are recomputed in the backward pass when the largest batch's activations would be
    // large (e.g. a 0.5B model on 2 pairs × 256 tokens: ~5 GB, over wasm's 4 GB heap).
    const rows = ex.kind === "pairs" ? 2 * o.batchSize : o.batchSize * ex.k;
    const longest = Math.min(model.config.maxPositions, Math.max(...ex.items.map((e) => exampleLength(e))));
    const recompute = shouldRecompute(model.config, rows, longest);
    if (recompute) {
      this.#log(
        `layers are recomputed in the backward pass: the largest batch (${rows} rows x ${longest} tokens) would keep ~${
          (activationBytes(model.config, rows, longest) / 2 ** 30).toFixed(1)
        } GB of activations`,
      );
    }

    // The graph and its serialized step refer to every frozen weight: they live only inside
    // makeRunner, so they can be collected once ORT has the weights.
    const halfDtypes = await halfDtypesFor(engine.backend);
    const makeRunner = () => {
      const pg = buildPreferenceGraph(model, adapter.config, lossOptions, { recompute, halfDtypes });
      const compiled = compileStep({
        graph: pg.graph,
        loss: pg.loss,
        params: pg.params,
        metrics: pg.metrics,
        optimizer,
        maxGradNorm: o.maxGradNorm,
        accumulate: o.gradAccum > 1,
        serialize: { externalDataThreshold: 1 << 20 },
      });
      const params = new Map<string, Float32Array>();
      for (const [k, t] of adapter.tensors) params.set(k, t.data as Float32Array);
      return StepRunner.create(engine, compiled, params, { lr: schedule });
    };
    const runner = ortTraining
      ? await OrtTrainingRunner.create({
        model,
        adapter,
        loss: lossOptions,
        optimizer,
        lr: schedule,
        totalSteps,
        gradAccum: o.gradAccum,
        // As the loop below cuts epochs: update j of an epoch takes what is left, at most gradAccum.
        microBatches: (k) => Math.min(o.gradAccum, sampler.batchesPerEpoch - (k % updatesPerEpoch) * o.gradAccum),
        maxGradNorm: o.maxGradNorm,
        recompute,
        artifactsDir: o.initAdapter && (await isArtifactsDir(o.initAdapter, files)) ? o.initAdapter : null,
        files,
        log: this.#log,
      })
      : await makeRunner();
    // Every session that needs the weights exists (the reference scorer is done; the ort-training
    // engine's training model holds its own copy): a model the trainer loaded itself drops its JS
    // copy, so the weights are held once, by ORT.
    if (typeof o.model === "string") releaseWeights(model);
    if (resume) runner.importState({ step: resume.state.step, optimizer: optimizer.name, slots: resume.optimizer });

    let cursor: DataCursor = state ? state.cursor : { epoch: 0, batchIndex: 0 };
    const rng = state ? Rng.fromState(state.rng) : new Rng(o.seed);
    let elapsed = state ? state.elapsedSeconds : 0;
    let tokens = 0, trainSeconds = 0;
    let last: { loss: number; metrics: Record<string, number> } | null = null;
    let interrupted = false;
    const reporter = this.#progress ? new ProgressReporter(this.#progress) : null;
    const startStep = runner.step;
    let trained!: TrainedState;

    const checkpoint = async () => {
      if (out === null) return;
      const st = await runner.exportState();
      const cur = await runner.getParams();
      const tensors = new Map([...adapter.tensors].map(([k, t]) => [k, { ...t, data: cur.get(k)! }]));
      await saveCheckpoint(out, files, {
        state: {
          step: runner.step,
          cursor,
          rng: rng.state(),
          fingerprint: fingerprint.hash,
          options: fingerprint.options,
          metricsLines,
          elapsedSeconds: elapsed,
        },
        adapter: { config: adapter.config, tensors },
        optimizer: st.slots,
      }, o.keepCheckpoints === 0 ? Infinity : o.keepCheckpoints);
    };

    try {
      while (runner.step < totalSteps) {
        if (this.#signal?.aborted) {
          interrupted = true;
          break;
        }
        const micro: Batch[] = [];
        const lines: number[] = [];
        let stepTokens = 0;
        for (let m = 0; m < o.gradAccum; m++) {
          const idx = sampler.batchAt(cursor);
          const b = makeBatch(engine, ex, refs, idx, model.config.maxPositions);
          micro.push(b.feeds);
          lines.push(...b.lines);
          stepTokens += b.tokens;
          cursor = sampler.advance(cursor);
          if (cursor.batchIndex === 0) break; // the epoch ended: the left-over micro-batches make this update
        }
        const ts = performance.now();
        const r = await runner.run(o.gradAccum > 1 ? micro : micro[0]);
        const dt = (performance.now() - ts) / 1000;
        if (!Number.isFinite(r.loss) || !Number.isFinite(r.gradNorm)) {
          throw new NonFiniteLossError(r.step, lines, `loss ${r.loss}, grad norm ${r.gradNorm}`);
        }
        trainSeconds += dt;
        elapsed += dt;
        tokens += stepTokens;
        last = { loss: r.loss, metrics: r.metrics };
        const epochFloat = cursor.epoch + cursor.batchIndex / sampler.batchesPerEpoch;
        const row = {
          step: r.step,
          epoch: Number(epochFloat.toFixed(4)),
          lr: r.lr,
          loss: r.loss,
          grad_norm: r.gradNorm,
          ...r.metrics,
          tokens: stepTokens,
          "tokens/s": stepTokens / dt,
          step_seconds: dt,
        };
        if (metricsPath !== null) await files.appendText(metricsPath, JSON.stringify(row) + "\n");
        metricsLines++;
        reporter?.update({
          step: r.step,
          totalSteps,
          epoch: cursor.epoch,
          loss: r.loss,
          accuracy: r.metrics["rewards/accuracies"] ?? null,
          tokensPerSecond: tokens / Math.max(trainSeconds, 1e-9),
          etaSeconds: (trainSeconds / Math.max(1, r.step - startStep)) * (totalSteps - r.step),
        });
        if (o.checkpointEvery > 0 && r.step % o.checkpointEvery === 0 && r.step < totalSteps) await checkpoint();
      }
      reporter?.finish();
      await checkpoint();
      const finalParams = await runner.getParams();
      const tensors = new Map([...adapter.tensors].map(([k, t]) => [k, { ...t, data: finalParams.get(k)! }]));
      const st = await runner.exportState();
      trained = {
        adapter: { config: adapter.config, tensors },
        optimizer: { step: runner.step, optimizer: optimizer.name, slots: st.slots },
      };
      // Each file is replaced atomically (temp + rename) by the FileSink.
      if (!interrupted && out !== null) await writeAdapter(out, trained.adapter, files);
    } finally {
      reporter?.finish();
      await runner.release();
    }
    return {
      out,
      adapter: out,
      trained,
      backend: choice.backend,
      backendReason: choice.reason,
      loss: o.loss,
      steps: runner.step,
      epochs: o.epochs,
      examples: ex.items.length,
      truncation: this.#p.truncation,
      warnings: this.warnings.length,
      resumedFromStep: state ? state.step : null,
      interrupted,
      finalLoss: last?.loss ?? null,
      finalMetrics: last?.metrics ?? {},
      tokensPerSecond: tokens / Math.max(trainSeconds, 1e-9),
      seconds: (performance.now() - t0) / 1000,
      referenceSeconds,
    };
  }
}

/** Keeps the first `n` lines of a file (metrics of steps a resumed run will redo are dropped). */
async function truncateLines(files: FileSource & FileSink, path: string, n: number): Promise<void> {
  if (!(await files.exists(path))) {
    await files.writeText(path, "");
    return;
  }
  const text = await files.readText(path);
  const lines = text.split("\n").filter((l) => l.length > 0);
  if (lines.length === n) return;
  await files.writeText(path, lines.slice(0, n).map((l) => l + "\n").join(""));
}

/** Convenience: create + train. */
export async function train(options: TrainOptions): Promise<TrainSummary> {
  return await (await Trainer.create(options)).train();
}

/**
 * A fresh LoRA adapter (B = 0) from the LoRA options, seeded by `seed`: what the trainer and the
 * online tuner start from without an init adapter. Unknown target names throw here.
 */
export function newAdapter(
  model: LoadedModel,
  o: Pick<ResolvedTrainOptions, "loraR" | "loraAlpha" | "target" | "rslora" | "seed">,
): LoraAdapter {
  const lora = createLoraConfig(model.config, {
    r: o.loraR,
    alpha: o.loraAlpha ?? undefined,
    targetModules: o.target ?? undefined,
    useRslora: o.rslora,
    baseModelNameOrPath: model.hub?.repo ?? model.dir,
  });
  loraTargets(model.config, lora);
  return initLoraAdapter(model.config, lora, new Rng(o.seed));
}
