/**
 * What the Llama-descended families (Llama, Qwen2, Qwen3, Gemma 3) share: the Hugging Face layout
 * of their checkpoints (`model.embed_tokens`, `model.layers.<i>.self_attn.{q,k,v,o}_proj`,
 * `.mlp.{gate,up,down}_proj`, `model.norm`, `lm_head`; names and shapes in one place), the
 * config keys they read alike, and the gated MLP. Each family file adds what is its own.
 *
 * @module
 */

import type { Value } from "../../onnx/graph.ts";
import * as op from "../../onnx/ops.ts";
import type { Activation, ConfigReader, ModelConfig } from "../config_base.ts";
import { activation, type LinearModule, linearWeights, type ModelBuilder } from "../layers.ts";

/** The token embedding (also the LM head when tied). */
export const EMBEDDING = "model.embed_tokens.weight";

/** PEFT's usual targets: every attention and MLP projection. */
export const PROJECTIONS: readonly string[] = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
];

/** Saved buffers that are not weights. */
export const ROTARY_BUFFERS = /rotary_emb\.inv_freq$/;

/** The modules of decoder layer i. */
export interface DecoderLayer {
  /** `model.layers.<i>` */
  prefix: string;
  q: LinearModule;
  k: LinearModule;
  v: LinearModule;
  o: LinearModule;
  gate: LinearModule;
  up: LinearModule;
  down: LinearModule;
}

/** Which projections have biases. */
export interface DecoderBiases {
  qkv: boolean;
  o: boolean;
  mlp: boolean;
}

/** The modules of layer i (`nn.Linear`: stored `[out, in]`). */
export function decoderLayer(c: ModelConfig, i: number, bias: DecoderBiases): DecoderLayer {
  const prefix = `model.layers.${i}`;
  const h = c.hiddenSize, inter = c.intermediateSize;
  const q = c.numHeads * c.headDim, kv = c.numKvHeads * c.headDim;
  const m = (name: string, inFeatures: number, outFeatures: number, b: boolean): LinearModule => ({
    name: `${prefix}.${name}`,
    inFeatures,
    outFeatures,
    layout: "out_in",
    bias: b,
  });
  return {
    prefix,
    q: m("self_attn.q_proj", h, q, bias.qkv),
    k: m("self_attn.k_proj", h, kv, bias.qkv),
    v: m("self_attn.v_proj", h, kv, bias.qkv),
    o: m("self_attn.o_proj", q, h, bias.o),
    gate: m("mlp.gate_proj", h, inter, bias.mlp),
    up: m("mlp.up_proj", h, inter, bias.mlp),
    down: m("mlp.down_proj", inter, h, bias.mlp),
  };
}

/** Every layer's modules. */
export function decoderLayers(c: ModelConfig, bias: DecoderBiases): DecoderLayer[] {
  return Array.from({ length: c.numLayers }, (_, i) => decoderLayer(c, i, bias));
}

/** A layer's projections in PEFT's order (what LoRA may adapt). */
export function projections(l: DecoderLayer): LinearModule[] {
  return [l.q, l.k, l.v, l.o, l.gate, l.up, l.down];
}

/**
 * The weights of a checkpoint: embedding, each layer's projections plus `norms(prefix)` (name →
 * size, e.g. `input_layernorm` → hidden), the final norm and `lm_head`.
 */
export function decoderWeights(
  c: ModelConfig,
  layers: readonly DecoderLayer[],
  norms: (l: DecoderLayer) => [string, number][],
): Map<string, number[]> {
  const w = new Map<string, number[]>();
  w.set(EMBEDDING, [c.vocabSize, c.hiddenSize]);
  for (const l of layers) {
    for (const [name, size] of norms(l)) w.set(`${l.prefix}.${name}.weight`, [size]);
    for (const m of projections(l)) for (const [name, shape] of linearWeights(m)) w.set(name, shape);
  }
  w.set("model.norm.weight", [c.hiddenSize]);
  w.set("lm_head.weight", [c.vocabSize, c.hiddenSize]);
  return w;
}

/** Defaults of the common keys, per family. */
export interface DecoderDefaults {
  /** `max_position_embeddings` when absent. */
  maxPositions: number;
  /** `rms_norm_eps` when absent. */
  eps: number;
  /** `tie_word_embeddings` when absent. */
  tie: boolean;
  /** `head_dim` when absent (default: hidden / heads). */
  headDim?: number;
  /** The key of the activation and its default. */
  activationKey: string;
  activation: Activation;
}

/** The config keys the Llama-descended families read alike, as {@link ModelConfig} fields. */
export function decoderConfig<A extends string>(
  r: ConfigReader,
  arch: A,
  d: DecoderDefaults,
): ModelConfig & { arch: A; activation: Activation } {
  const hidden = r.posInt("hidden_size");
  const { heads, kvHeads, headDim } = r.heads(hidden, d.headDim);
  return {
    arch,
    vocabSize: r.posInt("vocab_size"),
    hiddenSize: hidden,
    numLayers: r.posInt("num_hidden_layers"),
    numHeads: heads,
    numKvHeads: kvHeads,
    headDim,
    intermediateSize: r.posInt("intermediate_size"),
    maxPositions: r.posInt("max_position_embeddings", d.maxPositions),
    normEps: r.posNum("rms_norm_eps", d.eps),
    activation: r.activation(d.activationKey, d.activation),
    tieWordEmbeddings: r.bool("tie_word_embeddings", d.tie),
    ...r.tokens(),
  };
}

/** The LM head's weight: the embedding's name when `lm_head` is the same tensor (tied). */
export function headWeight(mb: ModelBuilder): string {
  const w = mb.model.weights;
  return w.get("lm_head.weight") === w.get(EMBEDDING) ? EMBEDDING : "lm_head.weight";
}

/** The gated MLP: `down(act(gate(x)) · up(x))` (SwiGLU with silu, GeGLU with gelu). */
export function gatedMlp(mb: ModelBuilder, x: Value, l: DecoderLayer, act: Activation): Value {
  return mb.linear(op.mul(activation(mb.linear(x, l.gate), act), mb.linear(x, l.up)), l.down);
}
