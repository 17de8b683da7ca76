import assert from "node:assert/strict";
import { run as tokenize } from "../../src/cli/tokenize.ts";
import { run as score } from "../../src/cli/score.ts";
import { FIXTURES, golden } from "./_helpers.ts";

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
  assert.match(r.err[0], /needs --model and --text/);
  r = await capture(() => tokenize(["--model", model, "--text", "x", "--bogus"]));
  assert.equal(r.code, 2);
});

Deno.test("cli score: pre-tokenized pairs and groups give the golden policy log-probs", async () => {
  const gold = await golden("tiny-llama");
  const model = `${FIXTURES}tiny-llama`, adapter = `${FIXTURES}tiny-llama/adapter`;
  const args = ["--model", model, "--adapter", adapter, "--backend", "wasm", "--json"];
  let r = await capture(() => score([...args, "--data", `${FIXTURES}pairs.jsonl`]));
  assert.equal(r.code, 0, r.err.join("\n"));
  const lp = gold.losses.float32.logp_pairs;
  r.out.map((l) => JSON.parse(l)).forEach((o, i) => {
    assert.ok(Math.abs(o.chosen_logp - lp.policy_chosen[i]) < 1e-4);
    assert.ok(Math.abs(o.rejected_logp - lp.policy_rejected[i]) < 1e-4);
  });
  r = await capture(() => score([...args, "--data", `${FIXTURES}rewards.jsonl`]));
  assert.equal(r.code, 0, r.err.join("\n"));
  r.out.map((l) => JSON.parse(l)).forEach((o, i) => {
    o.completion_logps.forEach((x: number, k: number) =>
      assert.ok(Math.abs(x - gold.losses.float32.logp_groups.policy[i][k]) < 1e-4)
    );
  });
});

Deno.test("cli score: text lines are encoded as TRL does (prompt with specials, completion + EOS)", async () => {
  const model = `${FIXTURES}tiny-llama`;
  const text = await tmpFile(
    '{"prompt": "The food was", "completion": " great"}\n\n{"prompt": "Not", "chosen": " bad", "rejected": " good"}\n',
  );
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
  assert.equal(a.code, 0, a.err.join("\n"));
  assert.equal(a.out.length, 2);
  assert.deepEqual(Object.keys(JSON.parse(a.out[1])), ["chosen_logp", "rejected_logp"]);
  assert.equal(JSON.parse(a.out[0]).logp, JSON.parse(b.out[0]).logp);
  assert.equal(tok.encode("The food was")[0], 1);
  await removeTemps();
});

Deno.test("cli score: bad lines fail with file:line and the field, exit 2", async () => {
  const model = `${FIXTURES}tiny-gpt2`;
  const cases: [string, RegExp][] = [
    ['{"prompt": "a", "chosen": "b"}', /:1: missing field "rejected"/],
    ['{"prompt": "a", "completion": "b"}\n{"prompt": 3, "completion": "b"}', /:2: field "prompt" must be a string/],
    [
      '{"prompt_ids": [1, 999], "completion_ids": [2]}',
      /:1: field "prompt_ids" holds 999, not a token id in \[0, 512\)/,
    ],
    [
      '{"prompt": "a", "completions": ["b", "c"], "rewards": [1]}',
      /:1: field "rewards" must be a list of 2 finite numbers/,
    ],
    ["not json", /:1: not valid JSON/],
    ['{"prompt": "a"}', /:1: no completion field/],
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
