/**
 * Sessions: a compiled graph bound to a backend, run one call at a time.
 *
 * ORT cannot run one session concurrently, so every session serializes its runs through a promise
 * queue. On the GPU backends (`webgpu`, `native-webgpu`), outputs named in `gpuOutputs` stay on the
 * GPU (`gpu-buffer`) and can be fed back as inputs of the next run; their owner must `dispose()`
 * them once replaced, or GPU buffers leak (see {@link TensorPool}), and reads them back with
 * {@link Engine.read}. What differs between backends is in the `BACKENDS` table, not in `if`s here.
 *
 * @module
 */

import type * as Ort from "onnxruntime-web";
import type { SerializedModel } from "../onnx/serialize.ts";
import { type BackendPreference, resolveBackend } from "./backend.ts";
import { BACKENDS, type BackendSpec } from "./backends.ts";
import { type BackendName, configureRuntime, loadOrt, type OrtModule, runtimeConfig, withThreadShim } from "./ort.ts";
import { defaultNativeThreads, type NativeOrtModule } from "./ort_native.ts";
import { createCopySession, probeNativeWebGpu } from "./probe_native.ts";

/** ORT's tensor type. */
export type OrtTensor = Ort.Tensor;

/** Options of {@link Engine.createSession}. */
export interface SessionOptions {
  /** Outputs to keep on the GPU (WebGPU only; ignored on wasm). */
  gpuOutputs?: readonly string[];
  /** ORT graph optimization level (default "all"). */
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
  /** Log every node's placement (verbose), to check nothing falls back to CPU. */
  verbose?: boolean;
}

/** A runnable graph. */
export class GraphSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  #session: Ort.InferenceSession;
  #queue: Promise<unknown> = Promise.resolve();
  #released = false;

  constructor(session: Ort.InferenceSession) {
    this.#session = session;
    this.inputNames = session.inputNames;
    this.outputNames = session.outputNames;
  }

  /**
   * Runs the graph. Calls are queued, never concurrent. Missing or unexpected feeds fail with
   * their names before ORT sees them.
   */
  run(feeds: Record<string, OrtTensor>, fetches?: readonly string[]): Promise<Record<string, OrtTensor>> {
    if (this.#released) return Promise.reject(new Error("This session was released"));
    const missing = this.inputNames.filter((n) => !(n in feeds));
    if (missing.length) {
      return Promise.reject(new Error(`Missing inputs: ${missing.join(", ")}`));
    }
    const unknown = Object.keys(feeds).filter((n) => !this.inputNames.includes(n));
    if (unknown.length) {
      return Promise.reject(
        new Error(`Unknown inputs: ${unknown.join(", ")} (the graph takes ${this.inputNames.join(", ")})`),
      );
    }
    const next = this.#queue.then(() =>
      fetches ? this.#session.run(feeds, fetches as string[]) : this.#session.run(feeds)
    );
    this.#queue = next.catch(() => {});
    return next as Promise<Record<string, OrtTensor>>;
  }

  /** Frees the session (after pending runs finish). */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await this.#queue;
    await this.#session.release();
  }
}

/** Options of {@link Engine.create}. */
export interface EngineOptions {
  /**
   * CPU threads: intra-op threads of every session on `native-cpu` (default: all cores); on `wasm`
   * ORT Web's thread count, which is per process (the same as `configureRuntime({ wasmThreads })`).
   */
  threads?: number;
}

/** A backend with its ORT build loaded: the factory for sessions and tensors. */
export class Engine {
  readonly backend: BackendName;
  readonly ort: OrtModule;
  /** What this backend can do (see `backends.ts`). */
  readonly spec: BackendSpec;
  /** CPU threads the sessions use (wasm: the process-wide count; GPU backends: for CPU fallback ops). */
  readonly threads: number;
  /**
   * Whether outputs stay on the GPU between runs: the backend's capability, and on `native-webgpu`
   * only where the probe's gpu-buffer round trip worked.
   */
  readonly deviceOutputs: boolean;
  /** onnxruntime-node's copy-to-CPU sessions, by tensor rank (queued like any session). */
  #copySessions = new Map<number, Promise<GraphSession>>();

  private constructor(backend: BackendName, ort: OrtModule, threads: number, deviceOutputs: boolean) {
    this.backend = backend;
    this.ort = ort;
    this.spec = BACKENDS[backend];
    this.threads = threads;
    this.deviceOutputs = deviceOutputs;
  }

  /** Loads ORT for a backend (already resolved, see `resolveBackend`). */
  static async create(backend: BackendName, options: EngineOptions = {}): Promise<Engine> {
    const spec = BACKENDS[backend];
    if (!spec) throw new RangeError(`Unknown backend ${JSON.stringify(backend)}`);
    const t = options.threads;
    if (t !== undefined && !(Number.isInteger(t) && t >= 1)) {
      throw new RangeError(`threads must be a positive integer, got ${t}`);
    }
    if (spec.threads === "process" && t !== undefined) configureRuntime({ wasmThreads: t });
    const ort = await loadOrt(backend);
    const threads = spec.threads === "process" ? runtimeConfig().wasmThreads : t ?? await defaultNativeThreads();
    let deviceOutputs = spec.deviceOutputs;
    if (backend === "native-webgpu") deviceOutputs &&= (await probeNativeWebGpu()).deviceOutputs;
    return new Engine(backend, ort, threads, deviceOutputs);
  }

  /** Creates a session from serialized model bytes (plus external data, if any). */
  async createSession(model: SerializedModel | Uint8Array, options: SessionOptions = {}): Promise<GraphSession> {
    const m: SerializedModel = model instanceof Uint8Array ? { model } : model;
    const opts: Ort.InferenceSession.SessionOptions = {
      executionProviders: [...this.spec.executionProviders],
      graphOptimizationLevel: options.graphOptimizationLevel ?? "all",
    };
    // ORT prints warnings (e.g. unused initializers) straight to stdout; keep them out unless asked.
    opts.logSeverityLevel = options.verbose ? 0 : runtimeConfig().logLevel;
    if (m.externalData) opts.externalData = m.externalData.map((f) => ({ path: f.path, data: f.data }));
    if (this.spec.threads === "session") Object.assign(opts, nativeCpuOptions(this.threads));
    if (this.deviceOutputs && options.gpuOutputs?.length) {
      const loc: Record<string, Ort.Tensor.DataLocation> = {};
      for (const n of options.gpuOutputs) loc[n] = "gpu-buffer";
      opts.preferredOutputLocation = loc;
    }
    const session = await withThreadShim(() => this.ort.InferenceSession.create(m.model, opts));
    return new GraphSession(session);
  }

  /**
   * Reads a tensor's data to the CPU. A gpu-buffer tensor is downloaded and its GPU buffer released:
   * ORT Web's `getData(true)` turns it into a CPU tensor; onnxruntime-node's gpu-buffer tensors
   * cannot download themselves, so a one-node copy session brings a copy back and the tensor is
   * left as it was (its owner disposes it). See {@link readTensor} for ORT Web.
   */
  async read(t: OrtTensor): Promise<Float32Array | Float64Array | BigInt64Array | Int32Array> {
    if (t.location !== "gpu-buffer" || this.spec.readback !== "copy-session") return await readTensor(t);
    if (t.type !== "float32") throw new TypeError(`Reading a ${t.type} GPU tensor back is not supported`);
    const rank = t.dims.length;
    let s = this.#copySessions.get(rank);
    if (!s) {
      s = createCopySession(this.ort as NativeOrtModule, rank).then((c) => new GraphSession(c));
      this.#copySessions.set(rank, s);
    }
    const out = await (await s).run({ x: t });
    return out.y.data as Float32Array;
  }

  /** A CPU tensor from a typed array. */
  tensor(
    data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array,
    dims: readonly number[],
    type?: "bool",
  ): OrtTensor {
    const T = this.ort.Tensor;
    if (type === "bool") return new T("bool", data as Uint8Array, dims);
    if (data instanceof Float32Array) return new T("float32", data, dims);
    if (data instanceof Float64Array) return new T("float64", data, dims);
    if (data instanceof BigInt64Array) return new T("int64", data, dims);
    if (data instanceof Int32Array) return new T("int32", data, dims);
    return new T("uint8", data, dims);
  }
}

/**
 * Session options of onnxruntime-node's CPU work: intra-op threads (MLAS splits each kernel across
 * them) and one inter-op thread (our graphs are one chain of dependent steps). Memory patterns are
 * off: ORT would plan one block per input shape on the second run and keep it beside the arena's
 * chunks (train-small: peak RSS 4.8 GB with them, 3.7 GB without, no slower), while the arena alone
 * reuses its chunks across steps and batch shapes. Turning the arena off instead costs a fresh,
 * page-faulted allocation of every large activation on every step (~17% of a train-small step).
 */
function nativeCpuOptions(threads: number): Partial<Ort.InferenceSession.SessionOptions> {
  return { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: "sequential", enableMemPattern: false };
}

/**
 * Reads a tensor's data to the CPU. A gpu-buffer tensor is downloaded and its GPU buffer released
 * (`getData(true)`): the tensor becomes a CPU tensor, re-uploaded if it is fed again. Plain
 * `getData()` would also turn it into a CPU tensor but keep the GPU buffer alive, which a
 * {@link TensorPool} (it only disposes gpu-buffer tensors) could then never free.
 */
export async function readTensor(t: OrtTensor): Promise<Float32Array | Float64Array | BigInt64Array | Int32Array> {
  if (t.location === "cpu" || t.location === "cpu-pinned") {
    return t.data as Float32Array;
  }
  return (await t.getData(true)) as Float32Array;
}

/**
 * Tracks GPU-resident tensors so each is disposed exactly once when replaced. A training loop
 * hands every step's outputs to `replace()`; the tensors they replace are freed.
 */
export class TensorPool {
  #live = new Map<string, OrtTensor>();

  /** The current tensor under a name. */
  get(name: string): OrtTensor {
    const t = this.#live.get(name);
    if (!t) throw new Error(`No tensor named ${name} in the pool`);
    return t;
  }

  has(name: string): boolean {
    return this.#live.has(name);
  }

  /** Puts a tensor under a name, disposing the one it replaces (unless it is the same object). */
  set(name: string, t: OrtTensor): void {
    const old = this.#live.get(name);
    this.#live.set(name, t);
    if (old && old !== t && old.location === "gpu-buffer") old.dispose();
  }

  /** Names held. */
  names(): string[] {
    return [...this.#live.keys()];
  }

  /** Number of tensors that live on the GPU. */
  gpuCount(): number {
    let n = 0;
    for (const t of this.#live.values()) if (t.location === "gpu-buffer") n++;
    return n;
  }

  /** Disposes everything. */
  dispose(): void {
    for (const t of this.#live.values()) if (t.location === "gpu-buffer") t.dispose();
    this.#live.clear();
  }
}

/**
 * The engine to use: the caller's, or a new one on the backend `backend` resolves to (default
 * "auto"), with the reason it was taken.
 */
export async function engineFor(
  options: { engine?: Engine; backend?: BackendPreference; threads?: number },
): Promise<{ engine: Engine; reason: string }> {
  if (options.engine) return { engine: options.engine, reason: "engine given" };
  const choice = await resolveBackend(options.backend ?? "auto");
  return { engine: await Engine.create(choice.backend, { threads: options.threads }), reason: choice.reason };
}
