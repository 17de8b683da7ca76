import assert from "node:assert/strict";
import { memoryFiles } from "../../src/io/files.ts";
import type { TensorData } from "../../src/onnx/graph.ts";
import { loadModel } from "../../src/models/load.ts";
import { serializeSafetensors } from "../../src/models/safetensors.ts";
import { engineFor, fixtureModel, FIXTURES, golden, maxLogitDiff, REVIEW_GPT2, runLogits } from "./_helpers.ts";

/** A fixture directory in memory, with some files replaced (null removes a file). */
async function variant(
  model: string,
  edit: {
    config?: (c: Record<string, unknown>) => void;
    weights?: (w: Map<string, TensorData>) => void;
    files?: Record<string, string | null>;
  },
) {
  const dir = `${FIXTURES}${model}`;
  const files: Record<string, Uint8Array | string> = {};
  for (const f of ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]) {
    files[`m/${f}`] = await Deno.readTextFile(`${dir}/${f}`);
  }
  const config = JSON.parse(files["m/config.json"] as string);
  edit.config?.(config);
  files["m/config.json"] = JSON.stringify(config);
  const base = await fixtureModel(model);
  const weights = new Map<string, TensorData>();
  for (const [k, v] of base.weights) {
    if (k === "lm_head.weight" && base.config.tieWordEmbeddings) continue;
    weights.set(k, v);
  }
  edit.weights?.(weights);
  files["m/model.safetensors"] = serializeSafetensors(weights, { format: "pt" });
  for (const [k, v] of Object.entries(edit.files ?? {})) {
    if (v === null) delete files[`m/${k}`];
    else files[`m/${k}`] = v;
  }
  return memoryFiles(files);
}

Deno.test("load: fixture models have the config, tied head, tokenizer and generation defaults", async () => {
  const gpt2 = await fixtureModel("tiny-gpt2");
  assert.equal(gpt2.arch, "gpt2");
  assert.equal(gpt2.weights.get("lm_head.weight"), gpt2.weights.get("transformer.wte.weight"));
  assert.deepEqual(gpt2.generation.eosTokenIds, [511]);
  const llama = await fixtureModel("tiny-llama");
  const v4 = await fixtureModel("tiny-llama-v4");
  assert.notEqual(llama.weights.get("lm_head.weight"), llama.weights.get("model.embed_tokens.weight"));
  assert.deepEqual(llama.config, { ...v4.config, dtype: llama.config.dtype });
  assert.deepEqual(llama.generation.eosTokenIds, [2]);
  assert.equal(llama.tokenizer.bosId, 1);
  const review = await fixtureModel(REVIEW_GPT2);
  assert.equal(review.config.vocabSize, 2048);
  assert.deepEqual(review.generation, {
    eosTokenIds: [0],
    bosTokenId: 0,
    padTokenId: 0,
    doSample: true,
    temperature: 0.8,
    topK: 0,
    topP: 1,
    maxNewTokens: 24,
  });
});

Deno.test("load: clear errors naming the file for missing or inconsistent pieces", async () => {
  await assert.rejects(loadModel("m", memoryFiles({})), /m\/config\.json not found/);
  await assert.rejects(
    loadModel("m", await variant("tiny-llama", { weights: (w) => w.delete("model.layers.1.mlp.up_proj.weight") })),
    /m\/model\.safetensors: 1 weight\(s\) missing .*model\.layers\.1\.mlp\.up_proj\.weight/,
  );
  await assert.rejects(
    loadModel("m", await variant("tiny-llama", { config: (c) => (c.intermediate_size = 96) })),
    /m\/model\.safetensors: model\.layers\.0\.mlp\.gate_proj\.weight has shape \[128, 64\] but m\/config\.json implies \[96, 64\]/,
  );
  await assert.rejects(
    loadModel("m", await variant("tiny-llama", { config: (c) => (c.num_hidden_layers = 1) })),
    /tensor\(s\) that this llama config .* does not use: model\.layers\.1\./,
  );
  await assert.rejects(
    loadModel("m", await variant("tiny-llama", { weights: (w) => w.delete("lm_head.weight") })),
    /lm_head\.weight \(config\.json says tie_word_embeddings: false/,
  );
  await assert.rejects(
    loadModel("m", await variant("tiny-gpt2", { config: (c) => (c.vocab_size = 256), weights: (w) => shrinkVocab(w) })),
    /tokenizer\.json has 512 tokens but the model's vocab_size is 256/,
  );
  await assert.rejects(
    loadModel("m", await variant("tiny-gpt2", { files: { "tokenizer.json": null } })),
    /m\/tokenizer\.json not found/,
  );
  await assert.rejects(
    loadModel("m", await variant("tiny-gpt2", { files: { "generation_config.json": '{"temperature": "hot"}' } })),
    /m\/generation_config\.json: "temperature" must be a number/,
  );
});

function shrinkVocab(w: Map<string, TensorData>): void {
  const wte = w.get("transformer.wte.weight")!;
  w.set("transformer.wte.weight", { ...wte, shape: [256, 64], data: wte.data.slice(0, 256 * 64) });
}

Deno.test("load: GPT-2 names without the transformer. prefix and attn.bias buffers load as usual", async () => {
  const files = await variant("tiny-gpt2", {
    weights: (w) => {
      for (const [k, v] of [...w]) {
        w.delete(k);
        w.set(k.replace(/^transformer\./, ""), v);
      }
      w.set("h.0.attn.bias", { dtype: "float32", shape: [1, 1, 2, 2], data: new Float32Array([1, 0, 1, 1]) });
    },
  });
  const model = await loadModel("m", files);
  const ref = await fixtureModel("tiny-gpt2");
  assert.deepEqual([...model.weights.keys()].sort(), [...ref.weights.keys()].sort());
});

Deno.test("load: a tied Llama head and Qwen2 (zero q/k/v biases) give the same logits as the untied Llama", async () => {
  const gold = await golden("tiny-llama");
  const e = await engineFor("wasm");
  const ref = await fixtureModel("tiny-llama");
  // Tied: lm_head := embed_tokens. Reference: the untied model with the same head.
  const tied = await loadModel(
    "m",
    await variant("tiny-llama", {
      config: (c) => (c.tie_word_embeddings = true),
      weights: (w) => w.delete("lm_head.weight"),
    }),
  );
  const untiedSame = await loadModel(
    "m",
    await variant("tiny-llama", { weights: (w) => w.set("lm_head.weight", w.get("model.embed_tokens.weight")!) }),
  );
  const a = await runLogits(e, tied, gold.logits.input_ids);
  const b = await runLogits(e, untiedSame, gold.logits.input_ids);
  assert.equal(a.length, 2 * gold.logits.input_ids[0].length * 512, "logits of every position");
  assert.equal(b.length, a.length);
  assert.ok(a.every((x, i) => Math.abs(x - b[i]) < 1e-5));
  // Qwen2 with zero biases equals Llama; a nonzero bias changes the logits.
  const qwen = (bias: number) =>
    variant("tiny-llama", {
      config: (c) => (c.model_type = "qwen2"),
      weights: (w) => {
        for (let i = 0; i < 2; i++) {
          for (const [n, size] of [["q", 64], ["k", 32], ["v", 32]] as const) {
            w.set(`model.layers.${i}.self_attn.${n}_proj.bias`, {
              dtype: "float32",
              shape: [size],
              data: new Float32Array(size).fill(bias),
            });
          }
        }
      },
    });
  const q0 = await runLogits(e, await loadModel("m", await qwen(0)), gold.logits.input_ids);
  assert.ok(maxLogitDiff(q0, gold, 512) < 1e-4);
  const q1 = await runLogits(e, await loadModel("m", await qwen(0.5)), gold.logits.input_ids);
  assert.ok(maxLogitDiff(q1, gold, 512) > 1e-2);
  assert.equal(ref.config.qkvBias, false);
});
