/**
 * Llama (`LlamaForCausalLM`: Llama 2/3, SmolLM, TinyLlama): pre-norm RMSNorm blocks, RoPE (plain,
 * linear or llama3 scaling), grouped-query attention, SwiGLU MLP, tied or untied LM head, optional
 * `attention_bias` / `mlp_bias`.
 *
 *   h = embed(ids)
 *   per layer:  h += o(attn(rope(q(n1(h))), rope(k(n1(h))), v(n1(h))))    n1 = input_layernorm
 *               h += down(silu(gate(n2(h))) · up(n2(h)))                    n2 = post_attention_layernorm
 *   hidden = norm(h)
 *
 * `nn.Linear` weights `[out, in]` stay as stored: each projection is one Gemm with transB. LoRA
 * branches attach per module (`q_proj`, `k_proj`, ...).
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import type { Value } from "../../onnx/graph.ts";
import type { Activation, ConfigReader, ModelConfig, RopeSpec } from "../config_base.ts";
import type { ArchSpec, FamilyInputs, FamilyOutputs } from "../arch.ts";
import { attention, rmsNorm } from "../layers.ts";
import { ropeTables } from "../rope.ts";
import {
  type DecoderBiases,
  decoderConfig,
  decoderLayers,
  decoderWeights,
  EMBEDDING,
  gatedMlp,
  headWeight,
  PROJECTIONS,
  projections,
  ROTARY_BUFFERS,
} from "./_decoder.ts";

/** A Llama-style config (also Qwen2's: the same graph with other biases). */
export interface LlamaConfig extends ModelConfig {
  arch: "llama" | "qwen2";
  activation: Activation;
  /** Biases on q, k, v (Llama: `attention_bias`; Qwen2: always). */
  qkvBias: boolean;
  /** Bias on o (Llama: `attention_bias`; Qwen2: never). */
  oBias: boolean;
  /** Biases in the MLP (Llama: `mlp_bias`; Qwen2: never). */
  mlpBias: boolean;
  rope: RopeSpec;
}

/** The projections' biases of a Llama-style config. */
function biases(c: LlamaConfig): DecoderBiases {
  return { qkv: c.qkvBias, o: c.oBias, mlp: c.mlpBias };
}

/** The per-layer norms (name → size). */
function norms(c: ModelConfig): [string, number][] {
  return [["input_layernorm", c.hiddenSize], ["post_attention_layernorm", c.hiddenSize]];
}

/** The Llama block stack (Qwen2's too: the same graph with q/k/v biases). */
export function buildLlama(f: FamilyInputs, c: LlamaConfig): FamilyOutputs {
  const { mb } = f;
  const rope = ropeTables(mb.g, f.positions, c.headDim, c.rope);
  const norm = (x: Value, name: string) => rmsNorm(x, mb.bias32(`${name}.weight`), c.normEps);
  const present: FamilyOutputs["present"] = [];
  let h = mb.embed(EMBEDDING, f.inputIds);
  for (const [i, l] of decoderLayers(c, biases(c)).entries()) {
    h = mb.layer(h, (x) => {
      const a = norm(x, `${l.prefix}.input_layernorm`);
      const att = attention(mb.linear(a, l.q), mb.linear(a, l.k), mb.linear(a, l.v), f.attention(i), { rope });
      present.push({ key: att.key, value: att.value });
      const y = op.add(x, mb.linear(att.out, l.o));
      return op.add(y, gatedMlp(mb, norm(y, `${l.prefix}.post_attention_layernorm`), l, c.activation));
    });
  }
  return { hidden: norm(h, "model.norm"), head: headWeight(mb), present };
}

/** The parts of the Llama and Qwen2 specs that are the same. */
export function llamaStyleSpec(
  name: string,
  hfClass: string,
  parseConfig: (r: ConfigReader) => LlamaConfig,
): ArchSpec<LlamaConfig> {
  return {
    name,
    hfClass,
    parseConfig,
    weights: (c) => decoderWeights(c, decoderLayers(c, biases(c)), () => norms(c)),
    embedding: EMBEDDING,
    buffers: ROTARY_BUFFERS,
    loraModules: (c) => decoderLayers(c, biases(c)).flatMap(projections),
    defaultTargets: PROJECTIONS,
    positions: "rotary",
    attentionWindows: (c) => new Array(c.numLayers).fill(null),
    build: buildLlama,
  };
}

/** Llama's config.json. */
function parseLlamaConfig(r: ConfigReader): LlamaConfig {
  const base = decoderConfig(r, "llama", {
    maxPositions: 2048,
    eps: 1e-6,
    tie: false,
    activationKey: "hidden_act",
    activation: "silu",
  });
  const attentionBias = r.bool("attention_bias", false);
  return {
    ...base,
    qkvBias: attentionBias,
    oBias: attentionBias,
    mlpBias: r.bool("mlp_bias", false),
    rope: r.rope(),
  };
}

/** The Llama family. */
export const LLAMA: ArchSpec<LlamaConfig> = llamaStyleSpec("Llama", "LlamaForCausalLM", parseLlamaConfig);
