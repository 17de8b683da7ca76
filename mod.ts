/**
 * exo-tune: on-device preference tuning (EXO, DPO) of LoRA adapters for small causal language
 * models, on WebGPU with a WebAssembly fallback, through ONNX Runtime Web.
 *
 * @example
 * ```ts ignore
 * import { Generator, loadModel, localFiles, readAdapter, train } from "./mod.ts";
 * const summary = await train({ model: "models/review-gpt2", data: "data/pairs.jsonl", out: "runs/a" });
 * const model = await loadModel("models/review-gpt2");
 * const gen = await Generator.create(model, { adapter: await readAdapter("runs/a", localFiles()) });
 * console.log((await gen.generate("The movie was", { maxNewTokens: 24 })).sequences[0].text);
 * ```
 *
 * @module
 */

// Training
export {
  NonFiniteLossError,
  type ResolvedTrainOptions,
  resolveTrainOptions,
  train,
  TRAIN_OPTIONS,
  Trainer,
  type TrainOptions,
  type TrainSummary,
} from "./src/train/trainer.ts";
export { describeError, type Namer, OptionError, type OptionSpec } from "./src/options/table.ts";
export { isRewardLoss, LOSS_KINDS, type LossKind } from "./src/train/preference_graph.ts";
export { evaluatePairs, type PairEvaluation, scorePairs } from "./src/train/evaluate.ts";
export { type Checkpoint, latestCheckpoint, loadCheckpoint, type TrainerState } from "./src/train/checkpoint.ts";
export { type CompiledStep, compileStep, type StepLayout, type StepSpec } from "./src/train/step.ts";
export {
  type Batch,
  type OptimizerState,
  type StepResult,
  StepRunner,
  type StepRunnerOptions,
} from "./src/train/step_runner.ts";

// ONNX Runtime's training API (the ort-training engine and its artifacts)
export {
  ARTIFACT_FILES,
  type ArtifactBytes,
  ArtifactError,
  type ArtifactsInfo,
  checkArtifacts,
  CheckpointError,
  type CheckpointState,
  emitArtifacts,
  type EmitArtifactsOptions,
  ORT_TRAINING_BACKEND,
  OrtTrainingRunner,
  OrtTrainingSession,
  readArtifacts,
  readArtifactsAdapter,
  readCheckpoint,
  writeArtifacts,
  writeCheckpoint,
} from "./src/ort_training/mod.ts";

// Losses
export * from "./src/losses/mod.ts";

// Autodiff and optimizers
export {
  backward,
  type BackwardOptions,
  DIFFERENTIABLE_OPS,
  type DifferentiableOp,
  type GradContext,
  type GradRule,
  hasGradRule,
  setCustomGradient,
  setRecompute,
} from "./src/autodiff/mod.ts";
export {
  adamw,
  type AdamWOptions,
  clipByGlobalNorm,
  globalNorm,
  lrSchedule,
  type Optimizer,
  type Schedule,
  type ScheduleKind,
  type ScheduleOptions,
  sgd,
  type SgdOptions,
} from "./src/optim/mod.ts";

// Models, tokenizers, scoring
export {
  type GenerationDefaults,
  type LoadedModel,
  loadModel,
  type LoadOptions,
  ModelLoadError,
  releaseWeights,
} from "./src/models/load.ts";
export { loadTokenizer, type Tokenizer, TokenizerError } from "./src/models/tokenizer.ts";
export {
  applyChatTemplate,
  type ChatMessage,
  ChatTemplateError,
  type ChatTemplateOptions,
  renderChat,
} from "./src/models/chat_template.ts";

// Hugging Face Hub
export { HubError, type HubOptions, isHubId } from "./src/hub/settings.ts";

// Scaling out: the same run as a TRL script
export { exportTrl, TRL_VERSION, type TrlExport, type TrlExportContext } from "./src/export/trl.ts";
export { type Arch, ConfigError, type ModelConfig, parseModelConfig } from "./src/models/config.ts";
export {
  buildForward,
  buildHidden,
  type ForwardInputs,
  type ForwardOutputs,
  type HiddenOutputs,
  type LoraAttachment,
} from "./src/models/forward.ts";
export { type BuildOptions } from "./src/models/layers.ts";
export { type HalfDtypes, halfDtypesFor } from "./src/models/half_dtypes.ts";
export { buildHeadLogprobs, buildHeadSequenceLogprobs, VOCAB_CHUNK } from "./src/models/head_logprobs.ts";
export {
  buildSequenceLogprobs,
  buildTokenLogprobs,
  Scorer,
  type ScorerOptions,
  type ScoreSequence,
} from "./src/models/score.ts";
export {
  loadSafetensorsDir,
  parseSafetensors,
  type SafeTensor,
  SafetensorsError,
  serializeSafetensors,
  tensorToFloat32,
  toFloat32,
  toStoredTensorData,
  toTensorData,
} from "./src/models/safetensors.ts";

// LoRA adapters (PEFT format)
export {
  adapterConfigJson,
  AdapterError,
  createLoraConfig,
  type LoraConfig,
  loraScaling,
  parseAdapterConfig,
} from "./src/lora/config.ts";
export { type LoraTarget, loraTargets } from "./src/lora/targets.ts";
export { initLoraAdapter, type LoraAdapter, readAdapter, validateAdapter, writeAdapter } from "./src/lora/adapter.ts";
export { mergeAdapter } from "./src/lora/merge.ts";

// Generation
export * from "./src/generate/mod.ts";

// Data
export { DataError, type DataWarning, parseJsonl } from "./src/data/jsonl.ts";
export { type DataKind, type Dataset, readDataset, validateAll, validateMessages } from "./src/data/formats.ts";
export {
  encodeDataset,
  type EncodedGroup,
  type EncodedPair,
  truncateExample,
  type TruncationStats,
} from "./src/data/encode.ts";
export {
  type BatchOptions,
  BatchSampler,
  type DataCursor,
  epochBatches,
  exampleLength,
  padBatch,
  type PaddedBatch,
  padGroups,
  padPairs,
} from "./src/data/batching.ts";

// Runtime and graphs
export {
  BACKEND_PREFERENCES,
  type BackendChoice,
  type BackendPreference,
  type BackendTrial,
  BackendUnavailableError,
  probeWebGpu,
  resolveBackend,
  RUNTIME_BACKEND_PREFERENCES,
  type TrainBackendPreference,
} from "./src/runtime/backend.ts";
export { BACKEND_NAMES, BACKENDS, type BackendSpec } from "./src/runtime/backends.ts";
export {
  type BackendName,
  configureRuntime,
  type NativeBackendName,
  ORT_VERSION,
  type RuntimeConfig,
} from "./src/runtime/ort.ts";
export {
  type NativeProbe,
  type NativeWebGpuProbe,
  probeNative,
  probeNativeWebGpu,
} from "./src/runtime/probe_native.ts";
export {
  Engine,
  type EngineOptions,
  GraphSession,
  type OrtTensor,
  readTensor,
  type SessionOptions,
  TensorPool,
} from "./src/runtime/session.ts";
export { attr, type Dim, Graph, GraphError, type Shape, type TensorData, type Value } from "./src/onnx/graph.ts";
export * as ops from "./src/onnx/ops.ts";
export { type SerializedModel, serializeModel, type SerializeOptions } from "./src/onnx/serialize.ts";
export type { DType } from "./src/onnx/dtype.ts";
export { type FileSink, type FileSource, localFiles, memoryFiles, urlFiles } from "./src/io/files.ts";
export { opfsFiles } from "./src/io/opfs.ts";
export { Rng, type RngState } from "./src/util/rng.ts";
