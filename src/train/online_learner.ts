/**
 * The compute half of online tuning: one fused training step (the trainer's graph, step compiler
 * and batch builder) and a reference scorer, kept alive between updates. An update scores the new
 * examples under the base model (the reference log-probs; replayed examples bring theirs), runs one
 * optimizer update on them plus the replayed ones, and hands back the adapter and optimizer state.
 *
 * It speaks plain data only (examples, typed arrays, maps), so the same object runs in the caller's
 * thread or behind a Worker (`online_worker.ts`); the bookkeeping (the feedback log, the replay
 * buffer, checkpoints, the live generator) is `online.ts`'s.
 *
 * @module
 */

import type { EncodedGroup, EncodedPair } from "../data/encode.ts";
import type { LoraAdapter } from "../lora/adapter.ts";
import { urlFiles } from "../io/files.ts";
import { type LoadedModel, loadModel } from "../models/load.ts";
import { Scorer, type ScoreSequence } from "../models/score.ts";
import { lrSchedule } from "../optim/schedule.ts";
import { type BackendPreference, resolveBackend } from "../runtime/backend.ts";
import { type BackendName, runtimeConfig } from "../runtime/ort.ts";
import { Engine } from "../runtime/session.ts";
import { OPTIMIZERS } from "./options.ts";
import { buildPreferenceGraph, type LossKind } from "./preference_graph.ts";
import { compileStep } from "./step.ts";
import { type OptimizerState, type StepResult, StepRunner } from "./step_runner.ts";
import { type Examples, makeBatch } from "./trainer.ts";

/** What the learner needs to start (plain data, so that it can be posted to a Worker). */
export interface LearnerInit {
  /** A model directory or Hub id (loaded by the learner), or a loaded model (in the caller's thread only). */
  model: string | LoadedModel;
  revision: string;
  backend: BackendPreference;
  /** Pairs, or reward groups of `k` completions. */
  kind: "pairs" | "groups";
  k: number | null;
  loss: LossKind;
  beta: number;
  betaR: number;
  epsilon: number;
  logitTemperature: number;
  optimizer: keyof typeof OPTIMIZERS;
  lr: number;
  weightDecay: number;
  warmupSteps: number;
  maxGradNorm: number;
  /** The adapter to train (its config and starting tensors). */
  adapter: LoraAdapter;
  /** Optimizer state to continue from (a checkpoint's), or null for a fresh optimizer. */
  optimizerState: OptimizerState | null;
}

/** One update's input: the new examples, and replayed ones with their reference log-probs. */
export interface LearnerBatch {
  fresh: EncodedPair[] | EncodedGroup[];
  replay: { items: EncodedPair[] | EncodedGroup[]; refs: Float32Array[] };
}

/** One update's output. */
export interface LearnerResult {
  /** Reference log-probs of the new examples (per example: [chosen, rejected], or the K completions). */
  freshRefs: Float32Array[];
  result: StepResult;
  /** The adapter's tensors after the update, by PEFT key. */
  params: Map<string, Float32Array>;
  optimizer: OptimizerState;
  /** Wall-clock seconds: reference scoring, the training step, reading back parameters and state. */
  seconds: { reference: number; step: number; readback: number };
}

/** The learner's interface, the same in the caller's thread and behind a Worker. */
export interface Learner {
  readonly backend: BackendName;
  /** ORT's wasm threads where the update runs. */
  readonly threads: number;
  update(batch: LearnerBatch): Promise<LearnerResult>;
  release(): Promise<void>;
}

/**
 * A model given by name, as the tuner and its Worker both load it: a directory (local files), a
 * Hugging Face Hub id, or the `http(s)://` URL of a model directory (in a browser, where a Worker
 * has no other way to reach the app's model files).
 */
export function loadNamedModel(name: string, revision: string): Promise<LoadedModel> {
  return /^https?:\/\//.test(name) ? loadModel(".", urlFiles(name)) : loadModel(name, undefined, { hub: { revision } });
}

/** The learner in the caller's thread. */
export class OnlineLearner implements Learner {
  readonly backend: BackendName;
  readonly threads: number = runtimeConfig().wasmThreads;
  #engine: Engine;
  #model: LoadedModel;
  #runner: StepRunner;
  #scorer: Scorer;
  #init: LearnerInit;

  private constructor(init: LearnerInit, engine: Engine, model: LoadedModel, runner: StepRunner, scorer: Scorer) {
    this.#init = init;
    this.#engine = engine;
    this.backend = engine.backend;
    this.#model = model;
    this.#runner = runner;
    this.#scorer = scorer;
  }

  /** Loads the model (when given by name), compiles the step and creates both sessions. */
  static async create(init: LearnerInit, engine?: Engine): Promise<OnlineLearner> {
    const model = typeof init.model === "string" ? await loadNamedModel(init.model, init.revision) : init.model;
    const eng = engine ?? await Engine.create((await resolveBackend(init.backend)).backend);
    const optimizer = OPTIMIZERS[init.optimizer]({ weightDecay: init.weightDecay });
    // An online run has no end to decay towards: a constant rate after the warmup.
    const schedule = lrSchedule({ kind: "constant", lr: init.lr, warmupSteps: init.warmupSteps });
    const pg = buildPreferenceGraph(model, init.adapter.config, {
      loss: init.loss,
      betaPi: init.beta,
      betaR: init.betaR,
      eps: init.epsilon,
      temperature: init.logitTemperature,
      k: init.kind === "groups" ? init.k ?? undefined : undefined,
    });
    const compiled = compileStep({
      graph: pg.graph,
      loss: pg.loss,
      params: pg.params,
      metrics: pg.metrics,
      optimizer,
      maxGradNorm: init.maxGradNorm,
      accumulate: false,
      serialize: { externalDataThreshold: 1 << 20 },
    });
    const params = new Map<string, Float32Array>();
    for (const [k, t] of init.adapter.tensors) params.set(k, t.data as Float32Array);
    const runner = await StepRunner.create(eng, compiled, params, { lr: schedule });
    if (init.optimizerState) runner.importState(init.optimizerState);
    const scorer = await Scorer.create(model, { engine: eng });
    return new OnlineLearner(init, eng, model, runner, scorer);
  }

  /** Scores the new examples, then runs one update on them and the replayed ones (in that order). */
  async update(batch: LearnerBatch): Promise<LearnerResult> {
    const t0 = performance.now();
    const freshRefs = await this.#references(batch.fresh);
    const t1 = performance.now();
    const ex = this.#examples([...batch.fresh, ...batch.replay.items] as EncodedPair[] | EncodedGroup[]);
    const refs = [...freshRefs, ...batch.replay.refs];
    const idx = ex.items.map((_, i) => i);
    const b = makeBatch(this.#engine, ex, refs, idx, this.#model.config.maxPositions);
    const result = await this.#runner.run(b.feeds);
    const t2 = performance.now();
    const params = await this.#runner.getParams();
    const optimizer = await this.#runner.exportState();
    const t3 = performance.now();
    return {
      freshRefs,
      result,
      params,
      optimizer,
      seconds: { reference: (t1 - t0) / 1000, step: (t2 - t1) / 1000, readback: (t3 - t2) / 1000 },
    };
  }

  /** Frees both sessions. */
  async release(): Promise<void> {
    await this.#scorer.release();
    await this.#runner.release();
  }

  #examples(items: EncodedPair[] | EncodedGroup[]): Examples {
    return this.#init.kind === "pairs"
      ? { kind: "pairs", items: items as EncodedPair[] }
      : { kind: "groups", items: items as EncodedGroup[], k: this.#init.k! };
  }

  /** Base-model log-probs of each example's completions, as the trainer computes its references. */
  async #references(items: EncodedPair[] | EncodedGroup[]): Promise<Float32Array[]> {
    if (items.length === 0) return [];
    const completions = this.#init.kind === "pairs"
      ? (items as EncodedPair[]).map((p) => [p.chosenIds, p.rejectedIds])
      : (items as EncodedGroup[]).map((g) => g.completionIds);
    const seqs: ScoreSequence[] = items.flatMap((e, i) =>
      completions[i].map((c) => ({ promptIds: e.promptIds, completionIds: c }))
    );
    const lp = await this.#scorer.score(seqs, { temperature: this.#init.logitTemperature, batchSize: 16 });
    let at = 0;
    return completions.map((cs) => Float32Array.from(lp.slice(at, at += cs.length)));
  }
}

/** A message from the learner's Worker (`online_worker.ts`). */
type FromWorker =
  | { type: "listening" }
  | { type: "ready"; backend: BackendName; threads: number }
  | { type: "result"; id: number; result: LearnerResult }
  | { type: "released" }
  | { type: "error"; id: number | null; error: { name?: string; message: string; stack?: string } };

function revive(e: { name?: string; message: string; stack?: string }): Error {
  const err = new Error(e.message);
  if (e.name) err.name = e.name;
  if (e.stack) err.stack = e.stack;
  return err;
}

/**
 * The Web Worker constructor, taken when this module is loaded: once ORT's wasm runtime starts in
 * Deno or Bun, Emscripten (which takes them for Node) sets `globalThis.Worker` to node's
 * `worker_threads.Worker` for its own threads, which has no `onmessage` and never delivers our
 * messages.
 */
const WebWorker: typeof Worker | undefined = typeof Worker === "function" && "addEventListener" in Worker.prototype
  ? Worker
  : undefined;

/** The default Worker script: `online_worker.ts` beside this module (`.js` in the compiled package). */
export function defaultWorkerUrl(): URL {
  return new URL(import.meta.url.endsWith(".ts") ? "./online_worker.ts" : "./online_worker.js", import.meta.url);
}

/**
 * The learner behind a Worker: the same interface, each update one message round trip. Needs the
 * Web Worker API (Deno, Bun, browsers; not Node) and a model given by name (the Worker loads it).
 */
export class WorkerLearner implements Learner {
  readonly backend: BackendName;
  readonly threads: number;
  #worker: Worker;
  #pending = new Map<number, { resolve: (r: LearnerResult) => void; reject: (e: Error) => void }>();
  #nextId = 0;
  #failed: Error | null = null;
  #released: (() => void) | null = null;

  private constructor(worker: Worker, ready: { backend: BackendName; threads: number }) {
    this.#worker = worker;
    this.backend = ready.backend;
    this.threads = ready.threads;
    worker.onmessage = (e: MessageEvent<FromWorker>) => this.#receive(e.data);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault?.();
      this.#fail(new Error(`The online learner's Worker failed: ${e.message}`));
    };
  }

  /** Starts the Worker and its learner; rejects with the learner's error if it cannot start. */
  static async create(init: LearnerInit, url: string | URL = defaultWorkerUrl()): Promise<WorkerLearner> {
    if (WebWorker === undefined) {
      throw new Error(
        "worker: no Web Worker API here (Node, or this module was first loaded after ONNX Runtime replaced globalThis.Worker): leave worker off, or import exo-tune before running a model",
      );
    }
    if (typeof init.model !== "string") {
      throw new TypeError("worker: the model must be given by directory or Hub id (the Worker loads its own copy)");
    }
    const worker = new WebWorker(url, { type: "module" });
    const ready = await new Promise<{ backend: BackendName; threads: number }>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<FromWorker>) => {
        const m = e.data;
        // The Worker's ORT takes this thread's wasm thread count (configureRuntime), not its own default.
        if (m.type === "listening") {
          worker.postMessage({ type: "init", init, wasmThreads: runtimeConfig().wasmThreads });
        } else if (m.type === "ready") resolve(m);
        else if (m.type === "error") reject(revive(m.error));
      };
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault?.();
        reject(new Error(`The online learner's Worker failed to start: ${e.message}`));
      };
    }).catch((e) => {
      worker.terminate();
      throw e;
    });
    return new WorkerLearner(worker, ready);
  }

  update(batch: LearnerBatch): Promise<LearnerResult> {
    if (this.#failed) return Promise.reject(this.#failed);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ type: "update", id, batch });
    });
  }

  async release(): Promise<void> {
    if (!this.#failed) {
      await new Promise<void>((resolve) => {
        this.#released = resolve;
        this.#worker.postMessage({ type: "release" });
      });
    }
    this.#worker.terminate();
  }

  #receive(m: FromWorker): void {
    if (m.type === "result") {
      this.#pending.get(m.id)?.resolve(m.result);
      this.#pending.delete(m.id);
    } else if (m.type === "error") {
      const err = revive(m.error);
      if (m.id !== null && this.#pending.has(m.id)) {
        this.#pending.get(m.id)!.reject(err);
        this.#pending.delete(m.id);
      } else this.#fail(err);
    } else if (m.type === "released") this.#released?.();
  }

  #fail(e: Error): void {
    this.#failed = e;
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
    this.#released?.();
  }
}
