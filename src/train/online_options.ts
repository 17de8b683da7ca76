/**
 * The online tuner's options, as one table (src/options/table.ts): the trainer's entries for the
 * model, the loss, LoRA and the optimizer (the same names, types, defaults and checks), and the
 * tuner's own (where its log and checkpoints go, how often it updates, its replay buffer).
 *
 * @module
 */

import type { FileSink, FileSource } from "../io/files.ts";
import type { Generator } from "../generate/generator.ts";
import type { LoraAdapter } from "../lora/adapter.ts";
import { backendOption } from "../options/common.ts";
import {
  flag,
  integer,
  type OptionsInput,
  type OptionSpec,
  pickOptions,
  type ResolvedOptions,
  resolveOptions,
  text,
} from "../options/table.ts";
import type { BackendPreference } from "../runtime/backend.ts";
import type { Engine } from "../runtime/session.ts";
import { TRAIN_OPTIONS, type TrainOptionTable } from "./options.ts";

/** The trainer's entries an online tuner takes as they are. */
const SHARED = [
  "model",
  "revision",
  "loss",
  "beta",
  "betaR",
  "epsilon",
  "logitTemperature",
  "loraR",
  "loraAlpha",
  "target",
  "rslora",
  "initAdapter",
  "optimizer",
  "lr",
  "weightDecay",
  "warmupSteps",
  "maxGradNorm",
  "seed",
] as const;

/** The type of {@link ONLINE_OPTIONS} (spelled out for JSR, as `TrainOptionTable` is). */
export type OnlineOptionTable = Pick<TrainOptionTable, typeof SHARED[number]> & {
  readonly backend: OptionSpec<BackendPreference, "default">;
  readonly dir: OptionSpec<string, "unset">;
  readonly updateEvery: OptionSpec<number, "default">;
  readonly replay: OptionSpec<number, "default">;
  readonly bufferSize: OptionSpec<number, "default">;
  readonly checkpointEvery: OptionSpec<number, "default">;
  readonly worker: OptionSpec<boolean, "default">;
};

/**
 * Every online option. The learning rate is constant after `warmupSteps` (an online run has no end
 * to decay towards); the batch of an update is `updateEvery` new examples plus `replay` examples
 * from the buffer.
 */
export const ONLINE_OPTIONS: OnlineOptionTable = {
  ...pickOptions(TRAIN_OPTIONS, SHARED),
  /** Where updates run (`auto`: WebGPU on a hardware adapter, else wasm). */
  backend: backendOption("where updates run: auto picks WebGPU on a hardware adapter, else wasm"),
  /**
   * Directory (in `files`) for the feedback log, metrics and checkpoints. Unset, nothing is written
   * and a restart starts over: nothing is durable.
   */
  dir: text({
    default: null,
    metavar: "DIR",
    fingerprint: false,
    help: "feedback log, metrics.jsonl and checkpoints/ (unset: nothing is durable)",
  }),
  /** New examples per update: the batch size of the equivalent batch run. */
  updateEvery: integer({ default: 8, min: 1, help: "new examples that trigger an update (and form its batch)" }),
  /** Examples drawn (seeded, without repeats) from the replay buffer into each update besides the new ones. */
  replay: integer({ default: 0, min: 0, help: "examples replayed from the buffer in each update" }),
  /** Capacity of the replay buffer: the most recent examples trained on. */
  bufferSize: integer({ default: 256, min: 0, help: "replay buffer: the most recent examples trained on" }),
  /** Write a checkpoint every N updates (updates after the last one are redone from the log on restart). */
  checkpointEvery: integer({ default: 1, min: 1, fingerprint: false, help: "updates between checkpoints" }),
  /**
   * Run updates in a Web Worker (Deno, Bun, browsers): in this thread a generator's ORT calls wait
   * behind the update's (a whole training step), in a Worker generation goes on during an update
   * (it has its own ORT). The Worker loads its own copy
   * of the model (`model` must be a name, not a loaded model: a directory or Hub id, or in a browser
   * the `http(s)://` URL of a model directory), and its ORT takes this thread's `wasmThreads`
   * (`configureRuntime`). Needs the Web Worker API (Deno, Bun, browsers; not Node).
   */
  worker: flag({ help: "run updates in a Worker, so that they never block this thread", fingerprint: false }),
};

/** What an online tuner takes: the table's options and its hooks. */
export interface OnlineOptions extends OptionsInput<OnlineOptionTable> {
  /** Where `dir` and `initAdapter` live (default: local files). A model given by name is read from local files or the Hub. */
  files?: FileSource & FileSink;
  /** A live generator: each update's adapter is swapped into it (between two generations). */
  generator?: Generator;
  /** Start from this adapter (e.g. a batch run's `summary.trained.adapter`) instead of a new one. */
  adapter?: LoraAdapter;
  /** The engine for in-thread updates (default: a new one on `backend`; pass the generator's to share it). */
  engine?: Engine;
  /** The Worker script (default: `online_worker.ts` beside the library's module). */
  workerUrl?: string | URL;
  /** Called after each update (after its checkpoint and adapter swap). */
  onUpdate?: (update: OnlineUpdate) => void;
  /** Called when an update fails; the tuner then stops updating (acknowledged examples stay in the log). */
  onError?: (error: Error) => void;
  /** Informational lines (backend, recovery). */
  log?: (line: string) => void;
}

/** The resolved options: defaults filled in, unset ones null. */
export type ResolvedOnlineOptions = ResolvedOptions<OnlineOptionTable>;

/** Fills in defaults and checks every option; throws an `OptionError` naming the option. */
export function resolveOnlineOptions(o: OnlineOptions): ResolvedOnlineOptions {
  return resolveOptions(ONLINE_OPTIONS, o);
}

/** What one update did. */
export interface OnlineUpdate {
  /** Updates done (1 after the first). */
  step: number;
  lr: number;
  loss: number;
  gradNorm: number;
  /** TRL's metrics of the batch. */
  metrics: Record<string, number>;
  /** The new records trained on: log indices `[from, to)`. */
  examples: { from: number; to: number };
  /** Records replayed from the buffer. */
  replayed: number;
  /** Wall-clock seconds: reference scoring, the step, reading back the adapter, checkpoint, swap, all. */
  seconds: { reference: number; step: number; readback: number; checkpoint: number; swap: number; total: number };
}
