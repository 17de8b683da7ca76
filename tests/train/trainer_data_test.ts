/**
 * Issue #19: `data` as a JSONL file, a list of records or an (async) stream of records gives the same
 * adapter bytes with the same seed, for text, pre-tokenized and conversational pairs and for reward
 * groups; records are validated as file lines are, with errors naming the record's index and field;
 * without `out` nothing is written and the summary holds the adapter and optimizer state in memory,
 * equal to what a run with `out` writes (adapter and final checkpoint).
 */

import assert from "node:assert/strict";
import { validateAll, validateRecords } from "../../src/data/formats.ts";
import { DataError } from "../../src/data/jsonl.ts";
import { localFiles, memoryFiles } from "../../src/io/files.ts";
import { ADAPTER_WEIGHTS_FILE, type LoraAdapter, writeAdapter } from "../../src/lora/adapter.ts";
import { type LoadedModel, loadModel } from "../../src/models/load.ts";
import { OptionError } from "../../src/options/table.ts";
import { latestCheckpoint, loadCheckpoint } from "../../src/train/checkpoint.ts";
import { Trainer, type TrainOptions } from "../../src/train/trainer.ts";
import { FX, writePairs } from "./_trainer_support.ts";

/** The bytes `writeAdapter` writes for an adapter (its safetensors file), through a memory sink. */
async function adapterBytes(adapter: LoraAdapter): Promise<Uint8Array> {
  const mem = memoryFiles();
  await writeAdapter("a", adapter, mem);
  return await mem.readBytes(`a/${ADAPTER_WEIGHTS_FILE}`);
}

/** A small chat template (turns as `role: content` lines), so tiny-gpt2 can take conversational data. */
const TEMPLATE =
  "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";

/** tiny-gpt2 with the chat template above, from memory. */
async function chatModel(): Promise<LoadedModel> {
  const dir = `${FX}/tiny-gpt2`;
  const files: Record<string, Uint8Array> = {};
  for (const f of ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"]) {
    files[`m/${f}`] = await Deno.readFile(`${dir}/${f}`);
  }
  files["m/tokenizer_config.json"] = new TextEncoder().encode(
    JSON.stringify({ ...JSON.parse(await Deno.readTextFile(`${dir}/tokenizer_config.json`)), chat_template: TEMPLATE }),
  );
  return await loadModel("m", memoryFiles(files));
}

/** The records as an async stream that yields to the event loop between records. */
async function* slowStream(records: Record<string, unknown>[]) {
  for (const r of records) {
    await new Promise((r) => setTimeout(r, 0));
    yield r;
  }
}

const WORDS = ["good", "bad", "film", "plot", "slow", "fun", "dull", "great", "acting", "music"];
function text(i: number, n: number): string {
  return Array.from({ length: n }, (_, j) => WORDS[(i * 7 + j * 3) % WORDS.length]).join(" ");
}

/** Records of each format (6 examples each). */
async function formats(): Promise<Record<string, { records: Record<string, unknown>[]; loss: TrainOptions["loss"] }>> {
  const tmp = await Deno.makeTempFile({ suffix: ".jsonl" });
  await writePairs(tmp, 6, 11);
  const ids = (await Deno.readTextFile(tmp)).trim().split("\n").map((l) => JSON.parse(l));
  await Deno.remove(tmp);
  const texts = Array.from({ length: 6 }, (_, i) => ({
    prompt: `The ${text(i, 2)} was`,
    chosen: ` ${text(i + 1, 3)}`,
    rejected: ` ${text(i + 2, 4)}`,
  }));
  const chat = texts.map((t) => ({
    prompt: [{ role: "user", content: t.prompt }],
    chosen: [{ role: "assistant", content: t.chosen.trim() }],
    rejected: [{ role: "assistant", content: t.rejected.trim() }],
  }));
  const groups = texts.map((t, i) => ({
    prompt: t.prompt,
    completions: [t.chosen, t.rejected, ` ${text(i + 5, 2)}`],
    rewards: [1, -0.5, (i % 3) / 2],
  }));
  return {
    "pre-tokenized pairs": { records: ids, loss: "exo-pref" },
    "text pairs": { records: texts, loss: "dpo-pref" },
    "conversational pairs": { records: chat, loss: "exo-pref" },
    "text reward groups": { records: groups, loss: "exo-rw" },
  };
}

Deno.test("the same records from a JSONL file, a list and a stream give the same adapter bytes", async () => {
  const plain = await loadModel(`${FX}/tiny-gpt2`);
  const chat = await chatModel();
  const dir = await Deno.makeTempDir({ prefix: "data-in-" });
  try {
    for (const [name, { records, loss }] of Object.entries(await formats())) {
      const model = name.startsWith("conversational") ? chat : plain;
      const base = { model, loss, batchSize: 2, lr: 5e-3, seed: 3, backend: "wasm" as const };
      // 1. a JSONL file, written to disk (the adapter read back as bytes from --out)
      const file = `${dir}/${name.replaceAll(" ", "-")}.jsonl`;
      await Deno.writeTextFile(file, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
      const out = `${dir}/${name.replaceAll(" ", "-")}-out`;
      const s1 = await (await Trainer.create({ ...base, data: file, out, files: localFiles() })).train();
      const fromFile = await Deno.readFile(`${out}/${ADAPTER_WEIGHTS_FILE}`);
      // 2. a list of records, nothing written (the summary's adapter)
      const mem = memoryFiles();
      const s2 = await (await Trainer.create({ ...base, data: records, files: mem })).train();
      assert.deepEqual(mem.paths(), [], `${name}: a run without out writes nothing`);
      assert.equal(s2.out, null);
      // 3. an async stream, out in a memory sink
      const s3 = await (await Trainer.create({ ...base, data: slowStream(records), out: "run", files: memoryFiles() }))
        .train();
      assert.equal(s1.steps, 3, `${name}: 6 examples in batches of 2`);
      assert.equal(s2.steps, 3);
      assert.equal(s3.steps, 3);
      assert.deepEqual(await adapterBytes(s2.trained.adapter), fromFile, `${name}: list vs file`);
      assert.deepEqual(await adapterBytes(s3.trained.adapter), fromFile, `${name}: stream vs file`);
      assert.deepEqual(await adapterBytes(s1.trained.adapter), fromFile, `${name}: summary vs written`);
      assert.ok(s1.finalLoss !== null && Number.isFinite(s1.finalLoss));
      assert.equal(s2.finalLoss, s1.finalLoss);
      console.log(`${name}: 3 sources, same ${fromFile.length} adapter bytes; final loss ${s1.finalLoss}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the summary's optimizer state is the final checkpoint's; out in a memory sink holds the run", async () => {
  const model = await loadModel(`${FX}/tiny-gpt2`);
  const { records } = (await formats())["pre-tokenized pairs"];
  const mem = memoryFiles();
  const s = await (await Trainer.create({ model, data: records, out: "r", files: mem, batchSize: 3, seed: 1 })).train();
  const ck = await loadCheckpoint((await latestCheckpoint("r", mem))!, mem);
  assert.equal(s.trained.optimizer.step, 2);
  assert.equal(ck.state.step, 2);
  assert.deepEqual([...s.trained.optimizer.slots.keys()].sort(), [...ck.optimizer.keys()].sort());
  for (const [k, v] of ck.optimizer) assert.deepEqual(s.trained.optimizer.slots.get(k), v, k);
  assert.deepEqual(mem.paths().filter((p) => !p.includes("checkpoints/")), [
    "r/adapter_config.json",
    "r/adapter_model.safetensors",
    "r/metrics.jsonl",
  ]);
  assert.equal((await mem.readText("r/metrics.jsonl")).trim().split("\n").length, 2);
});

/** Lines with problems of every kind (no malformed JSON: a list holds values, not text). */
const BAD: Record<string, unknown>[] = [
  { prompt: "a", chosen: "b", rejected: "c" },
  { prompt: "a", chosen: 3, rejected: "c" },
  { prompt: "a", chosen: "" },
  [1, 2] as unknown as Record<string, unknown>, // not an object
  { prompt: "a", completions: ["b", "c"], rewards: [1, 2] },
  { prompt_ids: [1], chosen_ids: [2], rejected_ids: [3] },
  { prompt: [{ role: "user", content: "x" }], chosen: [{ role: 5 }], rejected: [{ role: "assistant", content: "y" }] },
  { prompt: "a", chosen: "b", rejected: "b" },
  { foo: 1 },
];

Deno.test("records are validated as file lines are; errors name the record's index and field", () => {
  const fileError = (() => {
    try {
      validateAll(BAD.map((r) => JSON.stringify(r)).join("\n"), { file: "d.jsonl" });
    } catch (e) {
      return e as DataError;
    }
    assert.fail("the file should be refused");
  })();
  const listError = (() => {
    try {
      validateRecords(BAD);
    } catch (e) {
      return e as DataError;
    }
    assert.fail("the list should be refused");
  })();
  assert.ok(fileError.errors.length >= 6, fileError.message);
  // The same errors, line N of the file being record N - 1 of the list.
  const asRecords = (m: string) =>
    m.replace(/^d\.jsonl:(\d+): /, (_, n) => `data[${Number(n) - 1}]: `)
      .replace(/\bline (\d+)\b/g, (_, n) => `record ${Number(n) - 1}`)
      .replace("per line", "per record").replace("the line has", "the record has")
      .replace("all lines of a file", "all records of a list");
  assert.deepEqual(listError.errors.map((e) => e.message), fileError.errors.map((e) => asRecords(e.message)));
  assert.equal(listError.errors[0].message, 'data[1]: field "chosen": expected a string, got number');
  assert.deepEqual([listError.errors[0].line, listError.errors[0].unit, listError.errors[0].field], [
    1,
    "record",
    "chosen",
  ]);
  console.log(listError.message);
  // A good list gives the file's records, indices for lines; warnings name the record too.
  const ok = validateRecords([BAD[0], BAD[7]]);
  assert.deepEqual(ok.records.map((r) => r.line), [0, 1]);
  assert.equal(
    ok.warnings[0].message,
    'data[1]: field "rejected": identical to chosen: this pair carries no preference',
  );
  assert.throws(() => validateRecords([]), /^DataError: data: no records: the list is empty$/);
});

Deno.test("Trainer.create refuses bad records, a failing stream and checkpoints without out, writing nothing", async () => {
  const model = await loadModel(`${FX}/tiny-gpt2`);
  const mem = memoryFiles();
  await assert.rejects(
    () => Trainer.create({ model, data: [BAD[0], BAD[1]], files: mem }),
    (e: unknown) => e instanceof DataError && e.message === 'data[1]: field "chosen": expected a string, got number',
  );
  async function* failing() {
    yield BAD[0];
    throw new Error("connection reset");
  }
  await assert.rejects(
    () => Trainer.create({ model, data: failing(), files: mem }),
    /^DataError: data\[1\]: the data stream failed: connection reset$/,
  );
  await assert.rejects(
    () => Trainer.create({ model, data: [BAD[0]], files: mem, loss: "exo-rw" }),
    /data: loss exo-rw needs reward groups/,
  );
  for (const extra of [{ resume: true }, { checkpointEvery: 2 }]) {
    await assert.rejects(
      () => Trainer.create({ model, data: [BAD[0]], files: mem, ...extra }),
      (e: unknown) => e instanceof OptionError && /needs out: checkpoints are written there$/.test(e.message),
    );
  }
  await assert.rejects(
    () => Trainer.create({ model, data: 42 as unknown as string, files: mem }),
    /^OptionError: data must be a JSONL file path, a list of records, or an \(async\) iterable of records, got 42$/,
  );
  assert.deepEqual(mem.paths(), []);
});
