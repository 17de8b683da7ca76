/**
 * The WebGPU path (KV cache as gpu-buffer tensors fed back between steps, LoRA slots uploaded once)
 * on one model with GQA and RoPE. lavapipe compiles shaders per new shape, so few tokens.
 */

import assert from "node:assert/strict";
import process from "node:process";
import { KvDecoder } from "../../src/generate/decoder.ts";
import { Generator } from "../../src/generate/generator.ts";
import { localFiles } from "../../src/io/files.ts";
import { readAdapter } from "../../src/lora/adapter.ts";
import { loadModel } from "../../src/models/load.ts";
import { probeWebGpu, resolveBackend } from "../../src/runtime/backend.ts";
import { Engine } from "../../src/runtime/session.ts";
import { checkGolden, DECODER_LOGIT_TOL, FIXTURES, goldenLogits, greedyByRecompute } from "./_support.ts";

const probe = await probeWebGpu();
const ci = process.env.CI === "true";
if (!probe.available && !ci) console.warn(`skipping the WebGPU generation tests: ${probe.reason}`);

Deno.test({
  name: "tiny-llama (webgpu): golden logits, cached greedy = recomputation = wasm, adapter slots, no cache leak",
  ignore: !probe.available && !ci,
  async fn() {
    await resolveBackend("webgpu"); // fails under CI when there is no adapter
    const gpu = await Engine.create("webgpu");
    const cpu = await Engine.create("wasm");
    const model = await loadModel(FIXTURES + "tiny-llama");
    const adapter = await readAdapter(`${FIXTURES}tiny-llama/adapter`, localFiles(), model.config);

    const decoder = await KvDecoder.create(gpu, model);
    try {
      const d = await checkGolden(decoder, await goldenLogits("tiny-llama"), DECODER_LOGIT_TOL.webgpu);
      console.log(`  max |logit diff| ${d.toExponential(2)}`);
      // The cache lives on the GPU: one key and one value tensor per layer, old ones disposed.
      assert.equal(decoder.gpuTensors, 2 * model.config.numLayers);
    } finally {
      await decoder.release();
    }

    const prompt = model.tokenizer.encode("The food was");
    const opts = { temperature: 0, maxNewTokens: 6, eosTokenIds: [] };
    const gen = await Generator.create(model, { engine: gpu, adapter });
    const ref = await Generator.create(model, { engine: cpu, adapter, merge: true });
    try {
      assert.equal(gen.backend, "webgpu");
      const withAdapter = (await gen.generate(prompt, opts)).sequences[0].tokenIds;
      assert.deepEqual(withAdapter, (await ref.generate(prompt, opts)).sequences[0].tokenIds);
      assert.deepEqual(withAdapter, await greedyByRecompute(gen, prompt, 6));

      await gen.setAdapter(null);
      await ref.setAdapter(null);
      const base = (await gen.generate(prompt, opts)).sequences[0].tokenIds;
      assert.deepEqual(base, (await ref.generate(prompt, opts)).sequences[0].tokenIds);
      assert.notDeepEqual(base, withAdapter);

      // Sampling reads the downloaded logits: same seed, same tokens as on wasm.
      const sampled = { temperature: 1, topK: 50, numSamples: 2, maxNewTokens: 4, seed: 3, eosTokenIds: [] };
      assert.deepEqual(
        (await gen.generate(prompt, sampled)).sequences.map((s) => s.tokenIds),
        (await ref.generate(prompt, sampled)).sequences.map((s) => s.tokenIds),
      );
    } finally {
      await Promise.all([gen.release(), ref.release()]);
    }
  },
});
