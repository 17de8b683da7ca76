/**
 * Online tuning: preference feedback (pairs or reward groups) taken one record at a time, an
 * update every `updateEvery` new records (or on demand), the new adapter swapped into a live
 * {@link Generator}, and checkpoints from which a restart continues.
 *
 * **Acknowledged.** `await tuner.add(record)` resolves once the record is validated, tokenized and
 * appended to the feedback log `<dir>/feedback.jsonl` through the sink (the sink's `appendText`
 * has resolved). From then on the record is never lost: it is either in an update that a
 * checkpoint holds, or after the checkpoint's position in the log, and a tuner restarted on the
 * same `dir` trains on it. How durable "appended" is depends on the sink: with `localFiles()` the
 * line is in the operating system's file (it survives the process being killed, SIGKILL
 * included, but not a power cut: no fsync); with `memoryFiles()` it lives as long as the process;
 * without `dir` nothing is durable and `add()` resolves once the record is queued.
 *
 * **Updates.** Update k takes the oldest `updateEvery` records not trained on yet (all of them on
 * demand, `update()`, at most `updateEvery`), plus `replay` records drawn without repeats from the
 * replay buffer (the `bufferSize` most recent records trained on) with the seeded RNG, and runs one
 * fused training step on them (the trainer's graph and batch builder). With `replay` 0 an online
 * run fed a file in order makes the updates of `Trainer` with `order: "sequential"`, `batchSize:
 * updateEvery`, `schedule: "constant"` and one epoch. Updates run one at a time, never inside
 * `add()`; records that arrive during an update wait for the next.
 *
 * **Generation during an update.** The adapter is swapped with `Generator.setAdapter`, which waits
 * for the generation in progress: each generation runs under one adapter. In the app's thread the
 * update's ORT calls and the generator's share one queue (ORT Web runs one call at a time per
 * process), so a decode step waits for at most one of the update's calls, the training step being
 * the longest (measured on wasm with 1 and 2 threads: tokens waited a whole step, `deno task bench`
 * workload `online-update`). With `worker: true` the update runs in a Worker with its own ORT:
 * generation does not wait for it (it competes only for CPU cores).
 *
 * @module
 */

import type { EncodedGroup, EncodedPair } from "../data/encode.ts";
import { type FileSink, type FileSource, joinPath, localFiles } from "../io/files.ts";
import { type LoraAdapter, validateAdapter } from "../lora/adapter.ts";
import type { LoadedModel } from "../models/load.ts";
import { fingerprintValues, OptionError } from "../options/table.ts";
import { readInitAdapter } from "../ort_training/mod.ts";
import { Rng } from "../util/rng.ts";
import { latestCheckpoint, loadCheckpoint, type OnlineCheckpointState, saveCheckpoint } from "./checkpoint.ts";
import { type Learner, type LearnerInit, loadNamedModel, OnlineLearner, WorkerLearner } from "./online_learner.ts";
import { FeedbackEncoder, type FeedbackExample, FeedbackLog, recordLine } from "./online_log.ts";
import {
  ONLINE_OPTIONS,
  type OnlineOptions,
  type ResolvedOnlineOptions,
  resolveOnlineOptions,
} from "./online_options.ts";
import { isRewardLoss } from "./preference_graph.ts";
import type { OnlineUpdate } from "./online_options.ts";

export type { OnlineUpdate } from "./online_options.ts";
import type { OptimizerState } from "./step_runner.ts";
import { hash, newAdapter, optionChanges } from "./trainer.ts";

export {
  ONLINE_OPTIONS,
  type OnlineOptions,
  type ResolvedOnlineOptions,
  resolveOnlineOptions,
} from "./online_options.ts";

/** Where a tuner stands. */
export interface OnlineStats {
  /** Records acknowledged (= the log's length). */
  acknowledged: number;
  /** Records trained on. */
  trained: number;
  /** Acknowledged records not trained on yet. */
  pending: number;
  /** Records in the replay buffer. */
  buffered: number;
  /** Updates done. */
  step: number;
}

interface Buffered {
  example: FeedbackExample;
  ref: Float32Array;
}

const METRICS_FILE = "metrics.jsonl";

/**
 * An online tuner. `OnlineTuner.create()` checks the options, recovers `dir` (the log and the
 * newest checkpoint) and starts the learner; `add()` takes feedback.
 *
 * @example
 * ```ts ignore
 * const tuner = await OnlineTuner.create({ model: "models/review-gpt2", dir: "runs/online", generator: gen });
 * await tuner.add({ prompt: "The movie was", chosen: " great.", rejected: " dull." }); // acknowledged
 * ```
 */
export class OnlineTuner {
  readonly options: ResolvedOnlineOptions;
  readonly model: LoadedModel;
  #files: FileSource & FileSink;
  #hooks: OnlineOptions;
  #log: FeedbackLog;
  #encoder: FeedbackEncoder;
  #fingerprint: { hash: string; options: Record<string, unknown> };
  #learnerInit: LearnerInit;
  #learner: Promise<Learner> | null = null;
  #pending: FeedbackExample[] = [];
  #buffer: Buffered[] = [];
  #rng: Rng;
  #acknowledged: number;
  #trained: number;
  #step: number;
  #metricsLines: number;
  #adapter: LoraAdapter;
  #optimizer: OptimizerState | null;
  #demands: { resolve: (u: OnlineUpdate | null) => void; reject: (e: Error) => void }[] = [];
  #loop: Promise<void> | null = null;
  #failed: Error | null = null;
  #closed = false;
  /** Indices handed out by `add()` (records being appended included). */
  #acknowledgedOrQueued = 0;

  private constructor(init: {
    options: ResolvedOnlineOptions;
    hooks: OnlineOptions;
    files: FileSource & FileSink;
    model: LoadedModel;
    log: FeedbackLog;
    encoder: FeedbackEncoder;
    fingerprint: { hash: string; options: Record<string, unknown> };
    adapter: LoraAdapter;
  }) {
    this.options = init.options;
    this.#hooks = init.hooks;
    this.#files = init.files;
    this.model = init.model;
    this.#log = init.log;
    this.#encoder = init.encoder;
    this.#fingerprint = init.fingerprint;
    this.#adapter = init.adapter;
    this.#optimizer = null;
    this.#rng = new Rng(init.options.seed);
    this.#acknowledged = 0;
    this.#trained = 0;
    this.#step = 0;
    this.#metricsLines = 0;
    const o = init.options;
    this.#learnerInit = {
      model: init.options.worker ? (o.model as string) : init.model,
      revision: o.revision,
      backend: o.backend,
      kind: init.encoder.kind,
      k: null,
      loss: o.loss,
      beta: o.beta,
      betaR: o.betaR,
      epsilon: o.epsilon,
      logitTemperature: o.logitTemperature,
      optimizer: o.optimizer,
      lr: o.lr,
      weightDecay: o.weightDecay,
      warmupSteps: o.warmupSteps,
      maxGradNorm: o.maxGradNorm,
      adapter: init.adapter,
      optimizerState: null,
    };
  }

  /**
   * Checks the options, loads the model (or takes the generator's), reads `dir`'s feedback log and
   * newest checkpoint, and starts the learner. Records left untrained by an earlier run are trained
   * on as soon as an update's worth is there.
   */
  static async create(options: OnlineOptions): Promise<OnlineTuner> {
    const o = resolveOnlineOptions(options);
    if (o.replay > o.bufferSize) {
      throw new OptionError(
        "replay",
        (n) => `${n("replay")} (${o.replay}) cannot exceed ${n("bufferSize")} (${o.bufferSize})`,
      );
    }
    if (o.worker && typeof o.model !== "string") {
      throw new OptionError(
        "worker",
        (n) => `${n("worker")} needs ${n("model")} as a directory, Hub id or URL: the Worker loads its own copy`,
      );
    }
    const files = options.files ?? localFiles();
    const gen = options.generator;
    const model = typeof o.model !== "string"
      ? o.model
      : gen && (gen.model.dir === o.model || gen.model.hub?.repo === o.model)
      ? gen.model
      : await loadNamedModel(o.model, o.revision); // as the Worker loads it
    const adapter = options.adapter ??
      (o.initAdapter ? await readInitAdapter(o.initAdapter, files, model.config) : newAdapter(model, o));
    validateAdapter(adapter, model.config, options.adapter ? "adapter" : o.initAdapter ?? "new adapter");
    const kind = isRewardLoss(o.loss) ? "groups" : "pairs";
    const encoder = new FeedbackEncoder(kind, model.tokenizer, model.config);
    const fpOptions = Object.fromEntries(fingerprintValues(ONLINE_OPTIONS, o));
    const modelKey = typeof o.model === "string" && /^https?:\/\//.test(o.model) ? o.model : model.dir; // a URL loads as "."
    const key = JSON.stringify({ options: fpOptions, model: modelKey, arch: model.config.arch, lora: adapter.config });
    const tuner = new OnlineTuner({
      options: o,
      hooks: options,
      files,
      model,
      log: new FeedbackLog(files, o.dir),
      encoder,
      fingerprint: { hash: hash(key), options: fpOptions },
      adapter,
    });
    await tuner.#recover();
    if (kind === "pairs" || encoder.k !== null) tuner.#startLearner();
    if (gen && tuner.#step > 0) await gen.setAdapter(tuner.#adapter);
    tuner.#kick();
    return tuner;
  }

  /** The adapter after the last update (the starting adapter before any). */
  get adapter(): LoraAdapter {
    return this.#adapter;
  }

  /** The optimizer's state after the last update, or null before any. */
  get optimizerState(): OptimizerState | null {
    return this.#optimizer;
  }

  /** Counts of acknowledged, trained, pending and buffered records, and updates. */
  get stats(): OnlineStats {
    return {
      acknowledged: this.#acknowledged,
      trained: this.#trained,
      pending: this.#pending.length,
      buffered: this.#buffer.length,
      step: this.#step,
    };
  }

  /** The error that stopped updates, or null. */
  get error(): Error | null {
    return this.#failed;
  }

  /**
   * Takes one feedback record (a pair `{"prompt","chosen","rejected"}` or a reward group, text,
   * pre-tokenized or conversational, as a JSONL line holds it). Resolves with its index in the log
   * once it is acknowledged (see the module doc); a bad record is refused with a `DataError` naming
   * `feedback[index]` and the field, and is not logged.
   */
  async add(record: unknown): Promise<{ index: number }> {
    if (this.#closed) throw new Error("This tuner is closed");
    if (this.#failed && !(this.#failed instanceof UpdateError)) throw this.#failed;
    const index = this.#acknowledgedOrQueued;
    const example = this.#encoder.encode(record, index);
    const line = recordLine(record, index);
    this.#encoder.accept(example);
    this.#acknowledgedOrQueued++;
    try {
      await this.#log.append(line, () => {
        this.#pending.push(example);
        this.#acknowledged++;
      });
    } catch (e) {
      // The log may now end in part of this line: stop taking records; a restart recovers the log.
      this.#failed = new Error(`The feedback log could not be written (${(e as Error).message}); restart the tuner`);
      throw this.#failed;
    }
    if (this.#learner === null) this.#startLearner();
    this.#kick();
    return { index };
  }

  /**
   * Runs one update now on the pending records (the oldest `updateEvery` at most), after the update
   * in progress if any. Resolves with it, or with null when no record is pending.
   */
  update(): Promise<OnlineUpdate | null> {
    if (this.#failed) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => {
      this.#demands.push({ resolve, reject });
      this.#kick();
    });
  }

  /** Trains on every acknowledged record (the last update may take fewer than `updateEvery`). */
  async flush(): Promise<void> {
    await this.#log.settled();
    while (this.#pending.length > 0) await this.update();
    await this.idle();
  }

  /** Resolves when no update is running or due. */
  async idle(): Promise<void> {
    while (this.#loop) await this.#loop;
    if (this.#failed) throw this.#failed;
  }

  /**
   * Stops: waits for appends and for the update in progress (pending records stay in the log for
   * the next start), then frees the learner.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#log.settled();
    while (this.#loop) await this.#loop.catch(() => {});
    for (const d of this.#demands.splice(0)) d.resolve(null);
    if (this.#learner) await (await this.#learner.catch(() => null))?.release();
  }

  // ------------------------------------------------------------------------------ internals

  #startLearner(): void {
    if (this.#learner) return;
    const init: LearnerInit = { ...this.#learnerInit, k: this.#encoder.k };
    const o = this.options;
    this.#learner = o.worker
      ? WorkerLearner.create(init, this.#hooks.workerUrl)
      : OnlineLearner.create(init, this.#hooks.engine);
    const where = (l: Learner) =>
      `online updates on ${l.backend}${
        l.backend === "wasm" ? ` (${l.threads} thread${l.threads === 1 ? "" : "s"})` : ""
      }${o.worker ? " in a Worker" : ""}`;
    this.#learner.then((l) => this.#hooks.log?.(where(l)))
      .catch((e) => this.#fail(e));
  }

  /** Starts the update loop unless it runs; it runs while an update is due. */
  #kick(): void {
    if (this.#loop || this.#closed || this.#failed) return;
    if (this.#demands.length === 0 && this.#pending.length < this.options.updateEvery) return;
    this.#loop = this.#runLoop().finally(() => {
      this.#loop = null;
      this.#kick(); // records that arrived as the last update ended
    });
  }

  async #runLoop(): Promise<void> {
    const n = this.options.updateEvery;
    while (!this.#closed && !this.#failed) {
      const demand = this.#demands.shift();
      let take: number;
      if (demand) take = Math.min(n, this.#pending.length);
      else if (this.#pending.length >= n) take = n;
      else return;
      if (take === 0) {
        demand!.resolve(null);
        continue;
      }
      try {
        const u = await this.#runUpdate(take);
        demand?.resolve(u);
        this.#hooks.onUpdate?.(u);
      } catch (e) {
        const err = e as Error;
        demand?.reject(err);
        this.#fail(err);
        return;
      }
    }
  }

  #fail(e: Error): void {
    this.#failed = e;
    for (const d of this.#demands.splice(0)) d.reject(e);
    this.#hooks.onError?.(e);
  }

  /** One update: `take` pending records plus replayed ones; then metrics, checkpoint and swap. */
  async #runUpdate(take: number): Promise<OnlineUpdate> {
    const t0 = performance.now();
    const learner = await this.#learner!;
    const fresh = this.#pending.slice(0, take);
    const picks = this.#rng.shuffle(this.#buffer.map((_, i) => i)).slice(0, this.options.replay);
    const replay = picks.map((i) => this.#buffer[i]);
    // One kind per tuner (the loss decides): pairs, or groups of the same K.
    type Items = EncodedPair[] | EncodedGroup[];
    const r = await learner.update({
      fresh: fresh as Items,
      replay: { items: replay.map((b) => b.example) as Items, refs: replay.map((b) => b.ref) },
    });
    const from = this.#trained;
    if (!Number.isFinite(r.result.loss) || !Number.isFinite(r.result.gradNorm)) {
      throw new UpdateError(
        `Non-finite loss at update ${r.result.step} (loss ${r.result.loss}, grad norm ${r.result.gradNorm}) on feedback records ${from} to ${
          from + take - 1
        }: updates stopped, the last checkpoint is kept; lower lr or beta, or enable maxGradNorm`,
      );
    }
    // Commit: the records leave the queue for the buffer, the adapter and optimizer state advance.
    this.#pending.splice(0, take);
    this.#trained += take;
    this.#step = r.result.step;
    fresh.forEach((example, i) => this.#buffer.push({ example, ref: r.freshRefs[i] }));
    if (this.#buffer.length > this.options.bufferSize) {
      this.#buffer.splice(0, this.#buffer.length - this.options.bufferSize);
    }
    const tensors = new Map([...this.#adapter.tensors].map(([k, t]) => [k, { ...t, data: r.params.get(k)! }]));
    this.#adapter = { config: this.#adapter.config, tensors };
    this.#optimizer = r.optimizer;
    const u: OnlineUpdate = {
      step: r.result.step,
      lr: r.result.lr,
      loss: r.result.loss,
      gradNorm: r.result.gradNorm,
      metrics: r.result.metrics,
      examples: { from, to: from + take },
      replayed: replay.length,
      seconds: { ...r.seconds, checkpoint: 0, swap: 0, total: 0 },
    };
    const t1 = performance.now();
    await this.#persist(u);
    const t2 = performance.now();
    await this.#hooks.generator?.setAdapter(this.#adapter);
    const t3 = performance.now();
    u.seconds.checkpoint = (t2 - t1) / 1000;
    u.seconds.swap = (t3 - t2) / 1000;
    u.seconds.total = (t3 - t0) / 1000;
    return u;
  }

  /** Appends the update's metrics line and, every `checkpointEvery` updates, writes a checkpoint. */
  async #persist(u: OnlineUpdate): Promise<void> {
    const dir = this.options.dir;
    if (dir === null) return;
    const row = {
      step: u.step,
      lr: u.lr,
      loss: u.loss,
      grad_norm: u.gradNorm,
      ...u.metrics,
      examples_from: u.examples.from,
      examples_to: u.examples.to,
      replayed: u.replayed,
      step_seconds: u.seconds.step,
    };
    await this.#files.appendText(joinPath(dir, METRICS_FILE), JSON.stringify(row) + "\n");
    this.#metricsLines++;
    if (u.step % this.options.checkpointEvery !== 0) return;
    const online: OnlineCheckpointState = {
      consumed: this.#trained,
      k: this.#encoder.k,
      bufferRefs: this.#buffer.map((b) => Array.from(b.ref)),
    };
    await saveCheckpoint(dir, this.#files, {
      state: {
        step: this.#step,
        cursor: { epoch: 0, batchIndex: this.#step },
        rng: this.#rng.state(),
        fingerprint: this.#fingerprint.hash,
        options: this.#fingerprint.options,
        metricsLines: this.#metricsLines,
        elapsedSeconds: 0,
        online,
      },
      adapter: this.#adapter,
      optimizer: this.#optimizer!.slots,
    });
  }

  /**
   * Reads `dir`: the feedback log (dropping a torn last line), the newest checkpoint (checked
   * against this tuner's options), the metrics up to it; the records after its position are pending.
   */
  async #recover(): Promise<void> {
    const dir = this.options.dir;
    if (dir === null) return;
    await this.#files.mkdir(dir);
    const { records, torn } = await this.#log.recover();
    if (torn) {
      this.#hooks.log?.(`${this.#log.path}: dropped a last line cut short (a record that was never acknowledged)`);
    }
    const ckDir = await latestCheckpoint(dir, this.#files);
    const ck = ckDir ? await loadCheckpoint(ckDir, this.#files) : null;
    if (ck) {
      if (ck.state.fingerprint !== this.#fingerprint.hash || !ck.state.online) {
        throw new OptionError(
          "dir",
          (n) =>
            `Cannot continue from ${ckDir}: it was written with other options or another model${
              optionChanges(ck.state.options, this.#fingerprint.options, n)
            }. Use the same options, or a new ${n("dir")}`,
        );
      }
      this.#encoder.k = ck.state.online.k;
    }
    const examples = records.map((r, i) => {
      const ex = this.#encoder.encode(r, i);
      this.#encoder.accept(ex);
      return ex;
    });
    this.#acknowledged = this.#acknowledgedOrQueued = examples.length;
    const metricsPath = joinPath(dir, METRICS_FILE);
    if (!ck) {
      this.#pending = examples;
      await this.#files.writeText(metricsPath, "");
      return;
    }
    const on = ck.state.online!;
    if (on.consumed > examples.length) {
      throw new Error(
        `${ckDir} trained on ${on.consumed} records but ${this.#log.path} holds ${examples.length}: the log was cut; restore it or use a new dir`,
      );
    }
    this.#trained = on.consumed;
    this.#step = ck.state.step;
    this.#rng = Rng.fromState(ck.state.rng);
    this.#adapter = ck.adapter;
    this.#optimizer = { step: ck.state.step, optimizer: this.options.optimizer, slots: ck.optimizer };
    this.#learnerInit = { ...this.#learnerInit, adapter: ck.adapter, optimizerState: this.#optimizer };
    const first = on.consumed - on.bufferRefs.length;
    this.#buffer = on.bufferRefs.map((ref, i) => ({ example: examples[first + i], ref: Float32Array.from(ref) }));
    this.#pending = examples.slice(on.consumed);
    this.#metricsLines = ck.state.metricsLines;
    const text = (await this.#files.exists(metricsPath)) ? await this.#files.readText(metricsPath) : "";
    const kept = text.split("\n").filter((l) => l.length > 0).slice(0, this.#metricsLines);
    await this.#files.writeText(metricsPath, kept.map((l) => l + "\n").join(""));
    this.#hooks.log?.(
      `continuing from ${ckDir}: ${on.consumed} records trained in ${ck.state.step} updates, ${this.#pending.length} pending`,
    );
  }
}

/** An update that failed on its data (a non-finite loss): records can still be acknowledged. */
class UpdateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UpdateError";
  }
}
