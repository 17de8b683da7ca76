/**
 * The trainer's options, as one table: each entry gives an option's type, default, validation, help
 * and CLI flag, and whether a resumed run must keep its value. {@link TrainOptions},
 * {@link resolveTrainOptions}, the resume fingerprint and `deno task cli train` (flags and `--help`)
 * all come from {@link TRAIN_OPTIONS}; adding an option is adding one entry.
 *
 * @module
 */

import type { LoadedModel } from "../models/load.ts";
import { adamw } from "../optim/adamw.ts";
import type { Optimizer } from "../optim/optimizer.ts";
import { SCHEDULE_KINDS, type ScheduleKind } from "../optim/schedule.ts";
import { sgd } from "../optim/sgd.ts";
import { revisionOption, threadsOption, trainBackendOption } from "../options/common.ts";
import {
  choice,
  flag,
  integer,
  list,
  number,
  type OptionsInput,
  type OptionSpec,
  type ResolvedOptions,
  resolveOptions,
  text,
  value,
} from "../options/table.ts";
import type { FileSink, FileSource } from "../io/files.ts";
import type { TrainBackendPreference } from "../runtime/backend.ts";
import { LOSS_KINDS, type LossKind } from "./preference_graph.ts";
import type { ProgressSink } from "./progress.ts";

/** How the trainer forms batches (see the `order` option). */
export type BatchOrder = "bucketed" | "sequential";
/** Every {@link BatchOrder}. */
export const BATCH_ORDERS: readonly BatchOrder[] = ["bucketed", "sequential"];

/** The optimizers `optimizer` can name, each built from the resolved options. */
export const OPTIMIZERS: { readonly [name in "adamw" | "sgd"]: (o: { weightDecay: number }) => Optimizer } = {
  adamw: (o) => adamw({ weightDecay: o.weightDecay }),
  sgd: (o) => sgd({ weightDecay: o.weightDecay }),
};

/** One preference record as a JSONL line holds it: `{"prompt","chosen","rejected"}`, a reward group, ... */
export type DataRecord = Readonly<Record<string, unknown>>;

/**
 * Training data: a JSONL file's path, a list of records, or an iterable or async iterable of
 * records (a stream, read to its end before training starts). Records are validated as the lines of
 * a file are, and errors name the record's index (`data[3]: field "chosen": ...`).
 */
export type TrainData = string | readonly DataRecord[] | Iterable<DataRecord> | AsyncIterable<DataRecord>;

const isTrainData = (v: unknown) =>
  typeof v === "string" || Array.isArray(v) ||
    (typeof v === "object" && v !== null && (Symbol.asyncIterator in v || Symbol.iterator in v))
    ? null
    : "must be a JSONL file path, a list of records, or an (async) iterable of records";

const isModel = (v: unknown) =>
  typeof v === "string" || (typeof v === "object" && v !== null && "config" in v)
    ? null
    : "must be a model directory or a loaded model";

/**
 * The type of {@link TRAIN_OPTIONS}: each option's value type and whether it is required, defaulted
 * or unset (null) when not given. Spelled out because JSR rejects inferred types in the public API
 * ("slow types"); the table below must match it, so an entry that changes its type without this
 * type is a compile error (a type alias, not an interface, so that it is an `OptionTable`), and {@link TrainOptions} / {@link ResolvedTrainOptions} follow it.
 */
export type TrainOptionTable = {
  readonly model: OptionSpec<string | LoadedModel, "required">;
  readonly revision: OptionSpec<string, "default">;
  readonly data: OptionSpec<TrainData, "required">;
  readonly out: OptionSpec<string, "unset">;
  readonly loss: OptionSpec<LossKind, "default">;
  readonly beta: OptionSpec<number, "default">;
  readonly betaR: OptionSpec<number, "default">;
  readonly epsilon: OptionSpec<number, "default">;
  readonly logitTemperature: OptionSpec<number, "default">;
  readonly loraR: OptionSpec<number, "default">;
  readonly loraAlpha: OptionSpec<number, "unset">;
  readonly target: OptionSpec<string[], "unset">;
  readonly rslora: OptionSpec<boolean, "default">;
  readonly initAdapter: OptionSpec<string, "unset">;
  readonly optimizer: OptionSpec<keyof typeof OPTIMIZERS, "default">;
  readonly lr: OptionSpec<number, "default">;
  readonly weightDecay: OptionSpec<number, "default">;
  readonly schedule: OptionSpec<ScheduleKind, "default">;
  readonly warmupSteps: OptionSpec<number, "default">;
  readonly batchSize: OptionSpec<number, "default">;
  readonly order: OptionSpec<BatchOrder, "default">;
  readonly gradAccum: OptionSpec<number, "default">;
  readonly maxGradNorm: OptionSpec<number, "default">;
  readonly epochs: OptionSpec<number, "default">;
  readonly maxSteps: OptionSpec<number, "unset">;
  readonly seed: OptionSpec<number, "default">;
  readonly backend: OptionSpec<TrainBackendPreference, "default">;
  readonly threads: OptionSpec<number, "unset">;
  readonly checkpointEvery: OptionSpec<number, "default">;
  readonly keepCheckpoints: OptionSpec<number, "default">;
  readonly resume: OptionSpec<boolean, "default">;
};

const DATA_HELP = 'JSONL: pairs {"prompt","chosen","rejected"} or reward groups {"prompt","completions","rewards"}';
const OUT_HELP = "output directory: adapter, metrics.jsonl, checkpoints/";

/**
 * `data` and `out` as the command line has them: a file and a directory, both required (the
 * library's table also takes records for `data` and leaves `out` optional). Commands spread these
 * over {@link TRAIN_OPTIONS}.
 */
export const TRAIN_FILE_OPTIONS: {
  readonly data: OptionSpec<string, "required">;
  readonly out: OptionSpec<string, "required">;
} = {
  data: text({ required: true, metavar: "FILE", help: DATA_HELP }),
  out: text({ required: true, metavar: "DIR", help: OUT_HELP }),
};

/**
 * Every training option. Keys are the library's names (`betaR`); flags are their kebab-case
 * (`--beta-r`). `fingerprint: false` marks what may change between a run and its resume.
 */
export const TRAIN_OPTIONS: TrainOptionTable = {
  /** Model directory (Hugging Face format), Hugging Face Hub id (`org/name`), or an already loaded model. */
  model: value<string | LoadedModel>({
    required: true,
    metavar: "DIR",
    help: "model directory, or Hugging Face Hub id (org/name)",
    check: isModel,
  }),
  /**
   * Branch, tag or commit when `model` is a Hub id. Not fingerprinted: the model's identity (its
   * snapshot directory, named by commit) is, so `main` and the commit it points at resume alike.
   */
  revision: revisionOption(),
  /**
   * Preference data: pairs for the `*-pref` losses, reward groups for `*-rw`. A JSONL file's path,
   * or (library only) a list or (async) iterable of records in the same formats.
   */
  data: value<TrainData>({
    required: true,
    metavar: "FILE",
    help: DATA_HELP,
    check: isTrainData,
  }),
  /**
   * Output directory: the adapter, `metrics.jsonl`, `checkpoints/`. Unset (library only), nothing is
   * written: the summary's `trained` holds the adapter and optimizer state in memory, and there are
   * no checkpoints (so no `checkpointEvery` or `resume`).
   */
  out: text({ default: null, metavar: "DIR", help: OUT_HELP, fingerprint: false }),
  /** The preference loss. */
  loss: choice(LOSS_KINDS, { default: "exo-pref", help: "preference loss" }),
  /** β_π (TRL's `beta`). */
  beta: number({ default: 0.1, check: "positive", help: "beta_pi, TRL's beta" }),
  /** β_r, the reward temperature of the `*-rw` losses. */
  betaR: number({ default: 0.1, check: "positive", help: "reward temperature beta_r of the -rw losses" }),
  /** ε, EXO-pref label smoothing. */
  epsilon: number({ default: 1e-3, check: "unitInterval", help: "EXO-pref label smoothing" }),
  /** Logit temperature τ before the token log-softmax (policy and reference). */
  logitTemperature: number({ default: 1, check: "positive", help: "logits / tau before log-softmax" }),
  /** LoRA rank. */
  loraR: integer({ default: 8, min: 1, help: "LoRA rank" }),
  /** LoRA alpha; unset means 2 × r. */
  loraAlpha: number({ default: null, check: "positive", defaultText: "2 * r", help: "LoRA alpha" }),
  /** PEFT target module names; unset means all attention and MLP projections of the architecture. */
  target: list({
    default: null,
    defaultText: "all attention and MLP projections",
    help: "PEFT target modules",
  }),
  /** alpha / sqrt(r) scaling (rsLoRA). */
  rslora: flag({ help: "alpha / sqrt(r) scaling" }),
  /**
   * Start from an existing PEFT adapter directory (its LoRA config wins over loraR/alpha/target),
   * or an ORT training artifacts directory (src/ort_training/init_adapter.ts): with any backend its
   * adapter is the start, and with `backend: "ort-training"` its own training model is trained.
   */
  initAdapter: text({
    default: null,
    metavar: "DIR",
    help:
      "start from an existing PEFT adapter or ORT training artifacts directory (with --backend ort-training, the directory's own training model is trained)",
  }),
  /** The optimizer. */
  optimizer: choice(Object.keys(OPTIMIZERS) as (keyof typeof OPTIMIZERS)[], { default: "adamw", help: "optimizer" }),
  /** Peak learning rate. */
  lr: number({ default: 5e-4, check: "positive", help: "peak learning rate" }),
  /** Decoupled weight decay. */
  weightDecay: number({ default: 0, check: "nonNegative", help: "decoupled weight decay" }),
  /** Learning-rate schedule (transformers' semantics). */
  schedule: choice(SCHEDULE_KINDS, { default: "linear", help: "learning-rate schedule" }),
  /** Linear warmup from 0 over this many updates. */
  warmupSteps: integer({ default: 0, min: 0, help: "linear warmup updates" }),
  /** Examples per micro-batch. */
  batchSize: integer({ default: 8, min: 1, help: "examples per micro-batch" }),
  /**
   * How examples form batches: `bucketed` shuffles each epoch and batches examples of similar
   * length together (less padding); `sequential` takes them in the data's order, consecutive
   * `batchSize` examples per batch, every epoch alike (the schedule of an online tuner fed the same
   * data, `src/train/online.ts`).
   */
  order: choice(BATCH_ORDERS, {
    default: "bucketed",
    help: "batches: bucketed (shuffled, similar lengths together) or sequential (the data's order)",
  }),
  /**
   * Micro-batches per optimizer update. An epoch's last update takes the micro-batches left over
   * (fewer than this), so every epoch sees every example once.
   */
  gradAccum: integer({ default: 1, min: 1, help: "micro-batches per update" }),
  /** Global gradient-norm clip; 0 disables. */
  maxGradNorm: number({ default: 1, check: "nonNegative", note: "(0 disables)", help: "global clip, 0 disables" }),
  /** Passes over the data. */
  epochs: integer({ default: 1, min: 1, help: "passes over the data" }),
  /** Stop after this many optimizer updates (unset: `epochs` worth). */
  maxSteps: integer({ default: null, min: 1, defaultText: "all epochs", help: "stop after N updates" }),
  /** Seed of the adapter init and the batch order. */
  seed: integer({ default: 0, min: 0, help: "seed of the adapter init and the batch order" }),
  /**
   * Where the step graphs run: `auto`, `webgpu`, `wasm`, `native-cpu`, `native-webgpu`
   * (onnxruntime-node, an optional peer dependency), or `ort-training` (ORT Web 1.19.2's
   * TrainingSession on wasm, src/ort_training/; never chosen by `auto`; `initAdapter` may then be
   * an ORT training artifacts directory, whose own training model is trained).
   */
  backend: trainBackendOption(
    "where the step graphs run: auto picks WebGPU on a hardware adapter, else native-cpu where onnxruntime-node loads, else wasm; ort-training (never picked by auto) is ORT Web 1.19.2's TrainingSession on wasm",
  ),
  /** CPU threads: native-cpu's intra-op threads (default all cores), wasm's (default the cores, at most 4; per process). */
  threads: threadsOption(),
  /** Write a checkpoint every N updates (0: only at the end and on interruption). */
  checkpointEvery: integer({
    default: 0,
    min: 0,
    fingerprint: false,
    defaultText: "0: at the end and on Ctrl-C",
    help: "also checkpoint every N updates",
  }),
  /**
   * Checkpoints kept in `out/checkpoints` (older ones are removed); 0 keeps every one, e.g. to
   * evaluate the adapter along training (the experiment does).
   */
  keepCheckpoints: integer({
    default: 2,
    min: 0,
    fingerprint: false,
    help: "checkpoints kept in --out/checkpoints, 0 = all",
  }),
  /** Continue from the newest checkpoint in `out/checkpoints`. */
  resume: flag({ help: "continue from the newest checkpoint in --out", fingerprint: false }),
};

/** Everything a training run takes: the table's options (only `model`, `data`, `out` required) and its hooks. */
export interface TrainOptions extends OptionsInput<TrainOptionTable> {
  /** File access (default: local files). */
  files?: FileSource & FileSink;
  /** Where progress goes (default: nowhere). */
  progress?: ProgressSink;
  /** Informational lines (backend choice, warnings, truncation). */
  log?: (line: string) => void;
  /** Stops training at the next update boundary, writing a checkpoint first. */
  signal?: AbortSignal;
}

/** The resolved options: defaults filled in; options without a default are null when not given. */
export type ResolvedTrainOptions = ResolvedOptions<TrainOptionTable>;

/** Fills in the defaults and checks every option; throws an {@link OptionError} naming the option. */
export function resolveTrainOptions(o: TrainOptions): ResolvedTrainOptions {
  return resolveOptions(TRAIN_OPTIONS, o);
}
