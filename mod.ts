/**
 * exo-tune: on-device preference tuning (EXO, DPO) of LoRA adapters for small causal language
 * models, on WebGPU with a WebAssembly fallback, through ONNX Runtime Web.
 *
 * @module
 */

export { type BackendChoice, type BackendPreference, probeWebGpu, resolveBackend } from "./src/runtime/backend.ts";
export { type BackendName, configureRuntime, ORT_VERSION, type RuntimeConfig } from "./src/runtime/ort.ts";
export { Engine, GraphSession, type OrtTensor, readTensor, type SessionOptions, TensorPool } from "./src/runtime/session.ts";
export { attr, type Dim, Graph, GraphError, type Shape, type TensorData, type Value } from "./src/onnx/graph.ts";
export * as ops from "./src/onnx/ops.ts";
export { serializeModel, type SerializedModel, type SerializeOptions } from "./src/onnx/serialize.ts";
export type { DType } from "./src/onnx/dtype.ts";
export { type FileSink, type FileSource, localFiles, memoryFiles, urlFiles } from "./src/io/files.ts";
export { Rng, type RngState } from "./src/util/rng.ts";
