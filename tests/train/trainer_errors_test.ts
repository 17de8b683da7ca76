/**
 * Issue #6, "Show" 3: every bad input gets its exact message (file:line and field), exit code 2, and
 * leaves `--out` untouched: absent stays absent, an existing directory keeps its exact contents. A
 * pair whose chosen equals rejected is only a warning. A non-finite loss during training exits 1,
 * names the step and the batch's data lines, and keeps the last good checkpoint.
 */

import assert from "node:assert/strict";
import { localFiles } from "../../src/io/files.ts";
import { loadCheckpoint } from "../../src/train/checkpoint.ts";
import { DENO, FX, listTree, metricsOf, ROOT, runTrainCli, snapshot } from "./_trainer_support.ts";

const GOOD = `{"prompt_ids": [292, 95, 1], "chosen_ids": [16, 262, 298], "rejected_ids": [121, 198, 299, 390, 327]}`;
const GROUP = `{"prompt_ids": [215, 53], "completions_ids": [[158, 374], [172, 87]], "rewards": [0.48, 0.78]}`;

interface BadCase {
  name: string;
  /** Data file content (written to `<dir>/<name>.jsonl`), or a path to use as is. */
  data: string | { path: string };
  args?: string[];
  /** The exact error message (after `error: `), given the data path; a RegExp where it embeds a parser message. */
  message: (file: string, dir: string) => string | RegExp;
}

const CASES: BadCase[] = [
  {
    name: "malformed-json",
    data: `${GOOD}\n{"prompt_ids": [1], "chosen_ids": [2]\n`,
    // The JSON parser's own wording follows the location; the column is ours (1-based).
    message: (f) => new RegExp(`^${esc(f)}:2: malformed JSON: .+ at column 38$`),
  },
  {
    name: "missing-field",
    data: `${GOOD}\n{"prompt_ids": [1], "chosen_ids": [2]}\n`,
    message: (f) =>
      `${f}:2: field "rejected_ids": missing (a pairs record needs "prompt_ids", "chosen_ids", "rejected_ids")`,
  },
  {
    name: "wrong-type-ids",
    data: `${GOOD}\n{"prompt_ids": [1], "chosen_ids": "abc", "rejected_ids": [3]}\n`,
    message: (f) => `${f}:2: field "chosen_ids": expected an array of token ids, got string`,
  },
  {
    name: "wrong-type-text",
    data: `{"prompt": "Great", "chosen": 5, "rejected": "bad"}\n`,
    message: (f) => `${f}:1: field "chosen": expected a string, got number`,
  },
  {
    name: "empty-completion-ids",
    data: `${GOOD}\n${GOOD}\n{"prompt_ids": [1], "chosen_ids": [5], "rejected_ids": []}\n`,
    message: (f) => `${f}:3: field "rejected_ids": empty completion: a completion needs at least one token`,
  },
  {
    name: "empty-completion-text",
    data: `{"prompt": "The food was", "chosen": "", "rejected": " awful"}\n`,
    message: (f) => `${f}:1: field "chosen": empty completion: a completion needs at least one token`,
  },
  {
    name: "id-out-of-vocab",
    data: `${GOOD}\n{"prompt_ids": [1], "chosen_ids": [5, 512], "rejected_ids": [3]}\n`,
    message: (f) => `${f}:2: field "chosen_ids[1]": token id 512 is out of the vocabulary (size 512)`,
  },
  {
    name: "negative-id",
    data: `{"prompt_ids": [-1], "chosen_ids": [5], "rejected_ids": [3]}\n`,
    message: (f) => `${f}:1: field "prompt_ids[0]": expected a non-negative integer token id, got -1`,
  },
  {
    name: "two-errors",
    data:
      `${GOOD}\n{"prompt_ids": [1], "chosen_ids": [2]}\n{"prompt_ids": [1], "chosen_ids": [2], "rejected_ids": [900]}\n`,
    message: (f) =>
      `${f}: 2 errors:\n` +
      `  ${f}:2: field "rejected_ids": missing (a pairs record needs "prompt_ids", "chosen_ids", "rejected_ids")\n` +
      `  ${f}:3: field "rejected_ids[0]": token id 900 is out of the vocabulary (size 512)`,
  },
  {
    name: "reward-count",
    data: `${GROUP}\n{"prompt_ids": [1], "completions_ids": [[2], [3]], "rewards": [0.5]}\n`,
    args: ["--loss", "exo-rw"],
    message: (f) => `${f}:2: field "rewards": expected 2 rewards (one per completion), got 1`,
  },
  {
    name: "reward-nan-string",
    data: `${GROUP}\n{"prompt_ids": [1], "completions_ids": [[2], [3]], "rewards": [0.5, "NaN"]}\n`,
    args: ["--loss", "dpo-rw"],
    message: (f) => `${f}:2: field "rewards[1]": expected a finite number, got string`,
  },
  {
    name: "reward-null",
    data: `{"prompt_ids": [1], "completions_ids": [[2], [3]], "rewards": [null, 1]}\n`,
    args: ["--loss", "exo-rw"],
    message: (f) => `${f}:1: field "rewards[0]": expected a finite number, got null`,
  },
  {
    name: "reward-infinite",
    data: `{"prompt_ids": [1], "completions_ids": [[2], [3]], "rewards": [1e400, 1]}\n`,
    args: ["--loss", "exo-rw"],
    message: (f) => `${f}:1: field "rewards[0]": expected a finite number, got Infinity`,
  },
  {
    name: "group-id-out-of-vocab",
    data: `{"prompt_ids": [1], "completions_ids": [[2], [3, 700]], "rewards": [0, 1]}\n`,
    args: ["--loss", "exo-rw"],
    message: (f) => `${f}:1: field "completions_ids[1][1]": token id 700 is out of the vocabulary (size 512)`,
  },
  {
    name: "pairs-for-reward-loss",
    data: { path: `${FX}/pairs.jsonl` },
    args: ["--loss", "exo-rw"],
    message: (f) =>
      `${f}: --loss exo-rw needs reward groups {"prompt","completions","rewards"}, but the file holds pairs`,
  },
  {
    name: "groups-for-pair-loss",
    data: { path: `${FX}/rewards.jsonl` },
    args: ["--loss", "dpo-pref"],
    message: (f) =>
      `${f}: --loss dpo-pref needs preference pairs {"prompt","chosen","rejected"}, but the file holds groups`,
  },
  {
    name: "missing-data-file",
    data: { path: "/nonexistent/pairs.jsonl" },
    message: () => "File not found: /nonexistent/pairs.jsonl",
  },
  {
    name: "unknown-target",
    data: { path: `${FX}/pairs.jsonl` },
    args: ["--target", "c_attn,q_proj"],
    message: () => `target module "q_proj" matches no module of this gpt2 model (valid names: c_attn, c_proj, c_fc)`,
  },
  {
    name: "negative-lr",
    data: { path: `${FX}/pairs.jsonl` },
    args: ["--lr", "-1"],
    message: () => "--lr must be a positive number, got -1",
  },
  {
    name: "lr-not-a-number",
    data: { path: `${FX}/pairs.jsonl` },
    args: ["--lr", "fast"],
    message: () => `--lr must be a number, got "fast"`,
  },
  {
    name: "unknown-loss",
    data: { path: `${FX}/pairs.jsonl` },
    args: ["--loss", "foo"],
    message: () => "--loss must be one of exo-pref, exo-rw, dpo-pref, dpo-rw, got foo",
  },
  {
    name: "zero-batch",
    data: { path: `${FX}/pairs.jsonl` },
    args: ["--batch-size", "0"],
    message: () => "--batch-size must be an integer >= 1, got 0",
  },
  {
    name: "epsilon-out-of-range",
    data: { path: `${FX}/pairs.jsonl` },
    args: ["--epsilon", "1"],
    message: () => "--epsilon must be in (0, 1), got 1",
  },
  {
    name: "unknown-backend",
    data: { path: `${FX}/pairs.jsonl` },
    args: ["--backend", "cuda"],
    message: () => "--backend must be one of auto, webgpu, wasm, native-cpu, native-webgpu, ort-training, got cuda",
  },
  {
    name: "unknown-option",
    data: { path: `${FX}/pairs.jsonl` },
    args: ["--learning-rate", "1"],
    message: () => "Unknown option '--learning-rate'",
  },
  {
    name: "missing-init-adapter",
    data: { path: `${FX}/pairs.jsonl` },
    args: ["--init-adapter", "/nonexistent/adapter"],
    message: () => "/nonexistent/adapter: no adapter_config.json; is this a PEFT adapter directory?",
  },
  {
    name: "missing-model-dir",
    data: { path: `${FX}/pairs.jsonl` },
    args: ["--model", "/nonexistent/model"],
    message: () => "/nonexistent/model/config.json not found: is /nonexistent/model a Hugging Face model directory?",
  },
];

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test("every bad input exits 2 with its exact message and leaves --out untouched", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bad-input-" });
  try {
    for (const c of CASES) {
      const file = typeof c.data === "string" ? `${dir}/${c.name}.jsonl` : c.data.path;
      if (typeof c.data === "string") await Deno.writeTextFile(file, c.data);
      const expected = c.message(file, dir);
      // Twice: into a missing --out, and into an existing one holding files of its own.
      const existing = `${dir}/out-${c.name}-existing`;
      await Deno.mkdir(`${existing}/sub`, { recursive: true });
      await Deno.writeTextFile(`${existing}/notes.txt`, "mine");
      await Deno.writeFile(`${existing}/sub/weights.bin`, new Uint8Array([1, 2, 3]));
      const before = await snapshot(existing);
      for (const out of [`${dir}/out-${c.name}-missing`, existing]) {
        const argv = [
          "--model",
          `${FX}/tiny-gpt2`,
          "--data",
          file,
          "--out",
          out,
          "--backend",
          "wasm",
          ...(c.args ?? []),
        ];
        const r = await runTrainCli(argv);
        assert.equal(r.code, 2, `${c.name}: exit code (stderr: ${r.stderr})`);
        assert.equal(r.stdout, "", `${c.name}: nothing on stdout`);
        const text = r.stderr.replace(/^error: /, "").replace(/\n$/, "");
        assert.ok(r.stderr.startsWith("error: "), `${c.name}: ${r.stderr}`);
        if (typeof expected === "string") assert.equal(text, expected, c.name);
        else assert.match(text, expected, c.name);
        if (out === existing) assert.deepEqual(await snapshot(out), before, `${c.name}: --out changed`);
        else assert.equal(await snapshot(out), null, `${c.name}: --out was created`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("missing required options exit 2 with the usage", async () => {
  const r = await runTrainCli(["--model", `${FX}/tiny-gpt2`, "--data", `${FX}/pairs.jsonl`]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^error: --out is required\n\nUsage: deno task cli train --model DIR --data FILE --out DIR/);
});

Deno.test("chosen identical to rejected is a warning: training proceeds (wasm)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "same-pair-" });
  try {
    const file = `${dir}/pairs.jsonl`;
    await Deno.writeTextFile(file, `${GOOD}\n{"prompt_ids": [1, 2], "chosen_ids": [5, 6], "rejected_ids": [5, 6]}\n`);
    const out = `${dir}/out`;
    const r = await runTrainCli([
      "--model",
      `${FX}/tiny-gpt2`,
      "--data",
      file,
      "--out",
      out,
      "--backend",
      "wasm",
      "--max-steps",
      "1",
    ]); // deno-fmt-ignore
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      r.stderr.includes(
        `\nwarning: ${file}:2: field "rejected_ids": identical to chosen: this pair carries no preference\n`,
      ),
      r.stderr,
    );
    assert.ok((await listTree(out)).includes("adapter_model.safetensors"));
    assert.equal((await metricsOf(out)).length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--backend webgpu without WebGPU exits 2 before writing anything", async () => {
  const dir = await Deno.makeTempDir({ prefix: "no-webgpu-" });
  try {
    const out = `${dir}/out`;
    const r = await new Deno.Command(DENO, {
      args: [
        "run",
        "-A",
        "tests/train/_no_webgpu_cli.ts",
        "train",
        "--model",
        `${FX}/tiny-gpt2`,
        "--data",
        `${FX}/pairs.jsonl`,
        "--out",
        out,
        "--backend",
        "webgpu",
      ], // deno-fmt-ignore
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 2, stderr);
    assert.equal(
      stderr,
      "error: WebGPU was requested but is not available: navigator.gpu is not defined in this runtime. " +
        "Use --backend wasm or auto\n",
    );
    assert.equal(await snapshot(out), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a non-finite loss exits 1 naming the step and batch lines, keeping the last good checkpoint (wasm)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nan-" });
  try {
    const out = `${dir}/out`;
    // lr 1e30 without clipping: step 1 is finite, its update blows the adapter up, step 2's loss is NaN.
    const r = await runTrainCli([
      "--model",
      `${FX}/tiny-gpt2`,
      "--data",
      `${FX}/pairs.jsonl`,
      "--out",
      out,
      "--backend",
      "wasm",
      "--optimizer",
      "sgd",
      "--lr",
      "1e30",
      "--max-grad-norm",
      "0",
      "--schedule",
      "constant",
      "--batch-size",
      "3",
      "--epochs",
      "3",
      "--checkpoint-every",
      "1",
      "--init-adapter",
      `${FX}/tiny-gpt2/adapter`,
    ]); // deno-fmt-ignore
    assert.equal(r.code, 1, r.stderr);
    // One batch of all 3 pairs, in the sampler's (length-sorted) order.
    assert.ok(
      r.stderr.endsWith(
        "error: Non-finite loss at step 2 (loss NaN, grad norm NaN), batch of data lines 1, 2, 3. " +
          "Training stopped; checkpoints written before this step are kept. Lower --lr or --beta, or enable --max-grad-norm\n",
      ),
      r.stderr,
    );
    assert.deepEqual(await listTree(out), [
      "checkpoints/",
      "checkpoints/step-000001/",
      "checkpoints/step-000001/adapter_config.json",
      "checkpoints/step-000001/adapter_model.safetensors",
      "checkpoints/step-000001/optimizer.safetensors",
      "checkpoints/step-000001/trainer_state.json",
      "metrics.jsonl",
    ]);
    const rows = await metricsOf(out);
    assert.equal(rows.length, 1);
    assert.ok(Number.isFinite(rows[0].loss));
    const ck = await loadCheckpoint(`${out}/checkpoints/step-000001`, localFiles());
    assert.equal(ck.state.step, 1);
    assert.equal(ck.adapter.tensors.size, 12, "A and B of c_attn, attn.c_proj and mlp.c_proj in 2 layers");
    assert.deepEqual(ck.state.cursor, { epoch: 1, batchIndex: 0 });
    for (const [k, t] of ck.adapter.tensors) {
      assert.ok((t.data as Float32Array).every(Number.isFinite), `${k} is finite in the kept checkpoint`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("library errors name the option (the CLI's name the flag, above)", async () => {
  const { Trainer } = await import("../../src/train/trainer.ts");
  const dir = await Deno.makeTempDir({ prefix: "lib-errors-" });
  try {
    const base = { model: `${FX}/tiny-gpt2`, data: `${FX}/pairs.jsonl`, out: `${dir}/out`, backend: "wasm" as const };
    const message = async (o: Record<string, unknown>) => {
      try {
        await Trainer.create({ ...base, ...o });
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error(`accepted ${JSON.stringify(o)}`);
    };
    assert.equal(await message({ beta: -1 }), "beta must be a positive number, got -1");
    assert.equal(await message({ logitTemperature: 0 }), "logitTemperature must be a positive number, got 0");
    assert.equal(await message({ gradAccum: 1.5 }), "gradAccum must be an integer >= 1, got 1.5");
    assert.equal(
      await message({ loss: "exo-rw" }),
      `${FX}/pairs.jsonl: loss exo-rw needs reward groups {"prompt","completions","rewards"}, but the file holds pairs`,
    );
    assert.equal(await snapshot(`${dir}/out`), null, "nothing written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
