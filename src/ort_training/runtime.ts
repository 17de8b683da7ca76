/**
 * Loads ONNX Runtime Web's training build: `onnxruntime-web` 1.19.2, the last release that shipped
 * it (removed upstream in 1.20), installed beside ORT 1.30 under the npm alias
 * `onnxruntime-web-training`.
 *
 * The package's `./training` export has `"node": null`, so Deno, Node and Bun (which all match the
 * `node` condition) cannot import it by name. We resolve the package's main entry (which they can)
 * and load `dist/ort.training.wasm.min.mjs` beside it by URL; that bundle finds its `.wasm` through
 * `import.meta.url`. The build is wasm-only (WebGPU was compiled out) and runs one thread here.
 *
 * Nothing is loaded at import time. The module type is spelled out below (onnxruntime-common 1.19's
 * `TrainingSession`) rather than imported, because the alias's type declarations would shadow ORT
 * 1.30's module names.
 *
 * @module
 */

/** The 1.19 tensor (its own class: tensors of ORT 1.30 are converted, never passed). */
export interface Tensor19 {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}

/** onnxruntime-common 1.19's `TrainingSession`, as far as we use it. */
export interface TrainingSession19 {
  readonly trainingInputNames: readonly string[];
  readonly trainingOutputNames: readonly string[];
  readonly evalInputNames: readonly string[];
  readonly evalOutputNames: readonly string[];
  runTrainStep(feeds: Record<string, Tensor19>): Promise<Record<string, Tensor19>>;
  runOptimizerStep(): Promise<void>;
  lazyResetGrad(): Promise<void>;
  runEvalStep(feeds: Record<string, Tensor19>): Promise<Record<string, Tensor19>>;
  getParametersSize(trainableOnly: boolean): Promise<number>;
  getContiguousParameters(trainableOnly: boolean): Promise<Tensor19>;
  loadParametersBuffer(bytes: Uint8Array, trainableOnly: boolean): Promise<void>;
  release(): Promise<void>;
}

/** What `TrainingSession.create` takes: each artifact as bytes. */
export interface TrainingArtifactsBytes {
  checkpointState: Uint8Array;
  trainModel: Uint8Array;
  evalModel?: Uint8Array;
  optimizerModel?: Uint8Array;
}

/** The parts of the 1.19 module we use. */
export interface OrtTraining19 {
  env: { wasm: { numThreads: number }; logLevel: string };
  Tensor: new (type: string, data: unknown, dims: readonly number[]) => Tensor19;
  TrainingSession: {
    create(
      artifacts: TrainingArtifactsBytes,
      options?: { executionProviders?: string[]; logSeverityLevel?: number },
    ): Promise<TrainingSession19>;
  };
}

/** The version of the aliased package this engine is written against. */
export const ORT_TRAINING_VERSION = "1.19.2";
/** The npm alias it is installed under. */
export const ORT_TRAINING_PACKAGE = "onnxruntime-web-training";

let loaded: Promise<OrtTraining19> | undefined;

/**
 * Loads (once) ORT Web 1.19.2's training bundle. Throws with the install command when the alias is
 * missing.
 */
export function loadOrtTraining(): Promise<OrtTraining19> {
  loaded ??= (async () => {
    let main: string;
    try {
      main = import.meta.resolve(ORT_TRAINING_PACKAGE);
    } catch (e) {
      throw new Error(
        `The ort-training engine needs ${ORT_TRAINING_PACKAGE} (onnxruntime-web ${ORT_TRAINING_VERSION} under an npm alias), which is not installed (${
          (e as Error).message
        }). Run: npm install "${ORT_TRAINING_PACKAGE}@npm:onnxruntime-web@${ORT_TRAINING_VERSION}"`,
      );
    }
    const url = new URL("ort.training.wasm.min.mjs", main).href;
    const mod = (await import(url)) as unknown as OrtTraining19;
    if (!mod.TrainingSession) {
      throw new Error(`${url} has no TrainingSession: ${ORT_TRAINING_PACKAGE} must be onnxruntime-web 1.17-1.19`);
    }
    mod.env.wasm.numThreads = 1;
    mod.env.logLevel = "error";
    return mod;
  })();
  loaded.catch(() => (loaded = undefined));
  return loaded;
}

/**
 * ORT's training build reports a failed C++ check as a bare number (an exception pointer). Wraps
 * any error of `fn` with what was being done and, for those numbers, what usually causes them.
 */
export async function explainOrtErrors<T>(what: string, fn: () => Promise<T>, hint = ""): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const bare = typeof e === "number" || (e instanceof Error && /^\d+$/.test(e.message.trim()));
    const detail = typeof e === "number" ? String(e) : (e as Error).message ?? String(e);
    const msg = bare
      ? `${what} failed inside ONNX Runtime ${ORT_TRAINING_VERSION} (it reports C++ errors only as the number ${detail})${
        hint ? `. ${hint}` : ""
      }`
      : `${what} failed: ${detail}${hint ? `. ${hint}` : ""}`;
    throw new Error(msg, { cause: e });
  }
}
