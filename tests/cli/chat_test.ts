/**
 * Chat end to end on a tiny Qwen2-family model with Qwen2.5's template: `generate --chat` feeds the
 * templated conversation, `generate --prompts` with conversational prompts writes TRL's
 * conversational reward format, and the trainer tunes on conversational pairs.
 */

import assert from "node:assert/strict";
import { run as generate } from "../../src/cli/generate.ts";
import { validateAll } from "../../src/data/formats.ts";
import { Generator } from "../../src/generate/generator.ts";
import { applyChatTemplate } from "../../src/models/chat_template.ts";
import { loadModel } from "../../src/models/load.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { writeChatModel } from "../support/chat_model.ts";

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [], err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    return { code: await fn(), out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

const CHAT = [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello world" }];

Deno.test("generate --chat: the templated conversation is the prompt (greedy equals the library on the same ids)", async () => {
  const dir = await writeChatModel();
  try {
    await Deno.writeTextFile(`${dir}/chat.json`, JSON.stringify(CHAT));
    const args = ["--model", dir, "--chat", `${dir}/chat.json`, "--temperature", "0", "--max-new-tokens", "6"];
    const r = await capture(() => generate([...args, "--backend", "wasm", "--json"]));
    assert.equal(r.code, 0, r.err.join("\n"));
    const got = JSON.parse(r.out[0]);
    assert.deepEqual(got.prompt, CHAT);
    const model = await loadModel(dir);
    const ids = applyChatTemplate(model.tokenizer, CHAT, { addGenerationPrompt: true });
    const header = [512, ...model.tokenizer.encode("assistant\n", { addSpecialTokens: false })];
    assert.deepEqual(ids.slice(-header.length), header);
    const gen = await Generator.create(model, { backend: "wasm" });
    try {
      const want = await gen.generate(ids, { temperature: 0, maxNewTokens: 6 });
      assert.deepEqual(got.token_ids, [want.sequences[0].tokenIds]);
      // The plain text prompt (no template) continues differently: the template mattered.
      const plain = await gen.generate("Hello world", { temperature: 0, maxNewTokens: 6 });
      assert.notDeepEqual(plain.sequences[0].tokenIds, want.sequences[0].tokenIds);
    } finally {
      await gen.release();
    }
    const bad = await capture(() => generate(["--model", dir, "--chat", `${dir}/chat.json`, "--prompt", "x"]));
    assert.equal(bad.code, 2);
    assert.match(bad.err.join("\n"), /exactly one of --prompt STR, --chat FILE or --prompts FILE/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("generate --prompts with conversational prompts writes TRL's conversational reward format", async () => {
  const dir = await writeChatModel();
  try {
    await Deno.writeTextFile(`${dir}/prompts.jsonl`, JSON.stringify({ prompt: CHAT }) + "\n");
    const r = await capture(() =>
      generate([
        "--model",
        dir,
        "--prompts",
        `${dir}/prompts.jsonl`,
        "--out",
        `${dir}/out.jsonl`,
        "--num-samples",
        "2",
        "--max-new-tokens",
        "4",
        "--seed",
        "3",
        "--backend",
        "wasm",
      ])
    );
    assert.equal(r.code, 0, r.err.join("\n"));
    const line = JSON.parse(await Deno.readTextFile(`${dir}/out.jsonl`));
    assert.deepEqual(line.prompt, CHAT);
    assert.equal(line.completions.length, 2);
    assert.equal(line.completions[0][0].role, "assistant");
    assert.deepEqual(line.rewards, [null, null]);
    const d = validateAll(await Deno.readTextFile(`${dir}/out.jsonl`), { file: "out.jsonl", forScoring: true });
    assert.equal(d.kind, "groups");
    assert.equal(d.conversational, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train on conversational pairs (implicit prompt): finite losses, TRL's metrics", async () => {
  const dir = await writeChatModel();
  try {
    const rows = ["great", "fine", "nice", "good"].map((w, i) =>
      JSON.stringify({
        chosen: [{ role: "user", content: `Review ${i}` }, { role: "assistant", content: `It was ${w}.` }],
        rejected: [{ role: "user", content: `Review ${i}` }, { role: "assistant", content: "It was bad." }],
      })
    );
    await Deno.writeTextFile(`${dir}/pairs.jsonl`, rows.join("\n") + "\n");
    const trainer = await Trainer.create({
      model: dir,
      data: `${dir}/pairs.jsonl`,
      out: `${dir}/run`,
      batchSize: 2,
      maxSteps: 2,
      loraR: 2,
      lr: 1e-2,
      backend: "wasm",
    });
    const s = await trainer.train();
    assert.equal(s.steps, 2);
    assert.ok(Number.isFinite(s.finalLoss!));
    assert.ok("rewards/accuracies" in s.finalMetrics);
    assert.ok((await Deno.stat(`${dir}/run/adapter_model.safetensors`)).isFile);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("score on conversational pairs: log-probs of the templated completions", async () => {
  const { run: score } = await import("../../src/cli/score.ts");
  const dir = await writeChatModel();
  try {
    const row = {
      prompt: CHAT,
      chosen: [{ role: "assistant", content: "Hi." }],
      rejected: [{ role: "assistant", content: "No." }],
    };
    await Deno.writeTextFile(`${dir}/pairs.jsonl`, JSON.stringify(row) + "\n");
    const r = await capture(() =>
      score(["--model", dir, "--data", `${dir}/pairs.jsonl`, "--backend", "wasm", "--json"])
    );
    assert.equal(r.code, 0, r.err.join("\n"));
    const got = JSON.parse(r.out[0]);
    // The same numbers as the library's scorer on TRL's split of the templated conversation.
    const model = await loadModel(dir);
    const { Scorer } = await import("../../src/models/score.ts");
    const promptIds = applyChatTemplate(model.tokenizer, CHAT, { addGenerationPrompt: true });
    const full = applyChatTemplate(model.tokenizer, [...CHAT, row.chosen[0]]);
    const scorer = await Scorer.create(model, { backend: "wasm" });
    try {
      const [lp] = await scorer.score([{ promptIds, completionIds: full.slice(promptIds.length) }]);
      // The same float32 graph on the same ids; the CLI pads chosen and rejected into one batch,
      // which could reorder float32 sums (~1e-7 relative): observed difference 0 on wasm.
      assert.ok(Math.abs(got.chosen_logp - lp) < 1e-5, `${got.chosen_logp} vs ${lp}`);
    } finally {
      await scorer.release();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
