/**
 * What every model family's config has in common ({@link ModelConfig}), and the reader a family
 * parses its own `config.json` fields with ({@link ConfigReader}): typed access that collects every
 * problem (a missing or invalid field, a setting we do not implement) so that one error lists them
 * all, naming the file.
 *
 * Both config layouts are read: transformers 4.x (`rope_theta`, `rope_scaling`, `torch_dtype`),
 * which most published checkpoints use, and 5.x (`rope_parameters`, `dtype`).
 *
 * @module
 */

/** What the shared graph code (masks, heads, caches, LoRA) needs to know about a checkpoint. */
export interface ModelConfig {
  /** The family: config.json's `model_type` (a key of `MODEL_FAMILIES`). */
  arch: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** Key/value heads (grouped-query attention); equal to `numHeads` without GQA. */
  numKvHeads: number;
  headDim: number;
  /** MLP inner size. */
  intermediateSize: number;
  /** `max_position_embeddings` (GPT-2: `n_positions`, a hard limit there: its positions are learned). */
  maxPositions: number;
  /** LayerNorm or RMSNorm epsilon. */
  normEps: number;
  tieWordEmbeddings: boolean;
  /** `final_logit_softcapping`: logits become `cap · tanh(logits / cap)` (Gemma); absent when off. */
  logitSoftcap?: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** The checkpoint's declared dtype (`dtype` or `torch_dtype`), e.g. `"bfloat16"`. */
  dtype: string | null;
}

/** MLP activations we implement. */
export type Activation = "gelu_new" | "gelu" | "silu" | "relu";

/** RoPE frequency scaling (null: plain RoPE). */
export type RopeScaling =
  | null
  | { type: "linear"; factor: number }
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

/** One rotary embedding: base and scaling (the head dim comes from the config). */
export interface RopeSpec {
  theta: number;
  scaling: RopeScaling;
}

/** The error of an unreadable or unsupported `config.json`. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** HF activation names we implement, and the function each one is. */
const ACTIVATIONS: Readonly<Record<string, Activation>> = {
  gelu_new: "gelu_new",
  gelu_pytorch_tanh: "gelu_new",
  gelu: "gelu",
  silu: "silu",
  swish: "silu",
  relu: "relu",
};

/** A parsed JSON object. */
export type Json = Record<string, unknown>;

/**
 * Typed access to a config's fields that records a problem (and returns a placeholder) instead of
 * throwing, so that every problem of a file is reported at once.
 */
export class ConfigReader {
  readonly problems: string[] = [];

  constructor(readonly json: Json, readonly source: string) {}

  /** Records a problem (a field we cannot read or a setting we do not implement). */
  problem(message: string): void {
    this.problems.push(message);
  }

  /** True when the field is present and not null. */
  has(key: string): boolean {
    return this.json[key] !== undefined && this.json[key] !== null;
  }

  /** A positive integer; `fallback` when absent (without one, absence is a problem). */
  posInt(key: string, fallback?: number): number {
    const v = this.json[key];
    if ((v === undefined || v === null) && fallback !== undefined) return fallback;
    if (!Number.isSafeInteger(v) || (v as number) <= 0) {
      this.problem(
        v === undefined
          ? `missing "${key}" (a positive integer)`
          : `"${key}" must be a positive integer, got ${JSON.stringify(v)}`,
      );
      return 0;
    }
    return v as number;
  }

  /** A positive number, or `fallback` when absent. */
  posNum(key: string, fallback: number): number {
    const v = this.json[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "number" || !(v > 0)) {
      this.problem(`"${key}" must be a positive number, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return v;
  }

  /** A positive number or null (absent: null). */
  optionalPosNum(key: string): number | null {
    return this.has(key) ? this.posNum(key, 1) : null;
  }

  /** true or false, or `fallback` when absent. */
  bool(key: string, fallback: boolean): boolean {
    const v = this.json[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "boolean") {
      this.problem(`"${key}" must be true or false, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return v;
  }

  /** An activation name we implement, or `fallback` when absent. */
  activation(key: string, fallback: Activation): Activation {
    const v = this.json[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v === "string" && Object.hasOwn(ACTIVATIONS, v)) return ACTIVATIONS[v];
    this.problem(`${key} ${JSON.stringify(v)} (supported: ${Object.keys(ACTIVATIONS).join(", ")})`);
    return fallback;
  }

  /** Refuses a setting we do not implement: `key` must be absent or `allowed`. */
  refuse(key: string, allowed: unknown, why: string): void {
    const v = this.json[key];
    if (v === undefined || v === null || v === allowed) return;
    this.problem(`${key}: ${JSON.stringify(v)} (supported: ${JSON.stringify(allowed)}; ${why})`);
  }

  /** A token id (non-negative integer) or null. */
  tokenId(key: string, v: unknown): number | null {
    if (v === undefined || v === null) return null;
    if (!Number.isSafeInteger(v) || (v as number) < 0) {
      this.problem(`"${key}" must be a token id (a non-negative integer) or null, got ${JSON.stringify(v)}`);
      return null;
    }
    return v as number;
  }

  /** The special token ids and the declared dtype, the same keys in every family. */
  tokens(): Pick<ModelConfig, "bosTokenId" | "eosTokenIds" | "padTokenId" | "dtype"> {
    const c = this.json;
    const eos = c.eos_token_id;
    let eosTokenIds: number[] = [];
    if (Array.isArray(eos)) {
      eosTokenIds = eos.map((_, i) => this.tokenId(`eos_token_id[${i}]`, eos[i])).filter((x): x is number =>
        x !== null
      );
    } else {
      const id = this.tokenId("eos_token_id", eos);
      if (id !== null) eosTokenIds = [id];
    }
    const dtype = c.dtype ?? c.torch_dtype ?? null;
    return {
      bosTokenId: this.tokenId("bos_token_id", c.bos_token_id),
      eosTokenIds,
      padTokenId: this.tokenId("pad_token_id", c.pad_token_id),
      dtype: typeof dtype === "string" ? dtype : null,
    };
  }

  /**
   * Attention heads, KV heads (default: heads) and head dim (default: hidden / heads), checked
   * against each other; for the Llama-style key names.
   */
  heads(hidden: number, headDimDefault?: number): { heads: number; kvHeads: number; headDim: number } {
    const heads = this.posInt("num_attention_heads");
    const kvHeads = this.has("num_key_value_heads") ? this.posInt("num_key_value_heads") : heads;
    if (heads > 0 && kvHeads > 0 && heads % kvHeads !== 0) {
      this.problem(`num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
    }
    let headDim: number;
    if (this.has("head_dim")) headDim = this.posInt("head_dim");
    else if (headDimDefault !== undefined) headDim = headDimDefault;
    else {
      if (hidden > 0 && heads > 0 && hidden % heads !== 0) {
        this.problem(`hidden_size ${hidden} is not divisible by num_attention_heads ${heads} and head_dim is not set`);
      }
      headDim = heads > 0 ? Math.floor(hidden / heads) : 0;
    }
    return { heads, kvHeads, headDim };
  }

  /**
   * RoPE settings from either layout: 5.x `rope_parameters: {rope_type, rope_theta, factor, ...}`
   * or 4.x top-level `rope_theta` plus `rope_scaling: {rope_type | type, factor, ...}`. A
   * `partial_rotary_factor` below 1 is refused (every head dim rotates here).
   */
  rope(thetaDefault = 10000): RopeSpec {
    const c = this.json;
    const params = c.rope_parameters;
    if (params !== undefined && params !== null) {
      if (typeof params !== "object" || Array.isArray(params)) {
        this.problem(`rope_parameters must be an object, got ${JSON.stringify(params)}`);
        return { theta: thetaDefault, scaling: null };
      }
      const p = params as Json;
      if (!("rope_type" in p) && !("rope_theta" in p)) {
        this.problem(
          `rope_parameters per layer type (${
            Object.keys(p).join(", ")
          }) (supported: one {rope_type, rope_theta, ...} for all layers)`,
        );
        return { theta: thetaDefault, scaling: null };
      }
      return this.ropeOf(p, "rope_parameters", c.rope_theta ?? thetaDefault, p.partial_rotary_factor);
    }
    const spec: RopeSpec = { theta: this.ropeTheta(c.rope_theta ?? thetaDefault, "rope_theta"), scaling: null };
    const s = c.rope_scaling;
    if (s !== undefined && s !== null) {
      if (typeof s !== "object" || Array.isArray(s)) {
        this.problem(`rope_scaling must be an object or null, got ${JSON.stringify(s)}`);
      } else spec.scaling = this.ropeScaling(s as Json, "rope_scaling");
    }
    this.partialRotary(c.partial_rotary_factor);
    return spec;
  }

  /** One `{rope_type, rope_theta, ...}` object (a 5.x `rope_parameters` or one of its layer types). */
  ropeOf(p: Json, where: string, thetaDefault: unknown, partial?: unknown): RopeSpec {
    this.partialRotary(partial ?? this.json.partial_rotary_factor);
    return {
      theta: this.ropeTheta(p.rope_theta ?? thetaDefault, `${where}.rope_theta`),
      scaling: this.ropeScaling(p, where),
    };
  }

  ropeTheta(theta: unknown, key: string): number {
    if (typeof theta !== "number" || !(theta > 0)) {
      this.problem(`${key} ${JSON.stringify(theta)} must be a positive number`);
      return 10000;
    }
    return theta;
  }

  ropeScaling(s: Json, where: string): RopeScaling {
    const type = s.rope_type ?? s.type ?? "default";
    const num = (key: string): number => {
      const v = s[key];
      if (typeof v !== "number" || !(v > 0)) {
        this.problem(
          `${where}: rope "${type}" needs a positive number "${key}", got ${JSON.stringify(v ?? null)}`,
        );
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
        this.problem(`${where}: rope_type ${JSON.stringify(type)} (supported: default, linear, llama3)`);
        return null;
    }
  }

  partialRotary(v: unknown): void {
    if (v === undefined || v === null || v === 1) return;
    if (typeof v !== "number" || !(v > 0 && v <= 1)) {
      this.problem(`partial_rotary_factor ${JSON.stringify(v)} must be in (0, 1]`);
    } else this.problem(`partial_rotary_factor ${v} (supported: 1; every head dim rotates)`);
  }
}
