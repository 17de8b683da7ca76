/**
 * Qwen3 (`Qwen3ForCausalLM`): the Llama block with a per-head RMSNorm on queries and keys.
 *
 *   h = embed(ids)
 *   per layer:  a = n1(h)                                      n1 = input_layernorm
 *               q = rope(q_norm(q_proj(a))),  k = rope(k_norm(k_proj(a)))   (per head, before RoPE)
 *               h += o_proj(attn(q, k, v_proj(a)))                          scores · head_dim^-0.5
 *               h += down(silu(gate(n2(h))) · up(n2(h)))       n2 = post_attention_layernorm
 *   hidden = norm(h)
 *
 * `q_norm` and `k_norm` are RMSNorms over one head (`w · x / sqrt(mean(x²) + eps)`, weights of
 * `head_dim`), applied to every head. `head_dim` is explicit (default 128) and need not be
 * `hidden_size / num_attention_heads`: `q_proj` is `[heads · head_dim, hidden]`.
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

/** Qwen3's config. */
export interface Qwen3Config extends ModelConfig {
  arch: "qwen3";
  activation: Activation;
  /** `attention_bias`: biases on q, k, v and o. */
  attentionBias: boolean;
  rope: RopeSpec;
}

function biases(c: Qwen3Config): DecoderBiases {
  return { qkv: c.attentionBias, o: c.attentionBias, mlp: false };
}

function parseConfig(r: ConfigReader): Qwen3Config {
  r.refuse("use_sliding_window", false, "every layer attends to the full context");
  const base = decoderConfig(r, "qwen3", {
    maxPositions: 32768,
    eps: 1e-6,
    tie: false,
    headDim: 128,
    activationKey: "hidden_act",
    activation: "silu",
  });
  return { ...base, attentionBias: r.bool("attention_bias", false), rope: r.rope() };
}

function build(f: FamilyInputs, c: Qwen3Config): FamilyOutputs {
  const { mb } = f;
  const rope = ropeTables(mb.g, f.positions, c.headDim, c.rope);
  const norm = (x: Value, name: string) => rmsNorm(x, mb.bias32(`${name}.weight`), c.normEps);
  const present: FamilyOutputs["present"] = [];
  let h = mb.embed(EMBEDDING, f.inputIds);
  for (const [i, l] of decoderLayers(c, biases(c)).entries()) {
    h = mb.layer(h, (x) => {
      const a = norm(x, `${l.prefix}.input_layernorm`);
      const att = attention(mb.linear(a, l.q), mb.linear(a, l.k), mb.linear(a, l.v), f.attention(i), {
        rope,
        qNorm: (q) => norm(q, `${l.prefix}.self_attn.q_norm`),
        kNorm: (k) => norm(k, `${l.prefix}.self_attn.k_norm`),
      });
      present.push({ key: att.key, value: att.value });
      const y = op.add(x, mb.linear(att.out, l.o));
      return op.add(y, gatedMlp(mb, norm(y, `${l.prefix}.post_attention_layernorm`), l, c.activation));
    });
  }
  return { hidden: norm(h, "model.norm"), head: headWeight(mb), present };
}

/** The Qwen3 family. */
export const QWEN3: ArchSpec<Qwen3Config> = {
  name: "Qwen3",
  hfClass: "Qwen3ForCausalLM",
  parseConfig,
  weights: (c) =>
    decoderWeights(c, decoderLayers(c, biases(c)), () => [
      ["input_layernorm", c.hiddenSize],
      ["post_attention_layernorm", c.hiddenSize],
      ["self_attn.q_norm", c.headDim],
      ["self_attn.k_norm", c.headDim],
    ]),
  embedding: EMBEDDING,
  buffers: ROTARY_BUFFERS,
  loraModules: (c) => decoderLayers(c, biases(c)).flatMap(projections),
  defaultTargets: PROJECTIONS,
  positions: "rotary",
  attentionWindows: (c) => new Array(c.numLayers).fill(null),
  build,
};
