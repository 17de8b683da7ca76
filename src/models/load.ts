/**
 * Loads a Hugging Face causal-LM directory: `config.json`, the safetensors weights (one file or
 * shards), the tokenizer and `generation_config.json`, checked against each other so that a wrong
 * or truncated checkpoint fails at load time, naming the file and the tensor.
 *
 * Weights keep their Hugging Face names and their stored type: F32 stays float32, F16 and BF16 stay
 * 16-bit (graphs cast them to float32 where they are used), as views into the file's bytes, which
 * graphs hand to ORT as external data without copying them. `{ dtype: "float32" }` upcasts instead.
 * GPT-2 checkpoints saved without the `transformer.` prefix (the original OpenAI upload) are renamed,
 * and non-weight buffers (`attn.bias`, `attn.masked_bias`, `rotary_emb.inv_freq`) are dropped.
 * With tied embeddings `lm_head.weight` is the embedding matrix (the same array, not a copy).
 *
 * @module
 */

import { resolveModelSource } from "../hub/source.ts";
import type { HubOptions } from "../hub/settings.ts";
import { type FileSource, joinPath, localFiles } from "../io/files.ts";
import type { TensorData } from "../onnx/graph.ts";
import { type Arch, type ModelConfig, parseModelConfig } from "./config.ts";
import { loadSafetensorsDir, toStoredTensorData, toTensorData } from "./safetensors.ts";
import { loadTokenizer, type Tokenizer, TokenizerError } from "./tokenizer.ts";

/** Generation defaults of the checkpoint (`generation_config.json`, else `config.json`). */
export interface GenerationDefaults {
  /** Every id that ends a sequence (Llama 3 lists several). */
  eosTokenIds: number[];
  bosTokenId: number | null;
  padTokenId: number | null;
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  maxNewTokens?: number;
  repetitionPenalty?: number;
}

/** A model ready to be turned into graphs. */
export interface LoadedModel {
  dir: string;
  arch: Arch;
  config: ModelConfig;
  /**
   * Weights by Hugging Face name, `lm_head.weight` included (tied or not): float32, or float16 /
   * bfloat16 as stored in the checkpoint (raw 16-bit patterns; `tensorToFloat32` converts).
   */
  weights: Map<string, TensorData>;
  tokenizer: Tokenizer;
  generation: GenerationDefaults;
  /** Set when the model was named by a Hub id: the repo, the revision asked for and its commit. */
  hub?: { repo: string; revision: string; commit: string };
}

/** Options of {@link loadModel}. */
export interface LoadOptions {
  /** How a Hub id is fetched (revision, endpoint, token, offline, cache); see `src/hub/settings.ts`. */
  hub?: HubOptions;
  /**
   * `"stored"` (default): float16 / bfloat16 weights stay 16-bit (half the memory; graphs cast them
   * where used). `"float32"`: every weight is upcast on load (4 bytes per weight in JS and in ORT).
   */
  dtype?: "stored" | "float32";
}

/** The error of a model directory whose files are missing or do not fit together. */
export class ModelLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModelLoadError";
  }
}

/** Every weight an architecture needs, with its shape (lm_head included). */
export function expectedWeights(c: ModelConfig): Map<string, number[]> {
  const w = new Map<string, number[]>();
  const h = c.hiddenSize, v = c.vocabSize, inter = c.intermediateSize;
  if (c.arch === "gpt2") {
    w.set("transformer.wte.weight", [v, h]);
    w.set("transformer.wpe.weight", [c.maxPositions, h]);
    for (let i = 0; i < c.numLayers; i++) {
      const p = `transformer.h.${i}`;
      for (const ln of ["ln_1", "ln_2"]) {
        w.set(`${p}.${ln}.weight`, [h]);
        w.set(`${p}.${ln}.bias`, [h]);
      }
      // Conv1D stores [in, out].
      w.set(`${p}.attn.c_attn.weight`, [h, 3 * h]);
      w.set(`${p}.attn.c_attn.bias`, [3 * h]);
      w.set(`${p}.attn.c_proj.weight`, [h, h]);
      w.set(`${p}.attn.c_proj.bias`, [h]);
      w.set(`${p}.mlp.c_fc.weight`, [h, inter]);
      w.set(`${p}.mlp.c_fc.bias`, [inter]);
      w.set(`${p}.mlp.c_proj.weight`, [inter, h]);
      w.set(`${p}.mlp.c_proj.bias`, [h]);
    }
    w.set("transformer.ln_f.weight", [h]);
    w.set("transformer.ln_f.bias", [h]);
  } else {
    const q = c.numHeads * c.headDim, kv = c.numKvHeads * c.headDim;
    w.set("model.embed_tokens.weight", [v, h]);
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}`;
      w.set(`${p}.input_layernorm.weight`, [h]);
      w.set(`${p}.post_attention_layernorm.weight`, [h]);
      // nn.Linear stores [out, in].
      w.set(`${p}.self_attn.q_proj.weight`, [q, h]);
      w.set(`${p}.self_attn.k_proj.weight`, [kv, h]);
      w.set(`${p}.self_attn.v_proj.weight`, [kv, h]);
      w.set(`${p}.self_attn.o_proj.weight`, [h, q]);
      if (c.qkvBias) {
        w.set(`${p}.self_attn.q_proj.bias`, [q]);
        w.set(`${p}.self_attn.k_proj.bias`, [kv]);
        w.set(`${p}.self_attn.v_proj.bias`, [kv]);
      }
      if (c.oBias) w.set(`${p}.self_attn.o_proj.bias`, [h]);
      w.set(`${p}.mlp.gate_proj.weight`, [inter, h]);
      w.set(`${p}.mlp.up_proj.weight`, [inter, h]);
      w.set(`${p}.mlp.down_proj.weight`, [h, inter]);
      if (c.mlpBias) {
        w.set(`${p}.mlp.gate_proj.bias`, [inter]);
        w.set(`${p}.mlp.up_proj.bias`, [inter]);
        w.set(`${p}.mlp.down_proj.bias`, [h]);
      }
    }
    w.set("model.norm.weight", [h]);
  }
  w.set("lm_head.weight", [v, h]);
  return w;
}

/** The embedding matrix's name (what `lm_head` is tied to). */
export function embeddingName(arch: Arch): string {
  return arch === "gpt2" ? "transformer.wte.weight" : "model.embed_tokens.weight";
}

/** Buffers that some checkpoints save but that are not weights. */
function isBuffer(name: string): boolean {
  return /\.attn\.(bias|masked_bias)$/.test(name) || name.endsWith("rotary_emb.inv_freq");
}

function readJsonFile(text: string, path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ModelLoadError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ModelLoadError(`${path} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

function optionalNumber(g: Record<string, unknown>, key: string, path: string): number | undefined {
  const v = g[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new ModelLoadError(`${path}: "${key}" must be a number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function tokenIds(v: unknown, key: string, path: string): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  for (const id of list) {
    if (!Number.isSafeInteger(id) || id < 0) {
      throw new ModelLoadError(`${path}: "${key}" must be a token id or a list of them, got ${JSON.stringify(v)}`);
    }
  }
  return list as number[];
}

/** Reads `generation_config.json` (optional) on top of the config's token ids. */
async function loadGeneration(
  dir: string,
  files: FileSource,
  config: ModelConfig,
  tokenizer: Tokenizer,
): Promise<GenerationDefaults> {
  const path = joinPath(dir, "generation_config.json");
  const gen: GenerationDefaults = {
    eosTokenIds: config.eosTokenIds.length > 0
      ? [...config.eosTokenIds]
      : tokenizer.eosId !== null
      ? [tokenizer.eosId]
      : [],
    bosTokenId: config.bosTokenId ?? tokenizer.bosId,
    padTokenId: config.padTokenId ?? tokenizer.padId,
  };
  if (!(await files.exists(path))) return gen;
  const g = readJsonFile(await files.readText(path), path);
  const eos = tokenIds(g.eos_token_id, "eos_token_id", path);
  if (eos.length > 0) gen.eosTokenIds = eos;
  const bos = tokenIds(g.bos_token_id, "bos_token_id", path);
  if (bos.length > 0) gen.bosTokenId = bos[0];
  const pad = tokenIds(g.pad_token_id, "pad_token_id", path);
  if (pad.length > 0) gen.padTokenId = pad[0];
  if (typeof g.do_sample === "boolean") gen.doSample = g.do_sample;
  const fields: [keyof GenerationDefaults, string][] = [
    ["temperature", "temperature"],
    ["topK", "top_k"],
    ["topP", "top_p"],
    ["maxNewTokens", "max_new_tokens"],
    ["repetitionPenalty", "repetition_penalty"],
  ];
  for (const [field, key] of fields) {
    const v = optionalNumber(g, key, path);
    if (v !== undefined) (gen as unknown as Record<string, number>)[field] = v;
  }
  return gen;
}

/**
 * Loads a model directory (config, weights, tokenizer, generation defaults), or a Hugging Face Hub
 * id (`org/name`) through the Hub cache (`src/hub/`): the snapshot is fetched as needed and then
 * loaded as a directory.
 *
 * @throws {ModelLoadError} naming the file and tensor for a missing file, a missing, unexpected or
 *   misshapen weight, or a tokenizer larger than the embedding
 */
export async function loadModel(
  dir: string,
  files: FileSource = localFiles(),
  options: LoadOptions = {},
): Promise<LoadedModel> {
  const dtype = options.dtype ?? "stored";
  if (dtype !== "stored" && dtype !== "float32") {
    throw new RangeError(`loadModel: dtype must be "stored" or "float32", got ${JSON.stringify(dtype)}`);
  }
  const source = await resolveModelSource(dir, files, "model", options.hub);
  const model = await loadModelDir(source.dir, source.files, dtype === "stored");
  if (source.hub) model.hub = { repo: source.hub.repo, revision: source.hub.revision, commit: source.hub.commit };
  return model;
}

/** Loads a model directory; `keep`: 16-bit weights stay 16-bit (else upcast to float32). */
async function loadModelDir(dir: string, files: FileSource, keep: boolean): Promise<LoadedModel> {
  const configPath = joinPath(dir, "config.json");
  if (!(await files.exists(configPath))) {
    throw new ModelLoadError(`${configPath} not found: is ${dir} a Hugging Face model directory?`);
  }
  const config = parseModelConfig(readJsonFile(await files.readText(configPath), configPath), configPath);
  if (config.partialRotaryFactor !== undefined) {
    throw new ModelLoadError(
      `${configPath}: partial_rotary_factor ${config.partialRotaryFactor} is not supported by the ${config.arch} graph`,
    );
  }
  const raw = await loadSafetensorsDir(dir, files);
  const source = (await files.exists(joinPath(dir, "model.safetensors")))
    ? joinPath(dir, "model.safetensors")
    : joinPath(dir, "model.safetensors.index.json");

  const weights = new Map<string, TensorData>();
  const unprefixedGpt2 = config.arch === "gpt2" && !raw.has("transformer.wte.weight") && raw.has("wte.weight");
  for (const [rawName, t] of raw) {
    if (isBuffer(rawName)) continue;
    const name = unprefixedGpt2 && rawName !== "lm_head.weight" ? `transformer.${rawName}` : rawName;
    let data: TensorData;
    try {
      data = keep ? toStoredTensorData(t, name) : toTensorData(t, name);
    } catch (e) {
      throw new ModelLoadError(`${source}: ${(e as Error).message}`);
    }
    weights.set(name, data);
  }

  const expected = expectedWeights(config);
  const embed = embeddingName(config.arch);
  if (config.tieWordEmbeddings && weights.has(embed)) weights.set("lm_head.weight", weights.get(embed)!);
  const missing = [...expected.keys()].filter((k) => !weights.has(k));
  if (missing.length > 0) {
    const hint = missing.includes("lm_head.weight") && !config.tieWordEmbeddings
      ? " (config.json says tie_word_embeddings: false, so lm_head.weight must be saved)"
      : "";
    throw new ModelLoadError(
      `${source}: ${missing.length} weight(s) missing for this ${config.arch} config (${configPath}): ${
        listSome(missing)
      }${hint}`,
    );
  }
  const unexpected = [...weights.keys()].filter((k) => !expected.has(k));
  if (unexpected.length > 0) {
    throw new ModelLoadError(
      `${source}: ${unexpected.length} tensor(s) that this ${config.arch} config (${configPath}) does not use: ${
        listSome(unexpected)
      }; does config.json belong to these weights?`,
    );
  }
  for (const [name, shape] of expected) {
    const t = weights.get(name)!;
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ModelLoadError(
        `${source}: ${name} has shape [${t.shape.join(", ")}] but ${configPath} implies [${shape.join(", ")}]`,
      );
    }
  }

  let tokenizer: Tokenizer;
  try {
    tokenizer = await loadTokenizer(dir, files);
  } catch (e) {
    throw e instanceof TokenizerError ? new ModelLoadError(e.message) : e;
  }
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new ModelLoadError(
      `${
        joinPath(dir, "tokenizer.json")
      } has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${config.vocabSize}`,
    );
  }
  const generation = await loadGeneration(dir, files, config, tokenizer);
  for (const id of generation.eosTokenIds) {
    if (id >= config.vocabSize) {
      throw new ModelLoadError(`${dir}: eos token id ${id} is outside the vocabulary (${config.vocabSize})`);
    }
  }
  return { dir, arch: config.arch, config, weights, tokenizer, generation };
}

/** Weight maps whose JS copy was released (see {@link releaseWeights}). */
const RELEASED = new WeakSet<Map<string, TensorData>>();

/**
 * Drops the JS copy of a model's weights (the file bytes), for a caller that owns the model and
 * has created every session it needs: ORT holds its own copy, so keeping this one would hold the
 * weights twice. Graphs can no longer be built from the model afterwards.
 */
export function releaseWeights(model: LoadedModel): void {
  model.weights.clear();
  RELEASED.add(model.weights);
}

/** True when {@link releaseWeights} emptied this weight map. */
export function weightsReleased(weights: Map<string, TensorData>): boolean {
  return RELEASED.has(weights);
}

function listSome(keys: string[]): string {
  return keys.slice(0, 5).join(", ") + (keys.length > 5 ? `, and ${keys.length - 5} more` : "");
}
