/**
 * A tiny Qwen2-family chat model for end-to-end tests of chat features: the `chat-qwen` fixture
 * tokenizer (ChatML turn tokens, Qwen2.5's template) with seeded random weights (hidden 16, one
 * layer, vocabulary 514 so the turn tokens have embeddings), written to a temporary directory.
 */

import { parseModelConfig } from "../../src/models/config.ts";
import { expectedWeights } from "../../src/models/load.ts";
import { serializeSafetensors } from "../../src/models/safetensors.ts";
import type { TensorData } from "../../src/onnx/graph.ts";
import { Rng } from "../../src/util/rng.ts";

const FIXTURE = new URL("../fixtures/chat-qwen/", import.meta.url).pathname;

/** Writes the model and returns its directory (the caller removes it). */
export async function writeChatModel(seed = 7): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "exo-chat-model-" });
  const config = {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    vocab_size: 514,
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    max_position_embeddings: 256,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000.0,
    hidden_act: "silu",
    tie_word_embeddings: true,
    eos_token_id: 513,
    torch_dtype: "float32",
    use_sliding_window: false,
  };
  const rng = new Rng(seed);
  const weights: Record<string, TensorData> = {};
  for (const [name, shape] of expectedWeights(parseModelConfig(config, "config.json"))) {
    if (name === "lm_head.weight") continue; // tied
    const n = shape.reduce((a, b) => a * b, 1);
    const data = name.endsWith("norm.weight")
      ? new Float32Array(n).fill(1)
      : Float32Array.from({ length: n }, () => rng.normal() * 0.5);
    weights[name] = { dtype: "float32", shape, data };
  }
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
  await Deno.writeTextFile(`${dir}/generation_config.json`, JSON.stringify({ eos_token_id: [513, 511] }));
  await Deno.writeFile(`${dir}/model.safetensors`, serializeSafetensors(weights));
  for (const f of ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]) {
    await Deno.copyFile(`${FIXTURE}${f}`, `${dir}/${f}`);
  }
  return dir;
}
