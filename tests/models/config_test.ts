import assert from "node:assert/strict";
import { ConfigError, type ModelConfig, parseModelConfig } from "../../src/models/config.ts";
import type { LlamaConfig } from "../../src/models/families/llama.ts";
import type { Gemma3Config } from "../../src/models/families/gemma3.ts";
import type { Gpt2Config } from "../../src/models/families/gpt2.ts";

async function fixtureConfig(dir: string): Promise<ModelConfig> {
  const path = `${dir}/config.json`;
  return parseModelConfig(JSON.parse(await Deno.readTextFile(path)), path);
}

/** A Llama-style config (Llama, Qwen2) with its family's fields. */
function llamaConfig(json: unknown, source: string): LlamaConfig {
  return parseModelConfig(json, source) as LlamaConfig;
}

function throwsConfig(json: unknown, ...patterns: RegExp[]): void {
  assert.throws(() => parseModelConfig(json, "x/config.json"), (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.match(e.message, /^x\/config\.json: /);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

Deno.test("tiny-gpt2 and review-gpt2 configs (GPT-2 names, n_inner null → 4 × n_embd)", async () => {
  assert.deepEqual(await fixtureConfig("tests/fixtures/tiny-gpt2"), {
    arch: "gpt2",
    vocabSize: 512,
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 4,
    headDim: 16,
    intermediateSize: 256,
    maxPositions: 64,
    normEps: 1e-5,
    activation: "gelu_new",
    tieWordEmbeddings: true,
    bosTokenId: 511,
    eosTokenIds: [511],
    padTokenId: null,
    dtype: "float32",
  });
  const review = await fixtureConfig("models/review-gpt2");
  assert.equal(review.hiddenSize, 256);
  assert.equal(review.intermediateSize, 1024);
  assert.equal(review.numLayers, 4);
  assert.equal(review.vocabSize, 2048);
  assert.equal(review.maxPositions, 128);
  assert.deepEqual(review.eosTokenIds, [0]);
});

Deno.test("tiny-llama (transformers 5 format) and tiny-llama-v4 (4.x format) give identical configs", async () => {
  const v5 = await fixtureConfig("tests/fixtures/tiny-llama");
  const v4 = await fixtureConfig("tests/fixtures/tiny-llama-v4");
  assert.deepEqual(v4, v5);
  assert.deepEqual(v5, {
    arch: "llama",
    vocabSize: 512,
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    intermediateSize: 128,
    maxPositions: 128,
    normEps: 1e-5,
    activation: "silu",
    tieWordEmbeddings: false,
    qkvBias: false,
    oBias: false,
    mlpBias: false,
    rope: { theta: 10000, scaling: null },
    bosTokenId: 1,
    eosTokenIds: [2],
    padTokenId: null,
    dtype: "float32",
  });
});

// Real configs, abridged to the fields that matter (as published on the Hub in transformers 4.x format).
const QWEN25_05B = {
  architectures: ["Qwen2ForCausalLM"],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: "silu",
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 24,
  model_type: "qwen2",
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-06,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  transformers_version: "4.40.1",
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

const SMOLLM2_135M = {
  architectures: ["LlamaForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: "silu",
  hidden_size: 576,
  initializer_range: 0.041666666666666664,
  intermediate_size: 1536,
  is_llama_config: true,
  max_position_embeddings: 8192,
  mlp_bias: false,
  model_type: "llama",
  num_attention_heads: 9,
  num_hidden_layers: 30,
  num_key_value_heads: 3,
  pad_token_id: 2,
  pretraining_tp: 1,
  rms_norm_eps: 1e-05,
  rope_interleaved: false,
  rope_scaling: null,
  rope_theta: 100000,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  transformers_version: "4.42.3",
  use_cache: true,
  vocab_size: 49152,
};

const LLAMA32_1B = {
  architectures: ["LlamaForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  head_dim: 64,
  hidden_act: "silu",
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: "llama",
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-05,
  rope_scaling: {
    factor: 32.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: "llama3",
  },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  transformers_version: "4.45.0.dev0",
  use_cache: true,
  vocab_size: 128256,
};

const TINYLLAMA_11B = {
  architectures: ["LlamaForCausalLM"],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: "silu",
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 5632,
  max_position_embeddings: 2048,
  model_type: "llama",
  num_attention_heads: 32,
  num_hidden_layers: 22,
  num_key_value_heads: 4,
  pretraining_tp: 1,
  rms_norm_eps: 1e-05,
  rope_scaling: null,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  transformers_version: "4.35.0",
  use_cache: true,
  vocab_size: 32000,
};

Deno.test("Qwen2.5-0.5B: q/k/v biases, no o bias, tied embeddings, GQA, rope_theta 1e6", () => {
  const c = llamaConfig(QWEN25_05B, "qwen/config.json");
  assert.equal(c.arch, "qwen2");
  assert.deepEqual([c.qkvBias, c.oBias, c.mlpBias], [true, false, false]);
  assert.deepEqual([c.numHeads, c.numKvHeads, c.headDim], [14, 2, 64]);
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.rope.theta, 1e6);
  assert.equal(c.normEps, 1e-6);
  assert.equal(c.dtype, "bfloat16");
  assert.deepEqual(c.eosTokenIds, [151643]);
  // Qwen2's default for tie_word_embeddings is false.
  const { tie_word_embeddings: _, ...untied } = QWEN25_05B;
  assert.equal(parseModelConfig(untied, "q").tieWordEmbeddings, false);
});

Deno.test("SmolLM2-135M and TinyLlama: head_dim from hidden/heads, pad id, tie defaults", () => {
  const s = llamaConfig(SMOLLM2_135M, "smol/config.json");
  assert.deepEqual([s.numHeads, s.numKvHeads, s.headDim, s.numLayers], [9, 3, 64, 30]);
  assert.deepEqual([s.tieWordEmbeddings, s.padTokenId, s.rope.theta, s.rope.scaling], [true, 2, 100000, null]);
  const t = llamaConfig(TINYLLAMA_11B, "tinyllama/config.json");
  assert.deepEqual([t.headDim, t.numKvHeads, t.rope.theta, t.tieWordEmbeddings, t.qkvBias], [
    64,
    4,
    10000,
    false,
    false,
  ]);
  assert.equal(t.padTokenId, null);
});

Deno.test("Llama-3.2-1B: llama3 rope scaling and several EOS ids, in 4.x and 5.x layouts alike", () => {
  const c = llamaConfig(LLAMA32_1B, "l32/config.json");
  assert.deepEqual(c.rope.scaling, {
    type: "llama3",
    factor: 32,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositions: 8192,
  });
  assert.equal(c.rope.theta, 500000);
  assert.deepEqual(c.eosTokenIds, [128001, 128008, 128009]);
  assert.equal(c.headDim, 64);
  // The same model saved by transformers 5.
  const { rope_scaling, rope_theta, torch_dtype, ...rest } = LLAMA32_1B;
  const v5 = { ...rest, dtype: torch_dtype, rope_parameters: { ...rope_scaling, rope_theta } };
  assert.deepEqual(parseModelConfig(v5, "l32-v5/config.json"), c);
  // Older 4.x configs spell the type as "type".
  const old = { ...LLAMA32_1B, rope_scaling: { type: "linear", factor: 2 } };
  assert.deepEqual(llamaConfig(old, "x").rope.scaling, { type: "linear", factor: 2 });
  const v5linear = { ...rest, rope_parameters: { rope_type: "linear", factor: 4, rope_theta: 1e4 } };
  assert.deepEqual(llamaConfig(v5linear, "x").rope.scaling, { type: "linear", factor: 4 });
  assert.equal(llamaConfig(v5linear, "x").rope.theta, 1e4);
});

Deno.test("defaults: num_key_value_heads = heads, attention_bias sets q/k/v/o biases, partial rotary", () => {
  const { num_key_value_heads: _, ...noKv } = TINYLLAMA_11B;
  assert.equal(parseModelConfig(noKv, "x").numKvHeads, 32);
  const biased = llamaConfig({ ...TINYLLAMA_11B, attention_bias: true, mlp_bias: true }, "x");
  assert.deepEqual([biased.qkvBias, biased.oBias, biased.mlpBias], [true, true, true]);
  assert.equal(llamaConfig({ ...TINYLLAMA_11B, partial_rotary_factor: 1 }, "x").rope.theta, 10000);
  const gelu = llamaConfig({ ...TINYLLAMA_11B, hidden_act: "gelu_pytorch_tanh" }, "x");
  assert.equal(gelu.activation, "gelu_new");
  const { n_inner: _n, ...g } = {
    model_type: "gpt2",
    n_embd: 8,
    n_head: 2,
    n_layer: 1,
    n_positions: 4,
    vocab_size: 10,
    n_inner: 5,
  };
  assert.equal(parseModelConfig(g, "x").intermediateSize, 32);
  assert.equal(parseModelConfig({ ...g, n_inner: 5 }, "x").intermediateSize, 5);
  assert.equal((parseModelConfig({ ...g, activation_function: "relu" }, "x") as Gpt2Config).activation, "relu");
});

Deno.test("unsupported configs fail naming the file, every offending field and what is supported", () => {
  throwsConfig(
    { ...TINYLLAMA_11B, model_type: "mistral" },
    /model_type "mistral" is not supported \(supported: gpt2 \(GPT-2\), llama \(Llama\), qwen2 \(Qwen2\), qwen3 \(Qwen3\), gemma3_text \(Gemma 3 \(text\)\)\)/,
    /To add a family, write src\/models\/families\/<family>\.ts exporting an ArchSpec and list it in MODEL_FAMILIES/,
  );
  throwsConfig({ hidden_size: 4 }, /model_type null is not supported/);
  throwsConfig([], /must be a JSON object/);
  throwsConfig(
    { ...TINYLLAMA_11B, rope_scaling: { rope_type: "yarn", factor: 4 }, hidden_act: "gelu_fast" },
    /rope_type "yarn" \(supported: default, linear, llama3\)/,
    /hidden_act "gelu_fast" \(supported: gelu_new, .*silu/,
  );
  throwsConfig(
    { ...QWEN25_05B, use_sliding_window: true },
    /use_sliding_window: true \(supported: false/,
  );
  throwsConfig(
    { ...TINYLLAMA_11B, rope_scaling: { rope_type: "llama3", factor: 8 } },
    /rope "llama3" needs a positive number "low_freq_factor"/,
    /"original_max_position_embeddings"/,
  );
  throwsConfig(
    { ...TINYLLAMA_11B, hidden_size: undefined, num_hidden_layers: 1.5 },
    /missing "hidden_size" \(a positive integer\)/,
    /"num_hidden_layers" must be a positive integer, got 1\.5/,
  );
  throwsConfig(
    { ...TINYLLAMA_11B, num_key_value_heads: 5 },
    /num_attention_heads 32 is not a multiple of num_key_value_heads 5/,
  );
  throwsConfig(
    {
      model_type: "gpt2",
      n_embd: 10,
      n_head: 4,
      n_layer: 1,
      n_positions: 4,
      vocab_size: 10,
      scale_attn_by_inverse_layer_idx: true,
    },
    /n_embd 10 is not divisible by n_head 4/,
    /scale_attn_by_inverse_layer_idx: true/,
  );
  throwsConfig(
    { ...TINYLLAMA_11B, rope_parameters: { full_attention: { rope_type: "default" }, sliding_attention: {} } },
    /rope_parameters per layer type \(full_attention, sliding_attention\)/,
  );
  throwsConfig({ ...TINYLLAMA_11B, partial_rotary_factor: 0.5 }, /partial_rotary_factor 0\.5 \(supported: 1/);
  throwsConfig(
    { ...TINYLLAMA_11B, eos_token_id: [2, "x"], bos_token_id: -1 },
    /eos_token_id\[1\]/,
    /"bos_token_id" must be a token id/,
  );
});

Deno.test("tiny-qwen3 and tiny-gemma3 configs (transformers 5 format)", async () => {
  const tokens = (bos: number | null, eos: number, pad: number | null) => ({
    bosTokenId: bos,
    eosTokenIds: [eos],
    padTokenId: pad,
    dtype: "float32",
  });
  assert.deepEqual(await fixtureConfig("tests/fixtures/tiny-qwen3"), {
    arch: "qwen3",
    vocabSize: 512,
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    intermediateSize: 128,
    maxPositions: 128,
    normEps: 1e-6,
    activation: "silu",
    tieWordEmbeddings: true,
    attentionBias: false,
    rope: { theta: 1e6, scaling: null },
    ...tokens(null, 511, null),
  });
  assert.deepEqual(await fixtureConfig("tests/fixtures/tiny-gemma3"), {
    arch: "gemma3_text",
    vocabSize: 512,
    hiddenSize: 64,
    numLayers: 3,
    numHeads: 4,
    numKvHeads: 1,
    headDim: 16,
    intermediateSize: 96,
    maxPositions: 128,
    normEps: 1e-6,
    activation: "gelu_new",
    tieWordEmbeddings: true,
    attentionBias: false,
    queryPreAttnScalar: 24,
    slidingWindow: 4,
    layerTypes: ["sliding_attention", "full_attention", "sliding_attention"],
    rope: { sliding_attention: { theta: 1e4, scaling: null }, full_attention: { theta: 1e6, scaling: null } },
    ...tokens(2, 1, 0),
  });
});

/** tiny-gemma3's config.json. */
async function gemmaJson(): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile("tests/fixtures/tiny-gemma3/config.json"));
}

Deno.test("Gemma 3: the transformers 4.x layout (rope_local_base_freq, sliding_window_pattern) reads the same", async () => {
  const v5 = await gemmaJson();
  const { rope_parameters: _r, layer_types: _l, dtype, ...rest } = v5;
  const v4 = { ...rest, torch_dtype: dtype, rope_theta: 1e6, rope_local_base_freq: 1e4, sliding_window_pattern: 2 };
  assert.deepEqual(parseModelConfig(v4, "v4"), parseModelConfig(v5, "v5"));
  // gemma-3-1b-style defaults: every 6th layer full, linear scaling on the full layers only.
  const c = parseModelConfig({
    ...v4,
    num_hidden_layers: 7,
    sliding_window_pattern: undefined,
    rope_scaling: { rope_type: "linear", factor: 8 },
    final_logit_softcapping: 30,
  }, "x") as Gemma3Config;
  assert.deepEqual(c.layerTypes.map((t) => t[0]), ["s", "s", "s", "s", "s", "f", "s"]);
  assert.deepEqual(c.rope.full_attention, { theta: 1e6, scaling: { type: "linear", factor: 8 } });
  assert.deepEqual(c.rope.sliding_attention, { theta: 1e4, scaling: null });
  assert.equal(c.logitSoftcap, 30);
  assert.equal("logitSoftcap" in parseModelConfig(v5, "v5"), false);
});

Deno.test("Gemma 3 and Qwen3: what we do not run fails, naming the field", async () => {
  const v5 = await gemmaJson();
  throwsConfig(
    { ...v5, attn_logit_softcapping: 50, use_bidirectional_attention: true },
    /unsupported gemma3_text config/,
    /attn_logit_softcapping: 50 \(supported: null/,
    /use_bidirectional_attention: true \(supported: false/,
  );
  throwsConfig({ ...v5, layer_types: ["full_attention"] }, /layer_types must list 3 entries/);
  throwsConfig(
    { ...v5, rope_parameters: { full_attention: { rope_type: "yarn", factor: 2 }, sliding_attention: {} } },
    /rope_parameters\.full_attention: rope_type "yarn"/,
  );
  const q = JSON.parse(await Deno.readTextFile("tests/fixtures/tiny-qwen3/config.json"));
  throwsConfig({ ...q, use_sliding_window: true }, /use_sliding_window: true \(supported: false/);
  // head_dim is Qwen3's own: 128 by default, not hidden / heads.
  const { head_dim: _, ...noHeadDim } = q;
  assert.equal(parseModelConfig(noHeadDim, "q").headDim, 128);
});
