import assert from "node:assert/strict";
import { DataError, parseJsonl } from "../../src/data/jsonl.ts";
import { type Dataset, detectFormat, readDataset, validateAll, type ValidateOptions } from "../../src/data/formats.ts";

const F = "data/pairs.jsonl";

/** The message validateAll throws for `lines` (joined with newlines), asserting it throws a DataError. */
function errorOf(lines: string[], options: ValidateOptions = {}): string {
  try {
    validateAll(lines.join("\n"), { file: F, ...options });
  } catch (e) {
    assert.ok(e instanceof DataError, `expected a DataError, got ${e}`);
    return e.message;
  }
  assert.fail("expected validateAll to throw");
}

const PAIR = '{"prompt": "a", "chosen": "b", "rejected": "c"}';
const GROUP = '{"prompt": "a", "completions": ["b", "c"], "rewards": [0.5, -1]}';

Deno.test("parseJsonl skips blank lines, drops a BOM, accepts CRLF and a trailing newline", () => {
  const rows = parseJsonl('\uFEFF{"a": 1}\r\n\n   \n{"a": 2}\n', F);
  assert.deepEqual(rows, [{ line: 1, value: { a: 1 } }, { line: 4, value: { a: 2 } }]);
});

Deno.test("malformed JSON names the line and the parser's message", () => {
  assert.throws(() => parseJsonl('{"a": 1}\n\n{"a": }\n', F), {
    name: "DataError",
    message: 'data/pairs.jsonl:3: malformed JSON: Unexpected token \'}\', "{"a": }" is not valid JSON',
  });
  assert.equal(
    errorOf([PAIR, '{"prompt": "a",}']),
    "data/pairs.jsonl:2: malformed JSON: Expected double-quoted property name at column 16",
  );
});

Deno.test("DataError carries file, line and field", () => {
  try {
    validateAll([PAIR, PAIR, '{"prompt": "a", "chosen": 3, "rejected": "c"}'].join("\n"), { file: F });
    assert.fail("no error");
  } catch (e) {
    const d = e as DataError;
    assert.equal(d.message, 'data/pairs.jsonl:3: field "chosen": expected a string, got number');
    assert.deepEqual([d.file, d.line, d.field, d.detail], [F, 3, "chosen", "expected a string, got number"]);
    assert.deepEqual(d.errors, [d]);
  }
});

Deno.test("detects every format, text and pre-tokenized; ignores unknown fields", () => {
  const cases: [string, string, boolean][] = [
    ['{"prompt": "a", "chosen": "b", "rejected": "c", "score": 3}', "pairs", false],
    ['{"prompt_ids": [1], "chosen_ids": [2], "rejected_ids": [3]}', "pairs", true],
    [GROUP, "groups", false],
    ['{"prompt_ids": [1], "completions_ids": [[2], [3, 4]], "rewards": [1, 2]}', "groups", true],
    ['{"prompt": "a", "completion": "b"}', "prompt_completion", false],
    ['{"prompt_ids": [1], "completion_ids": [2]}', "prompt_completion", true],
    ['{"prompt": "a", "id": 7}', "prompts", false],
    ['{"prompt_ids": [5]}', "prompts", true],
    // Both columns (a tokenized Hugging Face dataset): the ids are used, the text ignored.
    [
      '{"prompt": "a", "chosen": "b", "rejected": "c", "prompt_ids": [1], "chosen_ids": [2], "rejected_ids": [3]}',
      "pairs",
      true,
    ],
  ];
  for (const [line, kind, tokenized] of cases) {
    const d = validateAll(`${line}\n${line}\n`, { file: F });
    assert.equal(d.kind, kind, line);
    assert.equal(d.tokenized, tokenized, line);
    assert.equal(d.records.length, 2);
    assert.equal(d.records[1].line, 2);
    assert.equal(d.conversational, false, line);
    assert.deepEqual(detectFormat(JSON.parse(line)), { kind, tokenized, conversational: false });
  }
  const pairs = validateAll(`${PAIR}\n`, { file: F });
  assert.deepEqual(pairs.records, [{ line: 1, prompt: "a", chosen: "b", rejected: "c" }]);
  const groups = validateAll('{"prompt_ids": [1, 2], "completions_ids": [[2], [3, 4]], "rewards": [1, -2.5]}', {
    file: F,
  });
  assert.deepEqual(groups.records, [{ line: 1, prompt: [1, 2], completions: [[2], [3, 4]], rewards: [1, -2.5] }]);
});

Deno.test("format errors: every case names file, line and field exactly", () => {
  const cases: [string[], string, ValidateOptions?][] = [
    [
      [PAIR, '{"prompt": "a", "rejected": "c"}'],
      'data/pairs.jsonl:2: field "chosen": missing (a pairs record needs "prompt", "chosen", "rejected")',
    ],
    [
      [PAIR, '{"prompt": null, "chosen": "b", "rejected": "c"}'],
      'data/pairs.jsonl:2: field "prompt": expected a string, got null',
    ],
    [
      [PAIR, '{"prompt": "a", "chosen": ["b"], "rejected": "c"}'],
      'data/pairs.jsonl:2: field "chosen": expected a string, got array',
    ],
    [
      [PAIR, '{"prompt": "a", "chosen": "b", "rejected": ""}'],
      'data/pairs.jsonl:2: field "rejected": empty completion: a completion needs at least one token',
    ],
    [[PAIR, "[1, 2]"], "data/pairs.jsonl:2: expected a JSON object per line, got array"],
    [
      [PAIR, GROUP],
      'data/pairs.jsonl:2: the record is in the reward-groups format ({"prompt","completions","rewards"}) but line 1 is in the pairs format ({"prompt","chosen","rejected"}): all lines of a file must use one format',
    ],
    [
      [PAIR, '{"prompt_ids": [1], "chosen_ids": [2], "rejected_ids": [3]}'],
      'data/pairs.jsonl:2: the record uses token ids (pairs format ({"prompt_ids","chosen_ids","rejected_ids"})) but line 1 uses text: all lines of a file must use one format',
    ],
    [
      ['{"prompt_ids": [1], "chosen": "x", "rejected_ids": [3]}'],
      'data/pairs.jsonl:1: field "chosen_ids": missing (a pairs record needs "prompt_ids", "chosen_ids", "rejected_ids")',
    ],
    [
      [
        '{"prompt_ids": [1, -1], "chosen_ids": [2], "rejected_ids": [3]}',
        '{"prompt_ids": [1], "chosen_ids": [2.5], "rejected_ids": [3]}',
      ],
      'data/pairs.jsonl: 2 errors:\n  data/pairs.jsonl:1: field "prompt_ids[1]": expected a non-negative integer token id, got -1\n  data/pairs.jsonl:2: field "chosen_ids[0]": expected a non-negative integer token id, got 2.5',
    ],
    [
      ['{"prompt_ids": [1], "chosen_ids": ["2"], "rejected_ids": 3}'],
      'data/pairs.jsonl: 2 errors:\n  data/pairs.jsonl:1: field "chosen_ids[0]": expected a non-negative integer token id, got string\n  data/pairs.jsonl:1: field "rejected_ids": expected an array of token ids, got number',
    ],
    [
      ['{"prompt_ids": [], "chosen_ids": [2], "rejected_ids": [3]}'],
      'data/pairs.jsonl:1: field "prompt_ids": empty prompt: the first completion token needs at least one token before it (put the BOS token here if the model has one)',
    ],
    [
      ['{"prompt_ids": [1], "chosen_ids": [2], "rejected_ids": []}'],
      'data/pairs.jsonl:1: field "rejected_ids": empty completion: a completion needs at least one token',
    ],
    [
      ['{"prompt_ids": [1], "chosen_ids": [2, 512], "rejected_ids": [3]}'],
      'data/pairs.jsonl:1: field "chosen_ids[1]": token id 512 is out of the vocabulary (size 512)',
      { vocabSize: 512 },
    ],
    // Reward groups.
    [
      ['{"prompt": "a", "completions": ["b", "c"], "rewards": [1]}'],
      'data/pairs.jsonl:1: field "rewards": expected 2 rewards (one per completion), got 1',
    ],
    [
      ['{"prompt": "a", "completions": ["b", "c"], "rewards": [1, "NaN"]}'],
      'data/pairs.jsonl:1: field "rewards[1]": expected a finite number, got string',
    ],
    [
      ['{"prompt": "a", "completions": ["b", "c"], "rewards": [null, 1]}'],
      'data/pairs.jsonl:1: field "rewards[0]": expected a finite number, got null',
    ],
    [
      ['{"prompt": "a", "completions": ["b", "c"], "rewards": [1e400, 1]}'],
      'data/pairs.jsonl:1: field "rewards[0]": expected a finite number, got Infinity',
    ],
    [
      ['{"prompt": "a", "completions": ["b", "c"], "rewards": {"b": 1}}'],
      'data/pairs.jsonl:1: field "rewards": expected an array of numbers, got object',
    ],
    [
      ['{"prompt": "a", "completions": ["b"], "rewards": [1]}'],
      'data/pairs.jsonl:1: field "completions": a reward group needs at least 2 completions, got 1',
    ],
    [
      ['{"prompt": "a", "completions": "b", "rewards": [1]}'],
      'data/pairs.jsonl:1: field "completions": expected an array of strings, got string',
    ],
    [
      ['{"prompt": "a", "completions": ["b", 7], "rewards": [1, 2]}'],
      'data/pairs.jsonl:1: field "completions[1]": expected a string, got number',
    ],
    [
      ['{"prompt": "a", "completions": ["", "c"], "rewards": [1, 2]}'],
      'data/pairs.jsonl:1: field "completions[0]": empty completion: a completion needs at least one token',
    ],
    [
      ['{"prompt_ids": [1], "completions_ids": [[2], [-3]], "rewards": [1, 2]}'],
      'data/pairs.jsonl:1: field "completions_ids[1][0]": expected a non-negative integer token id, got -3',
    ],
    [
      [GROUP, '{"prompt": "a", "completions": ["b", "c", "d"], "rewards": [1, 2, 3]}'],
      'data/pairs.jsonl:2: field "completions": expected 2 completions like the first group (every group of a file must have the same number), got 3',
    ],
    // Conversational (TRL) records: messages checked field by field.
    [
      ['{"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "assistant"}], "rejected": [{"content": "no"}]}'],
      'data/pairs.jsonl: 2 errors:\n  data/pairs.jsonl:1: field "chosen[0].content": missing\n  data/pairs.jsonl:1: field "rejected[0].role": missing',
    ],
    [
      ['{"prompt": [{"role": "user", "content": 3}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": "b"}'],
      'data/pairs.jsonl: 2 errors:\n  data/pairs.jsonl:1: field "prompt[0].content": expected a string or a list of {"type", ...} content parts, got number\n  data/pairs.jsonl:1: field "rejected": expected a list of {"role", "content"} messages, got string',
    ],
    [
      ['{"prompt": [], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}'],
      'data/pairs.jsonl:1: field "chosen": no "prompt" and the conversations share no leading message: give "prompt" (a message list), or start every conversation with the same turns',
    ],
    [
      [
        '{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "q"}]}',
      ],
      'data/pairs.jsonl:1: field "rejected": nothing is left once the shared prompt (1 message) is removed: a completion needs at least one message of its own',
    ],
    [
      [
        '{"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}',
        PAIR,
      ],
      'data/pairs.jsonl:2: the record holds plain text (pairs format ({"prompt","chosen","rejected"})) but line 1 holds message lists: all lines of a file must use one format',
    ],
    [
      ['{"prompt": [{"role": "user", "content": "q"}], "completions": [[{"role": "assistant", "content": "a"}], "b"], "rewards": [1, 2]}'],
      'data/pairs.jsonl:1: field "completions[1]": expected a list of {"role", "content"} messages, got string',
    ],
    [
      ['{"messages": [{"role": "user", "content": "hi"}]}'],
      'data/pairs.jsonl:1: field "messages": a {"messages"} record is a single conversation (supervised fine-tuning data); preference training needs {"prompt","chosen","rejected"} or {"chosen","rejected"} with message lists',
    ],
    // Files that say nothing.
    [
      ['{"text": "a"}'],
      'data/pairs.jsonl:1: cannot tell the data format: expected {"prompt","chosen","rejected"} (pairs), {"prompt","completions","rewards"} (reward groups), {"prompt","completion"} or {"prompt"}, or their *_ids forms; the line has fields "text"',
    ],
    [["", "  "], "data/pairs.jsonl: no records: the file is empty"],
  ];
  for (const [lines, message, options] of cases) assert.equal(errorOf(lines, options), message);
});

Deno.test("a forced kind reads the prompts of a pairs file and rejects other kinds", () => {
  const d = validateAll(`${PAIR}\n`, { file: F, kind: "prompts" });
  assert.deepEqual(d.records, [{ line: 1, prompt: "a" }]);
  assert.equal(
    errorOf([PAIR], { kind: "groups" }),
    'data/pairs.jsonl:1: the record is in the pairs format ({"prompt","chosen","rejected"}) but line 1 is in the reward-groups format ({"prompt","completions","rewards"}): all lines of a file must use one format',
  );
});

Deno.test("chosen identical to rejected is a warning, not an error", () => {
  const d = validateAll(
    [PAIR, '{"prompt": "a", "chosen": "same", "rejected": "same"}'].join("\n"),
    { file: F },
  );
  assert.equal(d.records.length, 2);
  assert.deepEqual(d.warnings.map((w) => w.message), [
    'data/pairs.jsonl:2: field "rejected": identical to chosen: this pair carries no preference',
  ]);
  const ids = validateAll('{"prompt_ids": [1], "chosen_ids": [2, 3], "rejected_ids": [2, 3]}', { file: F });
  assert.deepEqual(ids.warnings.map((w) => [w.line, w.field]), [[1, "rejected_ids"]]);
});

Deno.test("validateAll collects up to maxErrors errors and counts the rest", () => {
  const bad = '{"prompt": "a", "chosen": 1, "rejected": "c"}';
  const lines = [PAIR, ...Array(30).fill(bad)];
  const message = errorOf(lines);
  const listed = message.split("\n").slice(1);
  assert.equal(message.split("\n")[0], "data/pairs.jsonl: 30 errors, the first 20:");
  assert.equal(listed.length, 20);
  assert.equal(listed[19], '  data/pairs.jsonl:21: field "chosen": expected a string, got number');
  assert.throws(() => validateAll(lines.join("\n"), { file: F, maxErrors: 3 }), (e: DataError) => {
    assert.deepEqual(e.errors.map((x) => x.line), [2, 3, 4]);
    assert.equal(e.line, null);
    return true;
  });
});

Deno.test("the bundled data and fixtures validate", async () => {
  const expect: [string, Dataset["kind"], boolean, number][] = [
    ["data/pairs.jsonl", "pairs", false, 761],
    ["data/pairs-test.jsonl", "pairs", false, 179],
    ["data/rewards.jsonl", "groups", false, 843],
    ["data/rewards-test.jsonl", "groups", false, 194],
    ["data/prompts.jsonl", "prompts", false, 843],
    ["data/prompts-test.jsonl", "prompts", false, 194],
    ["tests/fixtures/pairs.jsonl", "pairs", true, 3],
    ["tests/fixtures/rewards.jsonl", "groups", true, 2],
  ];
  for (const [path, kind, tokenized, n] of expect) {
    const d = await readDataset(path, { vocabSize: 512 });
    assert.deepEqual([d.kind, d.tokenized, d.records.length, d.warnings.length], [kind, tokenized, n, 0], path);
  }
  const groups = await readDataset("data/rewards.jsonl");
  assert.ok(groups.kind === "groups" && groups.records.every((r) => r.completions.length === 4));
});

const U = (content: string) => ({ role: "user", content });
const A = (content: string) => ({ role: "assistant", content });

Deno.test("conversational pairs and groups: explicit and implicit prompts (TRL's extract_prompt)", () => {
  const explicit = JSON.stringify({ prompt: [U("q")], chosen: [A("good")], rejected: [A("bad")] });
  const implicit = JSON.stringify({
    chosen: [{ role: "system", content: "s" }, U("q"), A("good")],
    rejected: [{ role: "system", content: "s" }, U("q"), A("bad")],
  });
  const d1 = validateAll(`${explicit}\n`, { file: F });
  assert.equal(d1.kind, "pairs");
  assert.equal(d1.conversational, true);
  assert.deepEqual(d1.records, [{ line: 1, prompt: [U("q")], chosen: [A("good")], rejected: [A("bad")] }]);
  assert.deepEqual(detectFormat(JSON.parse(explicit)), { kind: "pairs", tokenized: false, conversational: true });
  const d2 = validateAll(`${implicit}\n`, { file: F });
  assert.deepEqual(d2.records, [{
    line: 1,
    prompt: [{ role: "system", content: "s" }, U("q")],
    chosen: [A("good")],
    rejected: [A("bad")],
  }]);
  // As in TRL, a text prompt beside conversational completions gives way to the extracted one.
  const withText = JSON.stringify({ prompt: "q", chosen: [U("q"), A("x")], rejected: [U("q"), A("y")] });
  assert.deepEqual(validateAll(withText, { file: F }).records, [{
    line: 1,
    prompt: [U("q")],
    chosen: [A("x")],
    rejected: [A("y")],
  }]);
  // Multi-turn completions keep every message after the shared prefix.
  const multi = JSON.stringify({ chosen: [U("q"), A("a"), U("more"), A("b")], rejected: [U("q"), A("c")] });
  const d3 = validateAll(multi, { file: F });
  assert.deepEqual((d3.records[0] as { chosen: unknown }).chosen, [A("a"), U("more"), A("b")]);

  const group = JSON.stringify({ prompt: [U("q")], completions: [[A("1")], [A("2")], [A("3")]], rewards: [1, 0, -1] });
  const g = validateAll(`${group}\n${group}`, { file: F });
  assert.equal(g.kind, "groups");
  assert.equal(g.conversational, true);
  assert.deepEqual(g.records[0], {
    line: 1,
    prompt: [U("q")],
    completions: [[A("1")], [A("2")], [A("3")]],
    rewards: [1, 0, -1],
  });
  const implicitGroup = JSON.stringify({ completions: [[U("q"), A("1")], [U("q"), A("2")]], rewards: [1, 0] });
  assert.deepEqual(validateAll(implicitGroup, { file: F }).records[0], {
    line: 1,
    prompt: [U("q")],
    completions: [[A("1")], [A("2")]],
    rewards: [1, 0],
  });
  // Identical chosen and rejected: a warning, as for text.
  const same = JSON.stringify({ prompt: [U("q")], chosen: [A("x")], rejected: [A("x")] });
  assert.equal(validateAll(same, { file: F }).warnings.length, 1);
  // Content parts and tool calls are accepted and kept.
  const parts = JSON.stringify({
    prompt: [{ role: "user", content: [{ type: "text", text: "q" }] }],
    chosen: [{ role: "assistant", content: null, tool_calls: [{ function: { name: "f", arguments: {} } }] }],
    rejected: [A("no")],
  });
  assert.equal(validateAll(parts, { file: F }).records.length, 1);
});
