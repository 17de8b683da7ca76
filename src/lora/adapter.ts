/**
 * LoRA adapter tensors: creation (PEFT's init), PEFT directory I/O and validation against a model.
 *
 * @module
 */

import { type FileSink, type FileSource, joinPath } from "../io/files.ts";
import type { TensorData } from "../onnx/graph.ts";
import type { ModelConfig } from "../models/config.ts";
import { parseSafetensors, SafetensorsError, serializeSafetensors, toFloat32 } from "../models/safetensors.ts";
import type { Rng } from "../util/rng.ts";
import { adapterConfigJson, AdapterError, type LoraConfig, parseAdapterConfig } from "./config.ts";
import { loraTargets } from "./targets.ts";

/** An adapter: its config and float32 tensors keyed by PEFT key (lora_A [r, in], lora_B [out, r]). */
export interface LoraAdapter {
  config: LoraConfig;
  tensors: Map<string, TensorData>;
}

/** File names PEFT's `save_pretrained` uses. */
export const ADAPTER_CONFIG_FILE = "adapter_config.json";
export const ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors";

/**
 * A fresh adapter initialised like PEFT's `init_lora_weights=True`: A ~ kaiming_uniform_(a=√5) on
 * [r, in], i.e. U(−1/√in, 1/√in) (gain √(2/(1+5)) = √(1/3), bound = √3·gain/√in), and B = 0, so the
 * adapted model starts equal to the base model. Draws from `rng` in target order, row-major.
 */
export function initLoraAdapter(modelConfig: ModelConfig, loraConfig: LoraConfig, rng: Rng): LoraAdapter {
  const tensors = new Map<string, TensorData>();
  const r = loraConfig.r;
  for (const t of loraTargets(modelConfig, loraConfig)) {
    const bound = 1 / Math.sqrt(t.inFeatures);
    const a = new Float32Array(r * t.inFeatures);
    for (let i = 0; i < a.length; i++) a[i] = (2 * rng.next() - 1) * bound;
    tensors.set(t.keyA, { dtype: "float32", shape: [r, t.inFeatures], data: a });
    tensors.set(t.keyB, { dtype: "float32", shape: [t.outFeatures, r], data: new Float32Array(t.outFeatures * r) });
  }
  return { config: { ...loraConfig, targetModules: [...loraConfig.targetModules] }, tensors };
}

/**
 * Checks that an adapter has exactly the tensors its config implies for this model, with the right
 * shapes and float32 data.
 *
 * @throws {AdapterError} naming the missing, unexpected or misshapen key and the expected shape
 */
export function validateAdapter(adapter: LoraAdapter, modelConfig: ModelConfig, source = "adapter"): void {
  const r = adapter.config.r;
  const expected = new Map<string, number[]>();
  for (const t of loraTargets(modelConfig, adapter.config)) {
    expected.set(t.keyA, [r, t.inFeatures]);
    expected.set(t.keyB, [t.outFeatures, r]);
  }
  const missing = [...expected.keys()].filter((k) => !adapter.tensors.has(k));
  if (missing.length > 0) {
    throw new AdapterError(
      `${source}: ${missing.length} LoRA tensor(s) missing for target_modules ${
        JSON.stringify(adapter.config.targetModules)
      }: ${listSome(missing)}`,
    );
  }
  const extra = [...adapter.tensors.keys()].filter((k) => !expected.has(k));
  if (extra.length > 0) {
    throw new AdapterError(
      `${source}: ${extra.length} tensor(s) match no LoRA target of this ${modelConfig.arch} model with target_modules ${
        JSON.stringify(adapter.config.targetModules)
      }: ${listSome(extra)}`,
    );
  }
  for (const [key, shape] of expected) {
    const t = adapter.tensors.get(key)!;
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new AdapterError(
        `${source}: tensor "${key}" has shape [${t.shape.join(", ")}]; expected [${shape.join(", ")}]`,
      );
    }
    if (t.dtype !== "float32" || t.data.length !== shape[0] * shape[1]) {
      throw new AdapterError(`${source}: tensor "${key}" must hold ${shape[0] * shape[1]} float32 values`);
    }
  }
}

function listSome(keys: string[]): string {
  return keys.slice(0, 4).map((k) => JSON.stringify(k)).join(", ") +
    (keys.length > 4 ? `, and ${keys.length - 4} more` : "");
}

/**
 * Reads a PEFT adapter directory (`adapter_config.json` + `adapter_model.safetensors`). Tensors are
 * copied to float32 (F16/BF16 adapters are upcast). Given `modelConfig`, also validates the adapter.
 *
 * @throws {AdapterError} for a missing file or an unsupported config; {@link SafetensorsError} for a corrupt file
 */
export async function readAdapter(dir: string, files: FileSource, modelConfig?: ModelConfig): Promise<LoraAdapter> {
  const configPath = joinPath(dir, ADAPTER_CONFIG_FILE);
  const weightsPath = joinPath(dir, ADAPTER_WEIGHTS_FILE);
  if (!(await files.exists(configPath))) {
    throw new AdapterError(`${dir}: no ${ADAPTER_CONFIG_FILE}; is this a PEFT adapter directory?`);
  }
  if (!(await files.exists(weightsPath))) {
    const bin = await files.exists(joinPath(dir, "adapter_model.bin"));
    throw new AdapterError(
      `${dir}: no ${ADAPTER_WEIGHTS_FILE}` +
        (bin ? "; adapter_model.bin (pickle) is not supported: save with safe_serialization=True" : ""),
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(await files.readText(configPath));
  } catch (e) {
    throw new AdapterError(`${configPath}: not valid JSON: ${(e as Error).message}`);
  }
  const config = parseAdapterConfig(json, configPath);
  const { tensors: raw } = parseSafetensors(await files.readBytes(weightsPath), weightsPath);
  const tensors = new Map<string, TensorData>();
  for (const [key, t] of raw) {
    let data: Float32Array;
    try {
      data = toFloat32(t, key);
    } catch (e) {
      if (e instanceof SafetensorsError) throw new SafetensorsError(`${weightsPath}: ${e.message}`);
      throw e;
    }
    // A copy: training updates these in place, and the file's bytes must not change under us.
    tensors.set(key, { dtype: "float32", shape: [...t.shape], data: t.dtype === "F32" ? data.slice() : data });
  }
  const adapter = { config, tensors };
  if (modelConfig !== undefined) validateAdapter(adapter, modelConfig, weightsPath);
  return adapter;
}

/**
 * Writes a PEFT adapter directory that `PeftModel.from_pretrained` loads: `adapter_config.json`
 * (2-space indented, sorted keys, as PEFT writes it) and `adapter_model.safetensors` with metadata
 * `{"format": "pt"}`. Each file is written atomically by the sink.
 */
export async function writeAdapter(dir: string, adapter: LoraAdapter, files: FileSink): Promise<void> {
  await files.mkdir(dir);
  await files.writeBytes(joinPath(dir, ADAPTER_WEIGHTS_FILE), serializeSafetensors(adapter.tensors, { format: "pt" }));
  await files.writeText(joinPath(dir, ADAPTER_CONFIG_FILE), JSON.stringify(adapterConfigJson(adapter.config), null, 2));
}
