import assert from "node:assert/strict";
import { run as tokenize } from "../../src/cli/tokenize.ts";
import { run as score } from "../../src/cli/score.ts";
import { FIXTURES, golden, LOGP_TOL } from "./_helpers.ts";

/** Runs a CLI entry with console.log / console.error captured. */
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

const temps: string[] = [];
async function tmpFile(text: string): Promise<string> {
  const p = await Deno.makeTempFile({ suffix: ".jsonl" });
  temps.push(p);
  await Deno.writeTextFile(p, text);
  return p;
}

async function removeTemps(): Promise<void> {
  for (const p of temps.splice(0)) await Deno.remove(p).catch(() => {});
}

Deno.test("cli tokenize: ids of a golden case, with and without special tokens", async () => {
  const gold = await golden("tiny-llama");
  const c = gold.tokenization.cases[1];
  const model = `${FIXTURES}tiny-llama`;
  let r = await capture(() => tokenize(["--model", model, "--text", c.text]));
  assert.equal(r.code, 0);
  assert.deepEqual(r.out, [c.input_ids.join(" ")]);
  r = await capture(() => tokenize(["--model", model, "--text", c.text, "--no-special", "--json"]));
  assert.deepEqual(JSON.parse(r.out[0]), { ids: c.input_ids_no_special, tokens: c.tokens_no_special });
  r = await capture(() => tokenize(["--model", model]));
  assert.equal(r.code, 2);
  assert.match(r.err[0], /^tokenize needs exactly one of --text STR or --chat FILE\nUsage: deno task cli tokenize/);
  r = await capture(() => tokenize(["--model", model, "--text", "x", "--bogus"]));
  assert.equal(r.code, 2);
});

Deno.test("cli tokenize --chat: the ids of transformers' apply_chat_template; bad files name the field", async () => {
  const gold = JSON.parse(await Deno.readTextFile(`${FIXTURES}chat-qwen/chat_golden.json`));
  const c = gold.cases[0]; // one user turn, with the generation prompt
  const model = `${FIXTURES}chat-qwen`;
  const chat = await tmpFile(JSON.stringify(c.messages));
  let r = await capture(() => tokenize(["--model", model, "--chat", chat, "--add-generation-prompt"]));
  assert.equal(r.code, 0);
  assert.deepEqual(r.out, [c.ids.join(" ")]);
  r = await capture(() => tokenize(["--model", model, "--chat", chat, "--add-generation-prompt", "--json"]));
  const j = JSON.parse(r.out[0]);
  assert.deepEqual([j.ids, j.text], [c.ids, c.text]);
  assert.equal(j.tokens[0], "<|im_start|>");
  // Without the flag the assistant header is not there.
  r = await capture(() => tokenize(["--model", model, "--chat", chat]));
  assert.deepEqual(r.out, [gold.cases[1].ids.join(" ")]);
  const bad = await tmpFile('[{"role": "user", "content": "hi"}, {"content": 3}]');
  r = await capture(() => tokenize(["--model", model, "--chat", bad]));
  assert.equal(r.code, 2);
  assert.ok(r.err[0].startsWith(`error: ${bad}: 2 errors:`), r.err[0]);
  assert.ok(r.err.join("\n").includes(`${bad}: field "messages[1].role": missing`));
  const notJson = await tmpFile("[{");
  r = await capture(() => tokenize(["--model", model, "--chat", notJson]));
  assert.equal(r.code, 2);
  assert.match(r.err[0], /not valid JSON/);
  r = await capture(() => tokenize(["--model", `${FIXTURES}tiny-gpt2`, "--chat", chat]));
  assert.equal(r.code, 2);
  assert.match(r.err[0], /has no chat template/);
  await removeTemps();
});

Deno.test("cli score: pre-tokenized pairs and groups give the golden policy log-probs", async () => {
  const gold = await golden("tiny-llama");
  const model = `${FIXTURES}tiny-llama`, adapter = `${FIXTURES}tiny-llama/adapter`;
  const args = ["--model", model, "--adapter", adapter, "--backend", "wasm", "--json"];
  let r = await capture(() => score([...args, "--data", `${FIXTURES}pairs.jsonl`]));
  assert.equal(r.code, 0, r.err.join("\n"));
  const lp = gold.losses.float32.logp_pairs;
  assert.equal(r.out.length, 3, "one line per pair");
  r.out.map((l) => JSON.parse(l)).forEach((o, i) => {
    assert.ok(Math.abs(o.chosen_logp - lp.policy_chosen[i]) < LOGP_TOL, `${o.chosen_logp} vs ${lp.policy_chosen[i]}`);
    assert.ok(Math.abs(o.rejected_logp - lp.policy_rejected[i]) < LOGP_TOL, `${o.rejected_logp}`);
  });
  r = await capture(() => score([...args, "--data", `${FIXTURES}rewards.jsonl`]));
  assert.equal(r.code, 0, r.err.join("\n"));
  assert.equal(r.out.length, 2, "one line per group");
  r.out.map((l) => JSON.parse(l)).forEach((o, i) => {
    assert.equal(o.completion_logps.length, 4, "one log-prob per completion");
    o.completion_logps.forEach((x: number, k: number) =>
      assert.ok(Math.abs(x - gold.losses.float32.logp_groups.policy[i][k]) < LOGP_TOL, `${x}`)
    );
  });
});

Deno.test("cli score: text lines are encoded as TRL does (prompt with specials, completion + EOS)", async () => {
  const model = `${FIXTURES}tiny-llama`;
  // One format per file, as for `train` (the shared data module validates both).
  const text = await tmpFile('{"prompt": "The food was", "completion": " great"}\n\n');
  const pairs = await tmpFile('{"prompt": "Not", "chosen": " bad", "rejected": " good"}\n');
  const { loadTokenizer } = await import("../../src/models/tokenizer.ts");
  const tok = await loadTokenizer(model);
  const ids = await tmpFile(
    JSON.stringify({
      prompt_ids: tok.encode("The food was"),
      completion_ids: [...tok.encode(" great", { addSpecialTokens: false }), 2],
    }),
  );
  const a = await capture(() => score(["--model", model, "--data", text, "--backend", "wasm", "--json"]));
  const b = await capture(() => score(["--model", model, "--data", ids, "--backend", "wasm", "--json"]));
  const c = await capture(() => score(["--model", model, "--data", pairs, "--backend", "wasm", "--json"]));
  assert.equal(a.code, 0, a.err.join("\n"));
  assert.equal(a.out.length, 1);
  assert.equal(c.code, 0, c.err.join("\n"));
  assert.deepEqual(Object.keys(JSON.parse(c.out[0])), ["chosen_logp", "rejected_logp"]);
  assert.equal(JSON.parse(a.out[0]).logp, JSON.parse(b.out[0]).logp);
  assert.equal(tok.encode("The food was")[0], 1);
  await removeTemps();
});

Deno.test("cli score: reward groups need no rewards to be scored and may differ in size", async () => {
  const model = `${FIXTURES}tiny-gpt2`;
  const p = await tmpFile(
    '{"prompt": "a", "completions": ["b", "c", "d"]}\n{"prompt": "a", "completions": ["b"], "rewards": [null]}\n',
  );
  const r = await capture(() => score(["--model", model, "--data", p, "--backend", "wasm", "--json"]));
  assert.equal(r.code, 0, r.err.join("\n"));
  const [first, second] = r.out.map((l) => JSON.parse(l).completion_logps as number[]);
  assert.equal(first.length, 3);
  assert.equal(second.length, 1);
  // The same prompt and completion score the same, whichever group they are in.
  assert.ok(Math.abs(second[0] - first[0]) < 1e-4, `${second[0]} vs ${first[0]}`);
  await removeTemps();
});

Deno.test("cli score: bad lines fail with file:line and the field, exit 2", async () => {
  const model = `${FIXTURES}tiny-gpt2`;
  const cases: [string, RegExp][] = [
    ['{"prompt": "a", "chosen": "b"}', /:1: field "rejected": missing \(a pairs record needs/],
    [
      '{"prompt": "a", "completion": "b"}\n{"prompt": 3, "completion": "b"}',
      /:2: field "prompt": expected a string, got number/,
    ],
    [
      '{"prompt_ids": [1, 999], "completion_ids": [2]}',
      /:1: field "prompt_ids\[1\]": token id 999 is out of the vocabulary \(size 512\)/,
    ],
    [
      '{"prompt": "a", "completions": ["b", "c"], "rewards": [1]}',
      /:1: field "rewards": expected 2 rewards \(one per completion\), got 1/,
    ],
    [
      '{"prompt": "a", "completions": ["b", "c"], "rewards": [1, null]}',
      /:1: field "rewards\[1\]": expected a finite number, got null/,
    ],
    ["not json", /:1: malformed JSON/],
    ['{"prompt": "a"}', /: no completion field to score/],
  ];
  for (const [text, re] of cases) {
    const p = await tmpFile(text);
    const r = await capture(() => score(["--model", model, "--data", p, "--backend", "wasm"]));
    assert.equal(r.code, 2, text);
    assert.match(r.err.join("\n"), re);
    assert.ok(r.err.join("\n").includes(p));
  }
  let r = await capture(() => score(["--model", model, "--data", "x.jsonl", "--temperature", "0"]));
  assert.equal(r.code, 2);
  assert.match(r.err[0], /--temperature must be a positive number/);
  r = await capture(() => score(["--model", `${FIXTURES}nope`, "--data", "x.jsonl"]));
  assert.equal(r.code, 2);
  assert.match(r.err[0], /nope\/config\.json not found/);
  r = await capture(() => tokenize(["--model", `${FIXTURES}nope`, "--text", "a"]));
  assert.equal(r.code, 2);
  assert.match(r.err[0], /nope\/tokenizer\.json not found/);
  await removeTemps();
});
