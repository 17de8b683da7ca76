import assert from "node:assert/strict";
import { run } from "../../src/cli/generate.ts";
import { FIXTURES } from "./_support.ts";

const MODEL = FIXTURES + "tiny-gpt2";
const ADAPTER = FIXTURES + "tiny-gpt2/adapter";
const DENO = Deno.execPath();
const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;

/** Runs the command in-process, collecting what it prints to stderr. */
async function runQuiet(argv: string[]): Promise<{ code: number; stderr: string }> {
  const lines: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => lines.push(a.map(String).join(" "));
  try {
    return { code: await run(argv), stderr: lines.join("\n") };
  } finally {
    console.error = orig;
  }
}

Deno.test("generate --prompts writes the reward format with K completions and null rewards", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/prompts.jsonl`,
      '{"prompt": "The food was"}\n\n{"prompt": "I loved it", "source": "ignored"}\n{"prompt": "Bad"}\n',
    );
    const args = [
      "--model",
      MODEL,
      "--adapter",
      ADAPTER,
      "--prompts",
      `${dir}/prompts.jsonl`,
      "--out",
      `${dir}/out.jsonl`,
    ];
    const common = [
      "--max-new-tokens",
      "5",
      "--num-samples",
      "3",
      "--seed",
      "11",
      "--backend",
      "wasm",
      "--batch-size",
      "2",
    ];
    const r = await runQuiet([...args, ...common]);
    assert.equal(r.code, 0, r.stderr);
    const lines = (await Deno.readTextFile(`${dir}/out.jsonl`)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.prompt), ["The food was", "I loved it", "Bad"]);
    for (const l of lines) {
      assert.deepEqual(Object.keys(l), ["prompt", "completions", "rewards"]);
      assert.equal(l.completions.length, 3);
      assert.ok(l.completions.every((c: unknown) => typeof c === "string"));
      assert.deepEqual(l.rewards, [null, null, null]);
    }
    assert.match(r.stderr, /temperature 1/); // the fixture does not sample by default: K greedy copies would be useless
    // The seed makes the file reproducible.
    const first = await Deno.readTextFile(`${dir}/out.jsonl`);
    assert.equal((await runQuiet([...args, ...common])).code, 0);
    assert.equal(await Deno.readTextFile(`${dir}/out.jsonl`), first);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["out.jsonl", "prompts.jsonl"]);

    // Tokenized prompts give ids back.
    await Deno.writeTextFile(`${dir}/ids.jsonl`, '{"prompt_ids": [5, 6, 7]}\n');
    const r2 = await runQuiet([
      "--model",
      MODEL,
      "--prompts",
      `${dir}/ids.jsonl`,
      "--out",
      `${dir}/ids_out.jsonl`,
      ...common,
    ]);
    assert.equal(r2.code, 0, r2.stderr);
    const l2 = JSON.parse(await Deno.readTextFile(`${dir}/ids_out.jsonl`));
    assert.deepEqual(l2.prompt_ids, [5, 6, 7]);
    assert.equal(l2.completions_ids.length, 3);
    assert.ok(l2.completions_ids.every((c: number[]) => c.length <= 5 && c.every(Number.isInteger)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("generate: bad prompts file and bad options exit 2 with file:line, writing nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/bad.jsonl`, '{"prompt": "ok"}\n{"prompt": 3}\n');
    const r = await runQuiet([
      "--model",
      MODEL,
      "--prompts",
      `${dir}/bad.jsonl`,
      "--out",
      `${dir}/o.jsonl`,
      "--backend",
      "wasm",
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`${dir}/bad.jsonl:2: field "prompt"`));
    assert.equal(await Deno.stat(`${dir}/o.jsonl`).catch(() => null), null);
    for (
      const argv of [
        ["--model", MODEL],
        ["--model", MODEL, "--prompt", "a", "--top-p", "x"],
        ["--model", MODEL, "--prompt", "a", "--num-samples", "0"],
        ["--model", MODEL, "--prompts", `${dir}/bad.jsonl`],
        ["--model", MODEL, "--prompts", `${dir}/bad.jsonl`, "--out", `${dir}/o.jsonl`, "--num-samples", "1"],
        ["--model", MODEL, "--prompt", "a", "--merge"],
        ["--model", MODEL, "--prompt", "a", "--bogus"],
        ["--model", `${dir}/nope`, "--prompt", "a"],
      ]
    ) {
      const res = await runQuiet(argv);
      assert.equal(res.code, 2, `${argv.join(" ")} → ${res.code}: ${res.stderr}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task cli generate streams the completion to stdout; --json prints the result", async () => {
  const base = ["run", "-A", MAIN, "generate", "--model", MODEL, "--prompt", "The food", "--backend", "wasm"];
  const opts = ["--max-new-tokens", "6", "--temperature", "0"];
  const text = await new Deno.Command(DENO, { args: [...base, ...opts], stdout: "piped", stderr: "piped" }).output();
  assert.equal(text.code, 0, new TextDecoder().decode(text.stderr));
  const json = await new Deno.Command(DENO, { args: [...base, ...opts, "--json"], stdout: "piped", stderr: "piped" })
    .output();
  assert.equal(json.code, 0);
  const res = JSON.parse(new TextDecoder().decode(json.stdout));
  assert.equal(res.completions.length, 1);
  assert.equal(res.token_ids[0].length, 6);
  assert.equal(new TextDecoder().decode(text.stdout), res.completions[0] + "\n");
});
