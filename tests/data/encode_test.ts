import assert from "node:assert/strict";
import fc from "fast-check";
import { readDataset, validateAll } from "../../src/data/formats.ts";
import { encodeDataset, encodePairs, type Tokenizer, truncateExample } from "../../src/data/encode.ts";
import { DataError } from "../../src/data/jsonl.ts";
import { loadTokenizer } from "../../src/models/tokenizer.ts";

const F = "data/pairs.jsonl";

/** One id per character (code + 10), BOS 1 prepended with special tokens (Llama-like), EOS 2. */
function charTokenizer(eosId: number | null = 2): Tokenizer {
  return {
    encode(text, options) {
      const ids = Array.from(text, (c) => c.codePointAt(0)! + 10);
      return (options?.addSpecialTokens ?? true) ? [1, ...ids] : ids;
    },
    eosId,
    vocabSize: 200,
  };
}

Deno.test("text: prompt with special tokens, completion without, then EOS", () => {
  const d = validateAll('{"prompt": "ab", "chosen": "c", "rejected": "de"}', { file: F });
  const e = encodeDataset(d, charTokenizer());
  assert.equal(e.kind, "pairs");
  assert.deepEqual(e.examples, [{
    promptIds: [1, 107, 108],
    chosenIds: [109, 2],
    rejectedIds: [110, 111, 2],
    line: 1,
  }]);
  const noEos = encodeDataset(d, charTokenizer(), { appendEos: false });
  assert.deepEqual(noEos.examples, [{ promptIds: [1, 107, 108], chosenIds: [109], rejectedIds: [110, 111], line: 1 }]);

  const g = validateAll('{"prompt": "a", "completions": ["b", "cd"], "rewards": [1, 0]}\n', { file: F });
  assert.deepEqual(encodeDataset(g, charTokenizer()).examples, [
    { promptIds: [1, 107], completionIds: [[108, 2], [109, 110, 2]], rewards: [1, 0], line: 1 },
  ]);
  const pc = validateAll('{"prompt": "a", "completion": "b"}\n{"prompt": "c", "completion": "d"}', { file: F });
  assert.deepEqual(encodeDataset(pc, charTokenizer()).examples[1], {
    promptIds: [1, 109],
    completionIds: [110, 2],
    line: 2,
  });
  const pr = validateAll('{"prompt": "ab"}', { file: F });
  assert.deepEqual(encodeDataset(pr, charTokenizer()).examples, [{ promptIds: [1, 107, 108], line: 1 }]);
});

Deno.test("pre-tokenized ids are used verbatim, no tokenizer needed", async () => {
  const d = await readDataset("tests/fixtures/pairs.jsonl");
  const e = encodeDataset(d, null);
  assert.equal(e.kind, "pairs");
  assert.deepEqual(e.examples[0], {
    promptIds: [292, 95, 1],
    chosenIds: [16, 262, 298],
    rejectedIds: [121, 198, 299, 390, 327],
    line: 1,
  });
  const g = encodeDataset(await readDataset("tests/fixtures/rewards.jsonl"), { ...charTokenizer(), vocabSize: 512 });
  assert.equal(g.kind, "groups");
  assert.deepEqual(g.examples[1].completionIds[2], [277, 16]); // the tokenizer's EOS is not appended to ids
});

Deno.test("encoding errors name file, line and field", () => {
  const text = validateAll(`{"prompt": "a", "chosen": "b", "rejected": "c"}`, { file: F });
  assert.throws(() => encodeDataset(text, null), {
    message:
      'data/pairs.jsonl:1: field "prompt": the data is text but no tokenizer was given: pass the model\'s tokenizer, or pre-tokenize into *_ids fields',
  });
  assert.throws(() => encodeDataset(text, charTokenizer(null)), {
    message:
      'data/pairs.jsonl:1: field "chosen": the tokenizer has no EOS token to end completions with: set eos_token in tokenizer_config.json or pass appendEos: false',
  });
  const noSpecials: Tokenizer = { ...charTokenizer(), encode: (t) => Array.from(t, () => 50) };
  const empty = validateAll(
    `{"prompt": "", "chosen": "b", "rejected": "c"}\n{"prompt": "", "chosen": "b", "rejected": "c"}`,
    { file: F },
  );
  assert.throws(() => encodeDataset(empty, noSpecials), {
    message:
      'data/pairs.jsonl: 2 errors:\n  data/pairs.jsonl:1: field "prompt": empty prompt after tokenization: the first completion token needs at least one token before it\n  data/pairs.jsonl:2: field "prompt": empty prompt after tokenization: the first completion token needs at least one token before it',
  });
  const ids = validateAll(`{"prompt_ids": [1], "chosen_ids": [5, 250], "rejected_ids": [3]}`, { file: F });
  assert.throws(() => encodeDataset(ids, charTokenizer()), (e: DataError) => {
    assert.equal(
      e.message,
      'data/pairs.jsonl:1: field "chosen_ids[1]": token id 250 is out of the vocabulary (size 200)',
    );
    assert.deepEqual([e.line, e.field], [1, "chosen_ids[1]"]);
    return true;
  });
  const groupIds = validateAll(`{"prompt_ids": [1], "completions_ids": [[5], [7, 250]], "rewards": [0, 1]}`, {
    file: F,
  });
  assert.throws(() => encodeDataset(groupIds, null, { vocabSize: 200 }), {
    message: 'data/pairs.jsonl:1: field "completions_ids[1][1]": token id 250 is out of the vocabulary (size 200)',
  });
  assert.throws(() => encodeDataset(ids, null, { maxLength: 1 }), { name: "RangeError" });
});

const idsArb = (min: number, max: number) => fc.array(fc.nat(1000), { minLength: min, maxLength: max });

Deno.test("truncation: length bound, prompt suffix, completion prefix, tight and minimal", () => {
  fc.assert(
    fc.property(
      idsArb(1, 40),
      fc.array(idsArb(1, 40), { minLength: 1, maxLength: 4 }),
      fc.integer({ min: 2, max: 80 }),
      (p, cs, max) => {
        const t = truncateExample(p, cs, max);
        const longest = Math.max(...cs.map((c) => c.length));
        // Bound, and at least one prompt token.
        assert.ok(t.completions.every((c) => t.promptIds.length + c.length <= max));
        assert.ok(t.promptIds.length >= 1);
        // The prompt keeps its end, completions their start.
        assert.deepEqual(t.promptIds, p.slice(p.length - t.promptIds.length));
        t.completions.forEach((c, i) => assert.deepEqual(c, cs[i].slice(0, c.length)));
        assert.equal(t.promptCut, p.length - t.promptIds.length);
        assert.deepEqual(t.completionCuts, cs.map((c, i) => c.length - t.completions[i].length));
        if (p.length + longest <= max) {
          // Fits: nothing cut.
          assert.equal(t.promptCut, 0);
          assert.deepEqual(t.completions, cs);
        } else {
          // Cut just enough: the longest sequence fills the context exactly.
          assert.equal(Math.max(...t.completions.map((c) => t.promptIds.length + c.length)), max);
          // The prompt goes first: a completion is cut only once the prompt is down to 1 token or not cut at all.
          if (t.completionCuts.some((c) => c > 0)) assert.ok(t.promptIds.length === 1 || t.promptCut === 0);
          // A cut completion was the reason: it did not fit beside the kept prompt.
          if (t.completionCuts.some((c) => c > 0)) assert.ok(t.promptIds.length + longest > max);
        }
        // Inputs untouched.
        assert.ok(t.promptIds !== p);
      },
    ),
    { numRuns: 500 },
  );
  assert.deepEqual(truncateExample([1, 2, 3, 4, 5], [[6, 7], [8]], 4), {
    promptIds: [4, 5],
    completions: [[6, 7], [8]],
    promptCut: 3,
    completionCuts: [0, 0],
  });
  assert.deepEqual(truncateExample([1, 2, 3], [[6, 7, 8, 9, 10], [8]], 4), {
    promptIds: [3],
    completions: [[6, 7, 8], [8]],
    promptCut: 2,
    completionCuts: [2, 0],
  });
});

Deno.test("truncation counts add up over a dataset", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(idsArb(1, 12), idsArb(1, 12), idsArb(1, 12)), { minLength: 1, maxLength: 20 }),
      fc.integer({ min: 2, max: 20 }),
      (rows, max) => {
        const records = rows.map(([prompt, chosen, rejected], i) => ({ line: i + 1, prompt, chosen, rejected }));
        const { examples, truncation } = encodePairs(records, null, { maxLength: max });
        let prompts = 0, completions = 0, any = 0, droppedP = 0, droppedC = 0;
        rows.forEach(([p, c, r], i) => {
          const e = examples[i];
          const cuts = [c.length - e.chosenIds.length, r.length - e.rejectedIds.length];
          const pc = p.length - e.promptIds.length;
          prompts += pc > 0 ? 1 : 0;
          completions += cuts.filter((x) => x > 0).length;
          any += pc > 0 || cuts.some((x) => x > 0) ? 1 : 0;
          droppedP += pc;
          droppedC += cuts[0] + cuts[1];
          assert.ok(e.promptIds.length + Math.max(e.chosenIds.length, e.rejectedIds.length) <= max);
        });
        assert.deepEqual(truncation, {
          maxLength: max,
          examples: rows.length,
          truncatedExamples: any,
          truncatedPrompts: prompts,
          truncatedCompletions: completions,
          droppedPromptTokens: droppedP,
          droppedCompletionTokens: droppedC,
        });
      },
    ),
    { numRuns: 200 },
  );
  const none = encodePairs([{ line: 1, prompt: [1], chosen: [2], rejected: [3] }], null);
  assert.equal(none.truncation.maxLength, null);
  assert.equal(none.truncation.truncatedExamples, 0);
});

Deno.test("review-gpt2 data follows data/README.md's tokenization contract", async () => {
  const tok = await loadTokenizer("models/review-gpt2");
  assert.equal(tok.eosId, 0);
  const eos = tok.eosId!;
  let longest = 0, joint = 0, samples = 0, promptTokens = 0, completionTokens = 0, longestPrompt = 0;
  for (const path of ["data/rewards.jsonl", "data/rewards-test.jsonl"]) {
    const d = await readDataset(path);
    const e = encodeDataset(d, tok, { maxLength: 128 });
    assert.ok(d.kind === "groups" && e.kind === "groups");
    assert.equal(e.truncation.truncatedExamples, 0); // README: the longest is 49 tokens, within n_positions 128
    e.examples.forEach((ex, i) => {
      const r = d.records[i];
      // input_ids = tok(prompt) + tok(completion) + [eos]: no BOS, eos last.
      assert.deepEqual(ex.promptIds, tok.encode(r.prompt as string, { addSpecialTokens: false }));
      assert.notEqual(ex.promptIds[0], eos);
      for (const [k, c] of ex.completionIds.entries()) {
        assert.equal(c[c.length - 1], eos);
        assert.equal(c.indexOf(eos), c.length - 1);
        assert.equal(tok.decode(c.slice(0, -1)), r.completions[k]);
        longest = Math.max(longest, ex.promptIds.length + c.length);
        if (path === "data/rewards.jsonl") {
          samples++;
          completionTokens += c.length - 1;
          const together = tok.encode((r.prompt as string) + r.completions[k], { addSpecialTokens: false });
          if (together.join() === [...ex.promptIds, ...c.slice(0, -1)].join()) joint++;
        }
      }
      if (path === "data/rewards.jsonl") {
        promptTokens += ex.promptIds.length;
        longestPrompt = Math.max(longestPrompt, ex.promptIds.length);
      }
    });
  }
  // pairs.jsonl encodes like rewards.jsonl: chosen is the highest-reward and rejected the lowest-reward
  // completion of the same prompt's group (README, "Pairs").
  const groups = encodeDataset(await readDataset("data/rewards.jsonl"), tok);
  const pairs = encodeDataset(await readDataset("data/pairs.jsonl"), tok);
  assert.ok(groups.kind === "groups" && pairs.kind === "pairs");
  const byPrompt = new Map(groups.examples.map((g) => [g.promptIds.join(), g]));
  for (const p of pairs.examples) {
    const g = byPrompt.get(p.promptIds.join())!;
    const best = g.rewards.indexOf(Math.max(...g.rewards)), worst = g.rewards.indexOf(Math.min(...g.rewards));
    assert.deepEqual([p.chosenIds, p.rejectedIds], [g.completionIds[best], g.completionIds[worst]], `line ${p.line}`);
  }
  assert.equal(pairs.examples.length, 761);

  // Numbers from data/README.md and data/stats.json (train split).
  assert.equal(longest, 49);
  assert.equal(longestPrompt, 24);
  // README says prompts average 8.4 tokens: 8.49 over the training prompts, 8.45 over all 1,037.
  assert.ok(Math.abs(promptTokens / 843 - 8.4) < 0.1, `${promptTokens / 843}`);
  assert.equal((completionTokens / samples).toFixed(1), "11.4");
  // Separate tokenization differs from tok(prompt + completion) at a few word boundaries; stats.json's
  // roundtrip_joint (3294 of 3372, compared against the sampled ids) bounds how many.
  assert.ok(joint >= 3294 && joint < 3372, `${joint}`);
});

const CHAT = new URL("../fixtures/", import.meta.url).pathname;

Deno.test("conversational pairs: TRL's split of the templated conversation (Qwen's ChatML), no EOS appended", async () => {
  const tok = await loadTokenizer(`${CHAT}chat-qwen`);
  const golden = JSON.parse(await Deno.readTextFile(`${CHAT}chat-qwen/chat_golden.json`));
  // Case 2 of the transformers goldens: system, user, assistant, no generation prompt.
  const c = golden.cases[2];
  const [system, user, assistant] = c.messages;
  const line = JSON.stringify({
    prompt: [system, user],
    chosen: [assistant],
    rejected: [{ ...assistant, content: "no" }],
  });
  const e = encodeDataset(validateAll(line, { file: F }), tok);
  assert.equal(e.kind, "pairs");
  const ex = e.examples[0] as { promptIds: number[]; chosenIds: number[]; rejectedIds: number[] };
  // prompt ids + chosen ids = apply_chat_template(prompt + chosen) exactly.
  assert.deepEqual([...ex.promptIds, ...ex.chosenIds], c.ids);
  const enc = (s: string) => tok.encode(s, { addSpecialTokens: false });
  // The prompt ends with the generation prompt; the completion is the answer and the end of the turn.
  assert.deepEqual(ex.promptIds.slice(-1 - enc("assistant\n").length), [512, ...enc("assistant\n")]);
  assert.deepEqual(ex.chosenIds, [...enc(assistant.content), 513, ...enc("\n")]);
  assert.deepEqual(ex.rejectedIds, [...enc("no"), 513, ...enc("\n")]);
  assert.deepEqual(e.warnings, []);
});

Deno.test("conversational reward groups and implicit prompts (Gemma's template)", async () => {
  const tok = await loadTokenizer(`${CHAT}chat-gemma`);
  const enc = (s: string) => tok.encode(s, { addSpecialTokens: false });
  const line = JSON.stringify({
    completions: [
      [{ role: "user", content: "Hello world" }, { role: "assistant", content: " great " }],
      [{ role: "user", content: "Hello world" }, { role: "assistant", content: "bad" }],
    ],
    rewards: [1, -1],
  });
  const e = encodeDataset(validateAll(line, { file: F }), tok);
  assert.equal(e.kind, "groups");
  const g = e.examples[0] as { promptIds: number[]; completionIds: number[][]; rewards: number[] };
  assert.deepEqual(g.promptIds, [2, 512, ...enc("user\nHello world"), 513, ...enc("\n"), 512, ...enc("model\n")]);
  // Gemma's template trims the content and ends the turn with <end_of_turn>\n.
  assert.deepEqual(g.completionIds, [[...enc("great"), 513, ...enc("\n")], [...enc("bad"), 513, ...enc("\n")]]);
  assert.deepEqual(g.rewards, [1, -1]);
  // The template's own refusal (roles must alternate) becomes an error naming the line.
  const bad = JSON.stringify({
    prompt: [{ role: "user", content: "a" }],
    chosen: [{ role: "user", content: "b" }],
    rejected: [{ role: "assistant", content: "c" }],
  });
  assert.throws(
    () => encodeDataset(validateAll(bad, { file: F }), tok),
    (err: Error) =>
      err instanceof DataError &&
      /pairs\.jsonl:1: field "chosen": the chat template refused the conversation: Conversation roles must alternate/
        .test(err.message),
  );
});

Deno.test("conversational data: no template is a clear error; a prompt rendered differently is a warning", () => {
  const line = JSON.stringify({
    prompt: [{ role: "user", content: "ab" }],
    chosen: [{ role: "assistant", content: "cd" }],
    rejected: [{ role: "assistant", content: "e" }],
  });
  const d = validateAll(line, { file: F });
  assert.throws(
    () => encodeDataset(d, charTokenizer()),
    /pairs\.jsonl:1: field "prompt": conversational data needs a chat template: this tokenizer has no chat template/,
  );
  // The generation prompt ">" is not what follows the prompt in the whole conversation.
  const tok: Tokenizer = {
    ...charTokenizer(),
    chatTemplate: "{% for m in messages %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}>{% endif %}",
  };
  const ids = (s: string) => Array.from(s, (ch) => ch.codePointAt(0)! + 10);
  assert.throws(
    () => encodeDataset(d, tok),
    /pairs\.jsonl:1: field "rejected": empty completion after applying the chat template/,
  );
  const ok = validateAll(line.replace('"e"', '"ef"'), { file: F });
  const e = encodeDataset(ok, tok);
  const ex = e.examples[0] as { promptIds: number[]; chosenIds: number[]; rejectedIds: number[] };
  // TRL cuts at the prompt's length: "ab>" | "d" and "ab>" | "f".
  assert.deepEqual([ex.promptIds, ex.chosenIds, ex.rejectedIds], [ids("ab>"), ids("d"), ids("f")]);
  assert.deepEqual(e.warnings.map((w) => w.field), ["chosen", "rejected"]);
  assert.match(
    e.warnings[0].message,
    /pairs\.jsonl:1: field "chosen": the chat template renders the prompt differently/,
  );
});

Deno.test("conversational pairs are tokenized exactly as TRL 1.13's DPOTrainer tokenizes them (explicit and implicit prompt)", async () => {
  const trl = JSON.parse(await Deno.readTextFile(`${CHAT}chat_trl_ids.json`));
  for (const m of ["chat-qwen", "chat-gemma"]) {
    const tok = await loadTokenizer(`${CHAT}${m}`);
    for (const f of ["explicit", "implicit"]) {
      const e = encodeDataset(await readDataset(`${CHAT}chat_${f}.jsonl`), tok);
      const ours = (e.examples as { promptIds: number[]; chosenIds: number[]; rejectedIds: number[] }[]).map((x) => ({
        prompt_ids: x.promptIds,
        chosen_ids: x.chosenIds,
        rejected_ids: x.rejectedIds,
      }));
      assert.deepEqual(ours, trl[m][f], `${m} ${f}`);
    }
  }
});
