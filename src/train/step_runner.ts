/**
 * Runs a compiled training step again and again, keeping parameters, optimizer state and gradient
 * accumulators in a {@link TensorPool}.
 *
 * On the GPU backends (`webgpu`, and `native-webgpu` where its gpu-buffer round trip works) every
 * `::next` output is requested as a `gpu-buffer` tensor and fed back as the next run's input, so the
 * weights never leave the GPU between steps; only the scalars (loss, gradient norm, metrics) are
 * read back. The tensors a run replaces are disposed by the pool. On the CPU backends (`wasm`,
 * `native-cpu`) the same code moves CPU tensors around.
 *
 * @module
 */

import { type Engine, type GraphSession, type OrtTensor, TensorPool } from "../runtime/session.ts";
import type { Schedule } from "../optim/schedule.ts";
import {
  accName,
  ACCUM_SCALE,
  type CompiledStep,
  GRAD_NORM,
  LOSS,
  nextName,
  type ParamInfo,
  scalarName,
  stateName,
} from "./step.ts";

/** Options of {@link StepRunner.create}. */
export interface StepRunnerOptions {
  /** The learning rate: a constant, or a schedule over updates counted from 0. */
  lr: number | Schedule;
}

/** What one optimizer update reports. */
export interface StepResult {
  /** Updates done so far (1 after the first). */
  step: number;
  /** The learning rate this update used. */
  lr: number;
  /** The loss (mean over micro-batches when accumulating). */
  loss: number;
  /** The global gradient norm before clipping. */
  gradNorm: number;
  /** The requested metrics (means over micro-batches). */
  metrics: Record<string, number>;
}

/** Optimizer state for checkpoints: the update count and every slot of every parameter. */
export interface OptimizerState {
  step: number;
  optimizer: string;
  /** `<param>::<slot>` -> values. */
  slots: Map<string, Float32Array>;
}

/** Feeds of one (micro-)batch: the data inputs of the step graph. */
export type Batch = Readonly<Record<string, OrtTensor>>;

/** A compiled step without its serialized models. */
export type CompiledStepInfo = Pick<CompiledStep, "layout" | "optimizer" | "maxGradNorm"> & {
  mode: CompiledStep["mode"];
};

/** Drives a compiled step: owns its sessions and the state tensors. */
export class StepRunner {
  /** The live parameter, state and accumulator tensors, by input name. */
  readonly pool: TensorPool = new TensorPool();
  /** What the runner needs of the compiled step (the serialized models are not kept: they hold a copy of every frozen weight). */
  readonly compiled: CompiledStepInfo;
  #engine: Engine;
  #main: GraphSession;
  #apply: GraphSession | null;
  #lr: Schedule;
  #step = 0;

  private constructor(
    engine: Engine,
    compiled: CompiledStepInfo,
    main: GraphSession,
    apply: GraphSession | null,
    lr: Schedule,
  ) {
    this.#engine = engine;
    this.compiled = compiled;
    this.#main = main;
    this.#apply = apply;
    this.#lr = lr;
  }

  /**
   * Creates the sessions and loads the initial parameters (zero optimizer state and accumulators).
   * Every trainable parameter must be given.
   */
  static async create(
    engine: Engine,
    compiled: CompiledStep,
    params: ReadonlyMap<string, Float32Array>,
    options: StepRunnerOptions,
  ): Promise<StepRunner> {
    const { layout } = compiled;
    for (const p of layout.params) {
      if (p.dtype !== "float32") throw new TypeError(`StepRunner runs float32 parameters; ${p.name} is ${p.dtype}`);
    }
    const stateOuts = layout.params.flatMap((p) => [
      nextName(p.name),
      ...layout.slots.map((s) => nextName(stateName(p.name, s))),
    ]);
    const accOuts = layout.params.map((p) => nextName(accName(p.name)));
    let main: GraphSession, apply: GraphSession | null = null;
    if (compiled.mode === "fused") {
      main = await engine.createSession(compiled.fused, { gpuOutputs: stateOuts });
    } else {
      main = await engine.createSession(compiled.accumulate, { gpuOutputs: accOuts });
      apply = await engine.createSession(compiled.apply, { gpuOutputs: [...stateOuts, ...accOuts] });
    }
    const lr = options.lr;
    const info: CompiledStepInfo = {
      mode: compiled.mode,
      layout: compiled.layout,
      optimizer: compiled.optimizer,
      maxGradNorm: compiled.maxGradNorm,
    };
    const runner = new StepRunner(engine, info, main, apply, typeof lr === "number" ? () => lr : lr);
    runner.setParams(params);
    for (const p of layout.params) {
      for (const s of layout.slots) runner.pool.set(stateName(p.name, s), runner.#zeros(p));
      if (compiled.mode === "accumulate") runner.pool.set(accName(p.name), runner.#zeros(p));
    }
    return runner;
  }

  /** Updates done so far. */
  get step(): number {
    return this.#step;
  }

  /**
   * One optimizer update. A fused step takes one batch; an accumulating step takes the list of
   * micro-batches whose gradients are averaged before the update.
   */
  async run(batches: Batch | readonly Batch[]): Promise<StepResult> {
    const list: readonly Batch[] = Array.isArray(batches) ? batches : [batches as Batch];
    if (list.length === 0) throw new RangeError("run(): no batches");
    const { layout } = this.compiled;
    const lr = this.#lr(this.#step);
    const scalars = this.compiled.optimizer.scalars(this.#step + 1, lr);
    const sums: Record<string, number> = { [LOSS]: 0 };
    for (const m of layout.metrics) sums[m] = 0;
    let gradNorm: number;

    if (this.compiled.mode === "fused") {
      if (list.length !== 1) {
        throw new RangeError(`This step was compiled without accumulation: pass one batch, not ${list.length}`);
      }
      const feeds: Record<string, OrtTensor> = { ...list[0], ...this.#stateFeeds(), ...this.#scalarFeeds(scalars) };
      const out = await this.#main.run(feeds);
      this.#takeState(out, false);
      await this.#addScalars(out, sums);
      gradNorm = await this.#scalar(out[GRAD_NORM]);
    } else {
      for (const batch of list) {
        const feeds: Record<string, OrtTensor> = { ...batch };
        for (const p of layout.params) {
          feeds[p.name] = this.pool.get(p.name);
          feeds[accName(p.name)] = this.pool.get(accName(p.name));
        }
        const out = await this.#main.run(feeds);
        for (const p of layout.params) this.pool.set(accName(p.name), out[nextName(accName(p.name))]);
        await this.#addScalars(out, sums);
      }
      const feeds: Record<string, OrtTensor> = { ...this.#stateFeeds(), ...this.#scalarFeeds(scalars) };
      for (const p of layout.params) feeds[accName(p.name)] = this.pool.get(accName(p.name));
      feeds[ACCUM_SCALE] = this.#engine.tensor(new Float32Array([1 / list.length]), []);
      const out = await this.#apply!.run(feeds);
      this.#takeState(out, true);
      gradNorm = await this.#scalar(out[GRAD_NORM]);
    }
    this.#step++;
    const metrics: Record<string, number> = {};
    for (const m of layout.metrics) metrics[m] = sums[m] / list.length;
    return { step: this.#step, lr, loss: sums[LOSS] / list.length, gradNorm, metrics };
  }

  /** Downloads the current parameters (copies). On WebGPU they are re-uploaded by the next step. */
  async getParams(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const p of this.compiled.layout.params) out.set(p.name, await this.#download(p.name));
    return out;
  }

  /** Replaces parameters (all or some); optimizer state is kept. */
  setParams(params: ReadonlyMap<string, Float32Array>): void {
    const known = new Map(this.compiled.layout.params.map((p) => [p.name, p]));
    for (const name of params.keys()) {
      if (!known.has(name)) {
        throw new RangeError(`Unknown parameter ${name}: the step trains ${[...known.keys()].join(", ")}`);
      }
    }
    for (const p of known.values()) {
      const data = params.get(p.name);
      if (!data) {
        if (!this.pool.has(p.name)) throw new RangeError(`Missing initial value of parameter ${p.name}`);
        continue;
      }
      const n = p.shape.reduce((a, b) => a * b, 1);
      if (data.length !== n) {
        throw new RangeError(`Parameter ${p.name} needs ${n} values (shape [${p.shape}]), got ${data.length}`);
      }
      this.pool.set(p.name, this.#engine.tensor(Float32Array.from(data), p.shape));
    }
  }

  /** The optimizer state (update count and slots), downloaded, for checkpoints. */
  async exportState(): Promise<OptimizerState> {
    const slots = new Map<string, Float32Array>();
    for (const p of this.compiled.layout.params) {
      for (const s of this.compiled.layout.slots) {
        slots.set(stateName(p.name, s), await this.#download(stateName(p.name, s)));
      }
    }
    return { step: this.#step, optimizer: this.compiled.optimizer.name, slots };
  }

  /** Restores state saved by {@link exportState} (same optimizer and parameters). */
  importState(state: OptimizerState): void {
    if (state.optimizer !== this.compiled.optimizer.name) {
      throw new RangeError(`Optimizer state is for ${state.optimizer}, this step uses ${this.compiled.optimizer.name}`);
    }
    if (!(Number.isInteger(state.step) && state.step >= 0)) throw new RangeError(`Invalid step ${state.step}`);
    const updates: [string, OrtTensor][] = [];
    for (const p of this.compiled.layout.params) {
      for (const s of this.compiled.layout.slots) {
        const key = stateName(p.name, s);
        const data = state.slots.get(key);
        const n = p.shape.reduce((a, b) => a * b, 1);
        if (!data || data.length !== n) throw new RangeError(`Optimizer state ${key} is missing or has the wrong size`);
        updates.push([key, this.#engine.tensor(Float32Array.from(data), p.shape)]);
      }
    }
    for (const [k, t] of updates) this.pool.set(k, t);
    this.#step = state.step;
  }

  /** Frees the sessions and every pooled tensor. */
  async release(): Promise<void> {
    // Tensors first: disposing a GPU output after its session is gone crashes inside ORT.
    this.pool.dispose();
    await this.#main.release();
    await this.#apply?.release();
  }

  #zeros(p: ParamInfo): OrtTensor {
    return this.#engine.tensor(new Float32Array(p.shape.reduce((a, b) => a * b, 1)), p.shape);
  }

  #stateFeeds(): Record<string, OrtTensor> {
    const feeds: Record<string, OrtTensor> = {};
    for (const p of this.compiled.layout.params) {
      feeds[p.name] = this.pool.get(p.name);
      for (const s of this.compiled.layout.slots) feeds[stateName(p.name, s)] = this.pool.get(stateName(p.name, s));
    }
    return feeds;
  }

  #scalarFeeds(values: Record<string, number>): Record<string, OrtTensor> {
    const feeds: Record<string, OrtTensor> = {};
    for (const s of this.compiled.layout.scalars) {
      feeds[scalarName(s)] = this.#engine.tensor(new Float32Array([values[s]]), []);
    }
    return feeds;
  }

  /** Moves a run's `::next` outputs into the pool (which disposes what they replace). */
  #takeState(out: Record<string, OrtTensor>, withAcc: boolean): void {
    for (const p of this.compiled.layout.params) {
      this.pool.set(p.name, out[nextName(p.name)]);
      for (const s of this.compiled.layout.slots) {
        this.pool.set(stateName(p.name, s), out[nextName(stateName(p.name, s))]);
      }
      if (withAcc) this.pool.set(accName(p.name), out[nextName(accName(p.name))]);
    }
  }

  async #addScalars(out: Record<string, OrtTensor>, sums: Record<string, number>): Promise<void> {
    for (const k of Object.keys(sums)) sums[k] += await this.#scalar(out[k]);
  }

  async #scalar(t: OrtTensor): Promise<number> {
    return Number((await this.#engine.read(t))[0]);
  }

  async #download(name: string): Promise<Float32Array> {
    // On ORT Web this frees the GPU copy (the tensor becomes a CPU tensor that the next run
    // uploads); on onnxruntime-node the tensor stays on the GPU and a copy comes back.
    return Float32Array.from(await this.#engine.read(this.pool.get(name)) as Float32Array);
  }
}
