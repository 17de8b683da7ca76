/**
 * GPT-2 (`GPT2LMHeadModel`): learned absolute positions, pre-LayerNorm blocks, fused `c_attn`
 * projection, `gelu_new` MLP, LM head tied to the token embedding.
 *
 *   h = wte(ids) + wpe(positions)
 *   per layer:  h += c_proj(attn(split(c_attn(ln_1(h)))))
 *               h += mlp.c_proj(gelu(c_fc(ln_2(h))))
 *   hidden = ln_f(h)
 *
 * GPT-2's `Conv1D` weights are stored `[in, out]`, so they go into MatMul as they are (and PEFT
 * saves its adapters with `fan_in_fan_out`); the tied embedding `[vocab, hidden]` serves the token
 * lookup (Gather) and the LM head (Gemm with transB), so the 50k × 768 matrix is stored once.
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import type { Value } from "../../onnx/graph.ts";
import type { Activation, ConfigReader, ModelConfig } from "../config_base.ts";
import type { ArchSpec, FamilyInputs, FamilyOutputs } from "../arch.ts";
import { activation, attention, type LinearModule, linearWeights } from "../layers.ts";

/** GPT-2's config. */
export interface Gpt2Config extends ModelConfig {
  arch: "gpt2";
  activation: Activation;
}

const EMBEDDING = "transformer.wte.weight";

/** The modules of block i (Conv1D: `[in, out]`, with biases). */
function block(c: ModelConfig, i: number) {
  const prefix = `transformer.h.${i}`;
  const h = c.hiddenSize, inter = c.intermediateSize;
  const m = (name: string, inFeatures: number, outFeatures: number): LinearModule => ({
    name: `${prefix}.${name}`,
    inFeatures,
    outFeatures,
    layout: "in_out",
    bias: true,
  });
  return {
    prefix,
    attn: m("attn.c_attn", h, 3 * h),
    proj: m("attn.c_proj", h, h),
    fc: m("mlp.c_fc", h, inter),
    out: m("mlp.c_proj", inter, h),
  };
}

function blocks(c: ModelConfig) {
  return Array.from({ length: c.numLayers }, (_, i) => block(c, i));
}

function parseGpt2Config(r: ConfigReader): Gpt2Config {
  const hidden = r.posInt("n_embd");
  const heads = r.posInt("n_head");
  if (hidden > 0 && heads > 0 && hidden % heads !== 0) {
    r.problem(`n_embd ${hidden} is not divisible by n_head ${heads}`);
  }
  r.refuse("scale_attn_by_inverse_layer_idx", false, "scores are scaled by 1/sqrt(head_dim) only");
  r.refuse("scale_attn_weights", true, "scores are scaled by 1/sqrt(head_dim)");
  r.refuse("add_cross_attention", false, "a decoder-only model");
  return {
    arch: "gpt2",
    vocabSize: r.posInt("vocab_size"),
    hiddenSize: hidden,
    numLayers: r.posInt("n_layer"),
    numHeads: heads,
    numKvHeads: heads,
    headDim: heads > 0 ? Math.floor(hidden / heads) : 0,
    intermediateSize: r.posInt("n_inner", 4 * hidden),
    maxPositions: r.posInt("n_positions"),
    normEps: r.posNum("layer_norm_epsilon", 1e-5),
    activation: r.activation("activation_function", "gelu_new"),
    tieWordEmbeddings: r.bool("tie_word_embeddings", true),
    ...r.tokens(),
  };
}

function weights(c: Gpt2Config): Map<string, number[]> {
  const w = new Map<string, number[]>();
  w.set(EMBEDDING, [c.vocabSize, c.hiddenSize]);
  w.set("transformer.wpe.weight", [c.maxPositions, c.hiddenSize]);
  for (const b of blocks(c)) {
    for (const ln of ["ln_1", "ln_2"]) {
      w.set(`${b.prefix}.${ln}.weight`, [c.hiddenSize]);
      w.set(`${b.prefix}.${ln}.bias`, [c.hiddenSize]);
    }
    for (const m of [b.attn, b.proj, b.fc, b.out]) for (const [name, shape] of linearWeights(m)) w.set(name, shape);
  }
  w.set("transformer.ln_f.weight", [c.hiddenSize]);
  w.set("transformer.ln_f.bias", [c.hiddenSize]);
  w.set("lm_head.weight", [c.vocabSize, c.hiddenSize]);
  return w;
}

function build(f: FamilyInputs, c: Gpt2Config): FamilyOutputs {
  const { mb } = f;
  const H = c.hiddenSize;
  const W = mb.model.weights;
  const ln = (x: Value, name: string) =>
    op.layerNorm(x, mb.bias32(`${name}.weight`), mb.bias32(`${name}.bias`), -1, c.normEps);
  const present: FamilyOutputs["present"] = [];
  let h = op.add(mb.embed(EMBEDDING, f.inputIds), mb.embed("transformer.wpe.weight", f.positions));
  for (const [i, b] of blocks(c).entries()) {
    h = mb.layer(h, (x) => {
      const [q, k, v] = op.split(mb.linear(ln(x, `${b.prefix}.ln_1`), b.attn), [H, H, H], -1);
      const att = attention(q, k, v, f.attention(i), { rope: null });
      present.push({ key: att.key, value: att.value });
      const y = op.add(x, mb.linear(att.out, b.proj));
      return op.add(y, mb.linear(activation(mb.linear(ln(y, `${b.prefix}.ln_2`), b.fc), c.activation), b.out));
    });
  }
  const tied = W.get("lm_head.weight") === W.get(EMBEDDING);
  return { hidden: ln(h, "transformer.ln_f"), head: tied ? EMBEDDING : "lm_head.weight", present };
}

/** The GPT-2 family. */
export const GPT2: ArchSpec<Gpt2Config> = {
  name: "GPT-2",
  hfClass: "GPT2LMHeadModel",
  parseConfig: parseGpt2Config,
  weights,
  embedding: EMBEDDING,
  // The original OpenAI upload has no `transformer.` prefix.
  renameWeights: (names) =>
    !names.has(EMBEDDING) && names.has("wte.weight") ? (n) => (n === "lm_head.weight" ? n : `transformer.${n}`) : null,
  buffers: /\.attn\.(bias|masked_bias)$/,
  loraModules: (c) => blocks(c).flatMap((b) => [b.attn, b.proj, b.fc, b.out]),
  defaultTargets: ["c_attn", "c_proj", "c_fc"],
  positions: "learned",
  attentionWindows: (c) => new Array(c.numLayers).fill(null),
  build,
};
