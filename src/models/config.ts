/**
 * Hugging Face `config.json` → one architecture-neutral {@link ModelConfig}.
 *
 * Reads both the transformers 4.x layout (`rope_theta`, `rope_scaling`, `torch_dtype`), which most
 * published checkpoints use, and the 5.x layout (`rope_parameters`, `dtype`). Anything that would
 * change the model's math and that we do not implement fails here, listing every such field at once,
 * rather than giving silently wrong logits.
 *
 * @module
 */

/** Model families we run. Qwen2 and Llama share one graph; GPT-2 has its own. */
export type Arch = "gpt2" | "llama" | "qwen2";

/** RoPE frequency scaling (null: plain RoPE). */
export type RopeScaling =
  | null
  | { type: "linear"; factor: number }
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

/** What the model graphs need to know about a checkpoint. */
export interface ModelConfig {
  arch: Arch;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** Key/value heads (grouped-query attention); equal to `numHeads` without GQA and for GPT-2. */
  numKvHeads: number;
  headDim: number;
  /** MLP inner size (GPT-2: `n_inner`, default 4 × hidden). */
  intermediateSize: number;
  maxPositions: number;
  /** LayerNorm epsilon (GPT-2) or RMSNorm epsilon (Llama, Qwen2). */
  normEps: number;
  /** `gelu_new` is the tanh approximation (also `gelu_pytorch_tanh`); `gelu` is the exact erf form. */
  activation: "gelu_new" | "gelu" | "silu" | "relu";
  tieWordEmbeddings: boolean;
  /** Biases on the q, k, v projections (GPT-2's `c_attn`, Qwen2 always, Llama `attention_bias`). */
  qkvBias: boolean;
  /** Bias on the attention output projection (GPT-2 yes, Qwen2 no, Llama `attention_bias`). */
  oBias: boolean;
  /** Biases in the MLP (GPT-2 yes, Llama `mlp_bias`, Qwen2 no). */
  mlpBias: boolean;
  /** RoPE base; 0 for GPT-2 (learned absolute positions). */
  ropeTheta: number;
  ropeScaling: RopeScaling;
  /** Fraction of each head's dims that get RoPE, when the config sets one (default: all). */
  partialRotaryFactor?: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** The checkpoint's declared dtype (`dtype` or `torch_dtype`), e.g. `"bfloat16"`. */
  dtype: string | null;
}

/** The error of an unreadable or unsupported `config.json`. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

const SUPPORTED_ARCHS: readonly Arch[] = ["gpt2", "llama", "qwen2"];

/** HF activation names we implement, and the function each one is. */
const ACTIVATIONS: Readonly<Record<string, ModelConfig["activation"]>> = {
  gelu_new: "gelu_new",
  gelu_pytorch_tanh: "gelu_new",
  gelu: "gelu",
  silu: "silu",
  swish: "silu",
  relu: "relu",
};

type Json = Record<string, unknown>;

/**
 * Parses a Hugging Face `config.json` (already JSON-parsed).
 *
 * @param json the parsed config
 * @param source the file name for messages
 * @throws {ConfigError} naming the file, every unsupported or invalid field, and what is supported
 */
export function parseModelConfig(json: unknown, source: string): ModelConfig {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new ConfigError(`${source}: must be a JSON object`);
  }
  const c = json as Json;
  const problems: string[] = [];
  const modelType = c.model_type;
  if (typeof modelType !== "string" || !(SUPPORTED_ARCHS as readonly string[]).includes(modelType)) {
    throw new ConfigError(
      `${source}: model_type ${JSON.stringify(modelType ?? null)} is not supported (supported: ${
        SUPPORTED_ARCHS.join(", ")
      })`,
    );
  }
  const arch = modelType as Arch;
  const r = new Reader(c, problems);
  const config = arch === "gpt2" ? gpt2Config(r, c, problems) : llamaConfig(arch, r, c, problems);
  if (problems.length > 0) {
    throw new ConfigError(`${source}: unsupported ${arch} config:\n  - ${problems.join("\n  - ")}`);
  }
  return config;
}

function gpt2Config(r: Reader, c: Json, problems: string[]): ModelConfig {
  const hidden = r.posInt("n_embd");
  const heads = r.posInt("n_head");
  if (hidden > 0 && heads > 0 && hidden % heads !== 0) {
    problems.push(`n_embd ${hidden} is not divisible by n_head ${heads}`);
  }
  if (c.scale_attn_by_inverse_layer_idx === true) {
    problems.push("scale_attn_by_inverse_layer_idx: true (supported: false)");
  }
  if (c.scale_attn_weights === false) problems.push("scale_attn_weights: false (supported: true)");
  if (c.add_cross_attention === true) problems.push("add_cross_attention: true (supported: false)");
  const inner = c.n_inner === null || c.n_inner === undefined ? 4 * hidden : r.posInt("n_inner");
  return {
    arch: "gpt2",
    vocabSize: r.posInt("vocab_size"),
    hiddenSize: hidden,
    numLayers: r.posInt("n_layer"),
    numHeads: heads,
    numKvHeads: heads,
    headDim: heads > 0 ? Math.floor(hidden / heads) : 0,
    intermediateSize: inner,
    maxPositions: r.posInt("n_positions"),
    normEps: r.posNum("layer_norm_epsilon", 1e-5),
    activation: r.activation("activation_function", "gelu_new"),
    tieWordEmbeddings: r.bool("tie_word_embeddings", true),
    qkvBias: true,
    oBias: true,
    mlpBias: true,
    ropeTheta: 0,
    ropeScaling: null,
    ...tokens(r, c),
  };
}

function llamaConfig(arch: "llama" | "qwen2", r: Reader, c: Json, problems: string[]): ModelConfig {
  const hidden = r.posInt("hidden_size");
  const heads = r.posInt("num_attention_heads");
  const kvHeads = c.num_key_value_heads === null || c.num_key_value_heads === undefined
    ? heads
    : r.posInt("num_key_value_heads");
  if (heads > 0 && kvHeads > 0 && heads % kvHeads !== 0) {
    problems.push(`num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
  }
  let headDim: number;
  if (c.head_dim === null || c.head_dim === undefined) {
    if (hidden > 0 && heads > 0 && hidden % heads !== 0) {
      problems.push(`hidden_size ${hidden} is not divisible by num_attention_heads ${heads} and head_dim is not set`);
    }
    headDim = heads > 0 ? Math.floor(hidden / heads) : 0;
  } else {
    headDim = r.posInt("head_dim");
  }
  if (arch === "qwen2" && c.use_sliding_window === true) {
    problems.push("use_sliding_window: true (supported: false; every layer attends to the full context)");
  }
  const attentionBias = r.bool("attention_bias", false);
  const { theta, scaling, partial } = rope(c, problems);
  const defaults = arch === "qwen2"
    ? { eps: 1e-6, maxPos: 32768, tie: false }
    : { eps: 1e-6, maxPos: 2048, tie: false };
  const config: ModelConfig = {
    arch,
    vocabSize: r.posInt("vocab_size"),
    hiddenSize: hidden,
    numLayers: r.posInt("num_hidden_layers"),
    numHeads: heads,
    numKvHeads: kvHeads,
    headDim,
    intermediateSize: r.posInt("intermediate_size"),
    maxPositions: c.max_position_embeddings === undefined ? defaults.maxPos : r.posInt("max_position_embeddings"),
    normEps: r.posNum("rms_norm_eps", defaults.eps),
    activation: r.activation("hidden_act", "silu"),
    tieWordEmbeddings: r.bool("tie_word_embeddings", defaults.tie),
    qkvBias: arch === "qwen2" ? true : attentionBias,
    oBias: arch === "qwen2" ? false : attentionBias,
    mlpBias: arch === "qwen2" ? false : r.bool("mlp_bias", false),
    ropeTheta: theta,
    ropeScaling: scaling,
    ...tokens(r, c),
  };
  if (partial !== undefined) config.partialRotaryFactor = partial;
  return config;
}

/**
 * RoPE settings from either layout: 5.x `rope_parameters: {rope_type, rope_theta, factor, ...}` or
 * 4.x top-level `rope_theta` plus `rope_scaling: {rope_type | type, factor, ...}`.
 */
function rope(c: Json, problems: string[]): { theta: number; scaling: RopeScaling; partial?: number } {
  const params = c.rope_parameters;
  let theta: unknown = c.rope_theta;
  let scalingRaw: unknown = c.rope_scaling;
  let partial: unknown = c.partial_rotary_factor;
  if (params !== undefined && params !== null) {
    if (typeof params !== "object" || Array.isArray(params)) {
      problems.push(`rope_parameters must be an object, got ${JSON.stringify(params)}`);
      return { theta: 10000, scaling: null };
    }
    const p = params as Json;
    if (!("rope_type" in p) && !("rope_theta" in p)) {
      problems.push(
        `rope_parameters per layer type (${
          Object.keys(p).join(", ")
        }) (supported: one {rope_type, rope_theta, ...} for all layers)`,
      );
      return { theta: 10000, scaling: null };
    }
    theta = p.rope_theta ?? theta;
    scalingRaw = p;
    partial = p.partial_rotary_factor ?? partial;
  }
  if (theta === undefined || theta === null) theta = 10000;
  if (typeof theta !== "number" || !(theta > 0)) {
    problems.push(`rope_theta ${JSON.stringify(theta)} must be a positive number`);
    theta = 10000;
  }
  let scaling: RopeScaling = null;
  if (scalingRaw !== undefined && scalingRaw !== null) {
    if (typeof scalingRaw !== "object" || Array.isArray(scalingRaw)) {
      problems.push(`rope_scaling must be an object or null, got ${JSON.stringify(scalingRaw)}`);
    } else {
      scaling = ropeScaling(scalingRaw as Json, problems);
    }
  }
  if (partial !== undefined && partial !== null) {
    if (typeof partial !== "number" || !(partial > 0 && partial <= 1)) {
      problems.push(`partial_rotary_factor ${JSON.stringify(partial)} must be in (0, 1]`);
      partial = undefined;
    } else if (partial === 1) {
      partial = undefined;
    }
  } else {
    partial = undefined;
  }
  return { theta: theta as number, scaling, partial: partial as number | undefined };
}

function ropeScaling(s: Json, problems: string[]): RopeScaling {
  const type = s.rope_type ?? s.type ?? "default";
  const num = (key: string): number => {
    const v = s[key];
    if (typeof v !== "number" || !(v > 0)) {
      problems.push(`rope ${JSON.stringify(type)} needs a positive number "${key}", got ${JSON.stringify(v ?? null)}`);
      return 1;
    }
    return v;
  };
  switch (type) {
    case "default":
      return null;
    case "linear":
      return { type: "linear", factor: num("factor") };
    case "llama3":
      return {
        type: "llama3",
        factor: num("factor"),
        lowFreqFactor: num("low_freq_factor"),
        highFreqFactor: num("high_freq_factor"),
        originalMaxPositions: num("original_max_position_embeddings"),
      };
    default:
      problems.push(`rope_type ${JSON.stringify(type)} (supported: default, linear, llama3)`);
      return null;
  }
}

function tokens(r: Reader, c: Json): Pick<ModelConfig, "bosTokenId" | "eosTokenIds" | "padTokenId" | "dtype"> {
  const eos = c.eos_token_id;
  let eosTokenIds: number[] = [];
  if (Array.isArray(eos)) {
    eosTokenIds = eos.map((_, i) => r.tokenId(`eos_token_id[${i}]`, eos[i])).filter((x): x is number => x !== null);
  } else {
    const id = r.tokenId("eos_token_id", eos);
    if (id !== null) eosTokenIds = [id];
  }
  const dtype = c.dtype ?? c.torch_dtype ?? null;
  return {
    bosTokenId: r.tokenId("bos_token_id", c.bos_token_id),
    eosTokenIds,
    padTokenId: r.tokenId("pad_token_id", c.pad_token_id),
    dtype: typeof dtype === "string" ? dtype : null,
  };
}

/** Typed field access that records a problem (and returns a placeholder) instead of throwing. */
class Reader {
  constructor(readonly c: Json, readonly problems: string[]) {}

  posInt(key: string): number {
    const v = this.c[key];
    if (!Number.isSafeInteger(v) || (v as number) <= 0) {
      this.problems.push(
        v === undefined
          ? `missing "${key}" (a positive integer)`
          : `"${key}" must be a positive integer, got ${JSON.stringify(v)}`,
      );
      return 0;
    }
    return v as number;
  }

  posNum(key: string, fallback: number): number {
    const v = this.c[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "number" || !(v > 0)) {
      this.problems.push(`"${key}" must be a positive number, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.c[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "boolean") {
      this.problems.push(`"${key}" must be true or false, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return v;
  }

  activation(key: string, fallback: ModelConfig["activation"]): ModelConfig["activation"] {
    const v = this.c[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v === "string" && Object.hasOwn(ACTIVATIONS, v)) return ACTIVATIONS[v];
    this.problems.push(`${key} ${JSON.stringify(v)} (supported: ${Object.keys(ACTIVATIONS).join(", ")})`);
    return fallback;
  }

  tokenId(key: string, v: unknown): number | null {
    if (v === undefined || v === null) return null;
    if (!Number.isSafeInteger(v) || (v as number) < 0) {
      this.problems.push(`"${key}" must be a token id (a non-negative integer) or null, got ${JSON.stringify(v)}`);
      return null;
    }
    return v as number;
  }
}
