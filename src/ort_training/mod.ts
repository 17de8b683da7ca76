/**
 * ONNX Runtime's training API as an engine: the four artifacts (checkpoint, training, eval and
 * optimizer models) emitted from TypeScript, checked, written in Python's directory layout, and
 * trained with ORT Web 1.19.2's TrainingSession (`--backend ort-training`).
 *
 * @module
 */

export {
  ADAPTER_CONFIG_FILE,
  ARTIFACT_FILES,
  type ArtifactBytes,
  ArtifactError,
  type ArtifactsInfo,
  checkArtifacts,
  emitArtifacts,
  type EmitArtifactsOptions,
  type EmittedArtifacts,
  isArtifactsDir,
  readArtifacts,
  writeArtifacts,
} from "./artifacts.ts";
export {
  CHECKPOINT_VERSION,
  CheckpointError,
  type CheckpointState,
  type NamedTensor,
  readCheckpoint,
  writeCheckpoint,
} from "./checkpoint.ts";
export { ORT_TRAINING_BACKEND, OrtTrainingRunner, type OrtTrainingRunnerOptions } from "./engine.ts";
export { readArtifactsAdapter, readInitAdapter } from "./init_adapter.ts";
export { emitOptimizerModel, type OptimizerModelSpec } from "./optimizer_model.ts";
export { type AnyTensor, OrtTrainingSession } from "./session.ts";
export { type ArtifactLayout, type EmittedModels, emitTrainingModels } from "./training_model.ts";
export { ORT_TRAINING_VERSION } from "./runtime.ts";
export { checkArtifactsDir, checkPreferenceArtifacts, FEEDABLE } from "./trainer_contract.ts";
