/**
 * Generation on onnxruntime-node: native-cpu (in CI) and native-webgpu (where a GPU exists) against
 * the golden logits and against wasm: greedy tokens equal wasm's on every fixture model (with and
 * without an unmerged adapter), sampling with a seed draws the same tokens, and a left-padded batch
 * equals its rows run alone. On native-webgpu the KV cache must stay on the GPU.
 */

import assert from "node:assert/strict";
import { KvDecoder } from "../../src/generate/decoder.ts";
import { Generator } from "../../src/generate/generator.ts";
import { localFiles } from "../../src/io/files.ts";
import { readAdapter } from "../../src/lora/adapter.ts";
import { loadModel } from "../../src/models/load.ts";
import type { NativeBackendName } from "../../src/runtime/ort.ts";
import { Engine } from "../../src/runtime/session.ts";
import { nativeCpuOrSkip, nativeWebgpuOrSkip } from "../support/native.ts";
import { checkGolden, FIXTURES, goldenLogits, MODELS } from "./_support.ts";

const wasm = await Engine.create("wasm");
const available: Record<NativeBackendName, boolean> = {
  "native-cpu": await nativeCpuOrSkip(),
  "native-webgpu": await nativeWebgpuOrSkip(),
};
const GREEDY = { temperature: 0, eosTokenIds: [] } as const;

for (const backend of ["native-cpu", "native-webgpu"] as const) {
  for (const name of MODELS) {
    Deno.test({
      name: `${name} (${backend}): golden logits; greedy tokens, with and without an adapter, equal wasm's`,
      ignore: !available[backend],
      async fn() {
        const engine = await Engine.create(backend);
        const model = await loadModel(FIXTURES + name);
        const decoder = await KvDecoder.create(engine, model);
        try {
          // 1e-4: as the wasm and WebGPU decoders (measured ~1e-6 against transformers' float32 logits).
          await checkGolden(decoder, await goldenLogits(name), 1e-4);
          if (engine.deviceOutputs) assert.equal(decoder.gpuTensors, 2 * model.config.numLayers);
        } finally {
          await decoder.release();
        }
        const adapter = await readAdapter(`${FIXTURES}${name}/adapter`, localFiles(), model.config);
        const gen = await Generator.create(model, { engine, adapter });
        const ref = await Generator.create(model, { engine: wasm, adapter });
        try {
          assert.equal(gen.backend, backend);
          const prompts = [
            model.tokenizer.encode("The service was slow and the food"),
            model.tokenizer.encode("Great"),
          ];
          for (const withAdapter of [true, false]) {
            if (!withAdapter) await Promise.all([gen.setAdapter(null), ref.setAdapter(null)]);
            for (const p of prompts) {
              const got = (await gen.generate(p, { ...GREEDY, maxNewTokens: 12 })).sequences[0].tokenIds;
              const want = (await ref.generate(p, { ...GREEDY, maxNewTokens: 12 })).sequences[0].tokenIds;
              assert.deepEqual(got, want, `greedy, adapter ${withAdapter}, prompt of ${p.length} tokens`);
            }
          }
          // A left-padded batch of two prompts, two samples each, with a seed: the same draws as wasm.
          const sampled = { temperature: 1, topK: 50, numSamples: 2, maxNewTokens: 6, seed: 3, eosTokenIds: [] };
          assert.deepEqual(
            (await gen.generate(prompts, sampled)).sequences.map((s) => s.tokenIds),
            (await ref.generate(prompts, sampled)).sequences.map((s) => s.tokenIds),
          );
        } finally {
          await Promise.all([gen.release(), ref.release()]);
        }
      },
    });
  }
}
