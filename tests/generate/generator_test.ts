import assert from "node:assert/strict";
import { KvDecoder } from "../../src/generate/decoder.ts";
import { Generator } from "../../src/generate/generator.ts";
import type { StreamEvent } from "../../src/generate/generator.ts";
import { localFiles } from "../../src/io/files.ts";
import { readAdapter } from "../../src/lora/adapter.ts";
import { loadModel } from "../../src/models/load.ts";
import { Engine } from "../../src/runtime/session.ts";
import { checkGolden, DECODER_LOGIT_TOL, FIXTURES, goldenLogits, greedyByRecompute, MODELS } from "./_support.ts";

const engine = await Engine.create("wasm");
const GREEDY = { temperature: 0, eosTokenIds: [] } as const;

for (const name of MODELS) {
  Deno.test(`${name} (wasm): prefill and cached decode reproduce the golden logits`, async () => {
    const model = await loadModel(FIXTURES + name);
    const decoder = await KvDecoder.create(engine, model);
    try {
      const d = await checkGolden(decoder, await goldenLogits(name), DECODER_LOGIT_TOL.wasm);
      console.log(`  max |logit diff| ${d.toExponential(2)}`);
    } finally {
      await decoder.release();
    }
  });

  Deno.test(`${name} (wasm): greedy with the KV cache equals greedy by full recomputation`, async () => {
    const model = await loadModel(FIXTURES + name);
    const gen = await Generator.create(model, { engine });
    try {
      const gold = await goldenLogits(name);
      for (const prompt of [gold.input_ids[0], model.tokenizer.encode("The food was")]) {
        const res = await gen.generate(prompt, { ...GREEDY, maxNewTokens: 16 });
        const seq = res.sequences[0];
        assert.equal(seq.tokenIds.length, 16);
        assert.equal(seq.finishReason, "length");
        assert.deepEqual(seq.tokenIds, await greedyByRecompute(gen, prompt, 16));
        assert.equal(seq.text, model.tokenizer.decode(seq.tokenIds, { skipSpecialTokens: true }));
        assert.equal(res.timings.decodeSteps, 15);
        assert.equal(res.timings.promptTokens, prompt.length);
        assert.ok(res.timings.prefillMs > 0 && res.timings.decodeMs > 0 && res.timings.decodeTokensPerSecond > 0);
      }
    } finally {
      await gen.release();
    }
  });
}

Deno.test("batch: prompts of different lengths (left-padded) and K samples per prompt equal their solo runs", async () => {
  const model = await loadModel(FIXTURES + "tiny-llama");
  const gen = await Generator.create(model, { engine });
  try {
    const prompts = [model.tokenizer.encode("The service was slow and the food"), model.tokenizer.encode("Great")];
    assert.notEqual(prompts[0].length, prompts[1].length);
    const batch = await gen.generate(prompts, { ...GREEDY, maxNewTokens: 10, numSamples: 2 });
    assert.equal(batch.sequences.length, 4);
    assert.equal(batch.timings.rows, 4);
    for (const [p, prompt] of prompts.entries()) {
      const solo = await gen.generate(prompt, { ...GREEDY, maxNewTokens: 10 });
      for (const k of [0, 1]) {
        const s = batch.sequences[p * 2 + k];
        assert.equal(s.prompt, p);
        assert.equal(s.sample, k);
        assert.deepEqual(s.promptIds, prompt);
        assert.deepEqual(s.tokenIds, solo.sequences[0].tokenIds, `prompt ${p} sample ${k}`);
      }
    }
    // Sampled: the K rows of one batch differ, and a seed reproduces all of them.
    const opts = { temperature: 1, topK: 40, numSamples: 4, maxNewTokens: 8, seed: 123, eosTokenIds: [] };
    const a = await gen.generate("The food", opts);
    const b = await gen.generate("The food", opts);
    const c = await gen.generate("The food", { ...opts, seed: 124 });
    assert.deepEqual(a.sequences.map((s) => s.tokenIds), b.sequences.map((s) => s.tokenIds));
    assert.equal(a.seed, 123);
    assert.ok(new Set(a.sequences.map((s) => s.tokenIds.join())).size > 1, "K samples should not all agree");
    assert.notDeepEqual(a.sequences.map((s) => s.tokenIds), c.sequences.map((s) => s.tokenIds));
  } finally {
    await gen.release();
  }
});

for (const name of ["tiny-gpt2", "tiny-llama"]) {
  Deno.test(`${name} (wasm): adapter unmerged equals merged; disabled equals the base model`, async () => {
    const model = await loadModel(FIXTURES + name);
    const adapter = await readAdapter(`${FIXTURES}${name}/adapter`, localFiles(), model.config);
    const base = await Generator.create(model, { engine });
    const unmerged = await Generator.create(model, { engine, adapter });
    const merged = await Generator.create(model, { engine, adapter, merge: true });
    try {
      const prompt = model.tokenizer.encode("I would not go back");
      const opts = { ...GREEDY, maxNewTokens: 12 };
      const baseIds = (await base.generate(prompt, opts)).sequences[0].tokenIds;
      const un = (await unmerged.generate(prompt, opts)).sequences[0].tokenIds;
      const mg = (await merged.generate(prompt, opts)).sequences[0].tokenIds;
      assert.deepEqual(un, mg);
      assert.notDeepEqual(un, baseIds, "the fixture adapter must change the output, or this test proves nothing");
      const seq = [prompt, [...prompt, ...un]];
      const lu = await unmerged.lastLogits(seq), lm = await merged.lastLogits(seq), lb = await base.lastLogits(seq);
      let dm = 0, db = 0;
      for (let i = 0; i < lu.length; i++) {
        dm = Math.max(dm, Math.abs(lu[i] - lm[i]));
        db = Math.max(db, Math.abs(lu[i] - lb[i]));
      }
      assert.ok(dm < 1e-4, `unmerged vs merged logits: ${dm}`);
      assert.ok(db > 1e-2, `adapter vs base logits differ by only ${db}`);

      await unmerged.setAdapter(null);
      assert.deepEqual((await unmerged.generate(prompt, opts)).sequences[0].tokenIds, baseIds);
      const off = await unmerged.lastLogits(seq);
      for (let i = 0; i < off.length; i++) assert.ok(Math.abs(off[i] - lb[i]) < 1e-5);
      await unmerged.setAdapter(adapter);
      assert.deepEqual((await unmerged.generate(prompt, opts)).sequences[0].tokenIds, un);
      await merged.setAdapter(null);
      assert.deepEqual((await merged.generate(prompt, opts)).sequences[0].tokenIds, baseIds);
    } finally {
      await Promise.all([base.release(), unmerged.release(), merged.release()]);
    }
  });
}

Deno.test("streaming yields the same tokens and text as generate; EOS, several EOS ids and stop strings end rows", async () => {
  const model = await loadModel(FIXTURES + "tiny-llama");
  const gen = await Generator.create(model, { engine });
  try {
    const opts = { temperature: 0.9, topP: 0.95, numSamples: 3, maxNewTokens: 12, seed: 9, stopStrings: ["e "] };
    const res = await gen.generate(["Nice place", "Bad"], opts);
    const events: StreamEvent[] = [];
    const it = gen.stream(["Nice place", "Bad"], opts);
    let r = await it.next();
    while (!r.done) {
      events.push(r.value);
      r = await it.next();
    }
    assert.deepEqual(r.value.sequences, res.sequences);
    for (const s of res.sequences) {
      const mine = events.filter((e) => e.index === s.index);
      assert.deepEqual(mine.map((e) => e.tokenId), s.tokenIds);
      assert.equal(mine.map((e) => e.text).join(""), s.text);
      assert.equal(mine.at(-1)!.finishReason, s.finishReason);
      assert.ok(mine.slice(0, -1).every((e) => e.finishReason === undefined));
      if (s.finishReason === "stop") assert.ok(!s.text.includes("e "));
    }

    // EOS: pick tokens of a greedy run as end-of-sequence ids.
    const prompt = model.tokenizer.encode("The food was");
    const free = (await gen.generate(prompt, { ...GREEDY, maxNewTokens: 12 })).sequences[0];
    const stopAt = (ids: number[]) => Math.min(...ids.map((id) => free.tokenIds.indexOf(id)));
    for (const eos of [[free.tokenIds[6]], [free.tokenIds[8], free.tokenIds[4]]]) {
      const s = (await gen.generate(prompt, { temperature: 0, maxNewTokens: 12, eosTokenIds: eos })).sequences[0];
      const j = stopAt(eos);
      assert.equal(s.finishReason, "eos");
      assert.deepEqual(s.tokenIds, free.tokenIds.slice(0, j + 1));
      assert.equal(s.text, model.tokenizer.decode(free.tokenIds.slice(0, j), { skipSpecialTokens: true }));
    }
    // A stop string from the middle of the greedy text.
    const at = Math.floor(free.text.length / 2);
    const stop = free.text.slice(at, at + 2);
    const s = (await gen.generate(prompt, { ...GREEDY, maxNewTokens: 12, stopStrings: [stop] })).sequences[0];
    assert.equal(s.finishReason, "stop");
    assert.equal(s.text, free.text.slice(0, free.text.indexOf(stop)));
    assert.ok(s.tokenIds.length < free.tokenIds.length);
    assert.deepEqual(s.tokenIds, free.tokenIds.slice(0, s.tokenIds.length));
  } finally {
    await gen.release();
  }
});

Deno.test("GPT-2 stops at its position table; the model's EOS id ends a sequence by default", async () => {
  const model = await loadModel(FIXTURES + "tiny-gpt2");
  const gen = await Generator.create(model, { engine });
  try {
    const long = Array.from({ length: 60 }, (_, i) => (i * 7) % 500);
    const s = (await gen.generate(long, { ...GREEDY, maxNewTokens: 10 })).sequences[0];
    assert.equal(s.tokenIds.length, 4);
    assert.equal(s.finishReason, "length");
    await assert.rejects(() => gen.generate(Array(64).fill(1), GREEDY), RangeError);
    await assert.rejects(() => gen.generate([], GREEDY), RangeError);
    await assert.rejects(() => gen.generate([600], GREEDY), RangeError);
    await assert.rejects(() => gen.generate("x", { numSamples: 0 }), RangeError);
    // Without eosTokenIds the model's own EOS ids apply (here: a copy whose generation config names one).
    const free = (await gen.generate([5, 6, 7], { ...GREEDY, maxNewTokens: 8 })).sequences[0].tokenIds;
    const eosModel = { ...model, generation: { ...model.generation, eosTokenIds: [free[3]] } };
    const eosGen = await Generator.create(eosModel, { engine });
    const s2 = (await eosGen.generate([5, 6, 7], { temperature: 0, maxNewTokens: 8 })).sequences[0];
    await eosGen.release();
    assert.equal(s2.finishReason, "eos");
    assert.deepEqual(s2.tokenIds, free.slice(0, free.indexOf(free[3]) + 1));
  } finally {
    await gen.release();
  }
});
