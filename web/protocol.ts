/**
 * Messages between the page (app.ts) and the training Worker (worker.ts). The Worker owns ONNX
 * Runtime, the model, the data and the OPFS store; the page only draws.
 *
 * @module
 */

/** Where a model comes from: a URL (absolute, or relative to the page) or a picked folder. */
export type ModelSource =
  | { kind: "url"; url: string }
  | { kind: "folder"; name: string; files: Record<string, File> };

/** What a stored run remembers of its model (a folder's files are not kept: it is picked again). */
export type StoredModelSource = { kind: "url"; url: string } | { kind: "folder"; name: string };

/** The options the page exposes (the rest are the Trainer's defaults). */
export interface RunOptions {
  backend: "auto" | "webgpu" | "wasm";
  maxSteps: number;
  batchSize: number;
  lr: number;
  beta: number;
  loraR: number;
  seed: number;
  checkpointEvery: number;
}

/** `run.json` in a run's OPFS folder: what is needed to resume it after a reload. */
export interface RunMeta {
  id: string;
  created: string;
  model: StoredModelSource;
  /** The data file's name as the user gave it (the text is stored beside run.json as data.jsonl). */
  dataName: string;
  options: RunOptions;
}

/** One stored run as the page lists it. */
export interface RunInfo {
  meta: RunMeta;
  /** Step of the newest checkpoint, or null. */
  checkpointStep: number | null;
  /** True when the final adapter was written (the run finished). */
  finished: boolean;
  /** metrics.jsonl rows written so far. */
  metrics: MetricsRow[];
}

/** One row of metrics.jsonl (TRL's names). */
export type MetricsRow = Record<string, number>;

export type ToWorker =
  | { type: "init"; threads: number }
  | { type: "backend"; preference: RunOptions["backend"] }
  | { type: "load-model"; source: ModelSource }
  | { type: "set-data"; name: string; text: string }
  | { type: "train"; options: RunOptions }
  | { type: "resume"; id: string }
  | { type: "stop" }
  | { type: "samples"; id: string }
  | { type: "adapter"; id: string }
  | { type: "runs" }
  | { type: "clear-runs" };

export type FromWorker =
  | { type: "ready"; crossOriginIsolated: boolean; threads: number; hardwareConcurrency: number }
  | { type: "backend"; backend: string; reason: string }
  | {
    type: "model";
    kind: ModelSource["kind"];
    label: string;
    arch: string;
    parameters: number;
    vocabSize: number;
    seconds: number;
  }
  | { type: "data"; name: string; pairs: number; warnings: string[] }
  | { type: "run-started"; meta: RunMeta; resumedFromStep: number | null; metrics: MetricsRow[] }
  | { type: "log"; line: string }
  | { type: "metrics"; row: MetricsRow }
  | { type: "progress"; step: number; totalSteps: number; text: string }
  | { type: "run-ended"; id: string; steps: number; interrupted: boolean; backend: string; tokensPerSecond: number }
  | { type: "samples"; id: string; prompts: string[]; before: string[]; after: string[] }
  | { type: "adapter"; id: string; config: string; safetensors: Uint8Array }
  | { type: "runs"; runs: RunInfo[] }
  /** `where` says which control the error belongs to, so the page shows it there. */
  | { type: "error"; where: "model" | "data" | "train" | "samples" | "runtime"; message: string };
