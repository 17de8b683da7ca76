/**
 * An ORT training artifacts directory as a starting adapter: PEFT's `adapter_config.json` beside
 * the artifacts gives the LoRA config, the checkpoint's trainable parameters give the matrices
 * (their names mapped to PEFT's saved keys). So `--init-adapter <artifacts dir>` works with any
 * backend, and with `--backend ort-training` the directory's own training model is trained.
 *
 * @module
 */

import { type FileSource, joinPath } from "../io/files.ts";
import { type LoraAdapter, readAdapter, validateAdapter } from "../lora/adapter.ts";
import { AdapterError, parseAdapterConfig } from "../lora/config.ts";
import type { ModelConfig } from "../models/config.ts";
import type { TensorData } from "../onnx/graph.ts";
import { ADAPTER_CONFIG_FILE, ARTIFACT_FILES, isArtifactsDir } from "./artifacts.ts";
import { readCheckpoint } from "./checkpoint.ts";
import { peftKeyOf } from "./names.ts";

/** Reads the adapter of an artifacts directory (see the module doc); validates it against the model. */
export async function readArtifactsAdapter(
  dir: string,
  files: FileSource,
  modelConfig?: ModelConfig,
): Promise<LoraAdapter> {
  const configPath = joinPath(dir, ADAPTER_CONFIG_FILE);
  if (!(await files.exists(configPath))) {
    throw new AdapterError(
      `${dir}: no ${ADAPTER_CONFIG_FILE} beside the ORT training artifacts; save the PEFT config there (peft_config.save_pretrained(dir)): lora_alpha cannot be read from the artifacts`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(await files.readText(configPath));
  } catch (e) {
    throw new AdapterError(`${configPath}: not valid JSON: ${(e as Error).message}`);
  }
  const config = parseAdapterConfig(json, configPath);
  const ckptPath = joinPath(dir, ARTIFACT_FILES.checkpoint);
  const ckpt = readCheckpoint(await files.readBytes(ckptPath), ckptPath);
  const tensors = new Map<string, TensorData>();
  for (const t of ckpt.trainable) {
    const key = peftKeyOf(t.name);
    if (!key) {
      throw new AdapterError(
        `${ckptPath}: trainable parameter ${t.name} is not a LoRA matrix named as PEFT names them (base_model.model.<module>.lora_A[.<adapter>].weight)`,
      );
    }
    if (tensors.has(key)) throw new AdapterError(`${ckptPath}: two trainable parameters map to ${key}`);
    tensors.set(key, { dtype: "float32", shape: [...t.dims], data: t.data.slice() });
  }
  const adapter = { config, tensors };
  if (modelConfig !== undefined) validateAdapter(adapter, modelConfig, ckptPath);
  return adapter;
}

/** `--init-adapter DIR`: an ORT training artifacts directory, or a PEFT adapter directory. */
export async function readInitAdapter(dir: string, files: FileSource, modelConfig: ModelConfig): Promise<LoraAdapter> {
  return (await isArtifactsDir(dir, files))
    ? await readArtifactsAdapter(dir, files, modelConfig)
    : await readAdapter(dir, files, modelConfig);
}
