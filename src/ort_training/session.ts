/**
 * A TrainingSession of ORT Web 1.19.2 with the rough edges filed off: tensors of any ORT build are
 * accepted (converted to 1.19's own class), errors say what failed, the eval step's outputs carry
 * the eval model's names (1.19 labels them with the training model's), and calls never overlap.
 *
 * @module
 */

import {
  explainOrtErrors,
  loadOrtTraining,
  type OrtTraining19,
  type Tensor19,
  type TrainingArtifactsBytes,
  type TrainingSession19,
} from "./runtime.ts";

/** A CPU tensor of any ORT build (1.30's included): what a feed needs. */
export interface AnyTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}

/** One runtime training session. */
export class OrtTrainingSession {
  readonly ort: OrtTraining19;
  #s: TrainingSession19;
  #queue: Promise<unknown> = Promise.resolve();
  #released = false;

  private constructor(ort: OrtTraining19, s: TrainingSession19) {
    this.ort = ort;
    this.#s = s;
  }

  /** Creates a session (wasm, one thread). `source` names the artifacts in errors. */
  static async create(artifacts: TrainingArtifactsBytes, source = "artifacts"): Promise<OrtTrainingSession> {
    const ort = await loadOrtTraining();
    const s = await explainOrtErrors(
      `Creating an ORT TrainingSession from ${source}`,
      () => ort.TrainingSession.create(artifacts, { executionProviders: ["wasm"], logSeverityLevel: 3 }),
      "Check the artifacts with checkArtifacts() (deno task cli ort-artifacts --check DIR) for what ORT expects",
    );
    return new OrtTrainingSession(ort, s);
  }

  /** User inputs of the training model. */
  get inputNames(): readonly string[] {
    return this.#s.trainingInputNames;
  }
  /** User outputs of the training model (loss first). */
  get outputNames(): readonly string[] {
    return this.#s.trainingOutputNames;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#released) return Promise.reject(new Error("This training session was released"));
    const next = this.#queue.then(fn);
    this.#queue = next.catch(() => {});
    return next;
  }

  #feeds(names: readonly string[], feeds: Readonly<Record<string, AnyTensor>>): Record<string, Tensor19> {
    const out: Record<string, Tensor19> = {};
    const missing = names.filter((n) => !(n in feeds));
    if (missing.length) throw new Error(`Missing inputs: ${missing.join(", ")} (the model takes ${names.join(", ")})`);
    for (const n of names) {
      const t = feeds[n];
      out[n] = new this.ort.Tensor(t.type, t.data, t.dims);
    }
    return out;
  }

  /** The next `trainStep` overwrites the gradient accumulators instead of adding to them. */
  lazyResetGrad(): Promise<void> {
    return this.#serial(() => explainOrtErrors("lazyResetGrad", () => this.#s.lazyResetGrad()));
  }

  /** Forward + backward + accumulate; feeds beyond the model's inputs are ignored. */
  trainStep(feeds: Readonly<Record<string, AnyTensor>>): Promise<Record<string, Tensor19>> {
    return this.#serial(() =>
      explainOrtErrors("runTrainStep", () => this.#s.runTrainStep(this.#feeds(this.#s.trainingInputNames, feeds)))
    );
  }

  /** One optimizer update from the accumulated gradients. */
  optimizerStep(): Promise<void> {
    return this.#serial(() => explainOrtErrors("runOptimizerStep", () => this.#s.runOptimizerStep()));
  }

  /** Forward + loss of the eval model, outputs under the eval model's own names. */
  evalStep(feeds: Readonly<Record<string, AnyTensor>>): Promise<Record<string, Tensor19>> {
    return this.#serial(async () => {
      const names = this.#s.evalInputNames, outs = this.#s.evalOutputNames;
      const r = await explainOrtErrors("runEvalStep", () => this.#s.runEvalStep(this.#feeds(names, feeds)));
      // 1.19 keys eval output i by the training model's output i: key them by the eval model's names.
      const train = this.#s.trainingOutputNames;
      const relabeled: Record<string, Tensor19> = {};
      outs.forEach((name, i) => {
        const t = r[train[i]] ?? r[name];
        if (!t) throw new Error(`runEvalStep returned no value for eval output ${name}`);
        relabeled[name] = t;
      });
      return relabeled;
    });
  }

  /** The trainable parameters, concatenated in training-graph input order (float32). */
  trainableParameters(): Promise<Float32Array> {
    return this.#serial(async () => {
      const t = await explainOrtErrors("getContiguousParameters", () => this.#s.getContiguousParameters(true));
      return Float32Array.from(t.data as Float32Array);
    });
  }

  /** Replaces the trainable parameters (concatenated in training-graph input order). */
  loadTrainableParameters(values: Float32Array): Promise<void> {
    return this.#serial(() =>
      explainOrtErrors(
        "loadParametersBuffer",
        () => this.#s.loadParametersBuffer(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), true),
      )
    );
  }

  /** Frees the session (after pending calls). */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await this.#queue;
    await this.#s.release();
  }
}
