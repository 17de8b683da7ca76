/**
 * The CLI: `ort-artifacts` writes the four artifacts (+ adapter_config.json) and `--check`s a
 * directory; bad input exits 2 naming the file and writes nothing; `train --backend ort-training`
 * trains.
 */

import assert from "node:assert/strict";
import { ADAPTER_CONFIG_FILE, ARTIFACT_FILES, readCheckpoint, writeCheckpoint } from "../../src/ort_training/mod.ts";
import { DENO, FX, ROOT, runTrainCli, snapshot } from "../train/_trainer_support.ts";

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await new Deno.Command(DENO, {
    args: ["run", "-A", "src/cli/main.ts", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

Deno.test("ort-artifacts writes a checked set; --check reads it back; bad input exits 2", async () => {
  const root = await Deno.makeTempDir({ prefix: "ort-cli-" });
  try {
    const out = `${root}/artifacts`;
    const w = await cli([
      "ort-artifacts",
      "--model",
      `${FX}/tiny-llama`,
      "--out",
      out,
      "--layout",
      "python",
      "--loss",
      "exo-rw",
      "--k",
      "3",
      "--optimizer",
      "sgd",
      "--lr",
      "0.1",
      "--schedule",
      "cosine",
      "--steps",
      "50",
      "--json",
    ]); // deno-fmt-ignore
    assert.equal(w.code, 0, w.stderr);
    const summary = JSON.parse(w.stdout);
    assert.equal(summary.layout, "python");
    assert.equal(summary.params, 28, "7 targets x 2 layers x (A, B)");
    const names = [...Object.values(ARTIFACT_FILES), ADAPTER_CONFIG_FILE].sort();
    assert.deepEqual(Object.keys(await snapshot(out) ?? {}).sort(), names);

    const c = await cli(["ort-artifacts", "--check", out, "--json"]);
    assert.equal(c.code, 0, c.stderr);
    const info = JSON.parse(c.stdout);
    assert.equal(info.version, 2);
    assert.equal(info.optimizer, "sgd");
    assert.ok(info.frozen > 0);
    assert.ok(info.userInputs.includes("rewards"), "the -rw loss takes rewards");
    assert.ok(info.trainable.every((p: { peftKey: string | null }) => p.peftKey?.endsWith(".weight")));

    // Bad input: a checkpoint of another version, a non-empty --out, a -rw loss without --k.
    await Deno.writeFile(
      `${out}/checkpoint`,
      writeCheckpoint({ ...readCheckpoint(await Deno.readFile(`${out}/checkpoint`)), version: 1 }),
    );
    const bad = await cli(["ort-artifacts", "--check", out]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, new RegExp(`error: ${out}/checkpoint: field "version" is 1`));
    const taken = await cli(["ort-artifacts", "--model", `${FX}/tiny-llama`, "--out", out]);
    assert.equal(taken.code, 2);
    assert.match(taken.stderr, /is not empty; choose a new directory/);
    const noK = await cli(["ort-artifacts", "--model", `${FX}/tiny-llama`, "--out", `${root}/x`, "--loss", "dpo-rw"]);
    assert.equal(noK.code, 2);
    assert.match(noK.stderr, /--loss dpo-rw needs --k/);
    assert.equal(await snapshot(`${root}/x`), null);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("train --backend ort-training runs on ORT 1.19.2's TrainingSession and writes a PEFT adapter", async () => {
  const out = await Deno.makeTempDir({ prefix: "ort-cli-train-" });
  try {
    const r = await runTrainCli([
      "--model",
      `${FX}/tiny-gpt2`,
      "--data",
      `${FX}/pairs.jsonl`,
      "--out",
      out,
      "--backend",
      "ort-training",
      "--batch-size",
      "3",
      "--max-steps",
      "2",
      "--lora-r",
      "2",
    ]); // deno-fmt-ignore
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /^backend: ort-training \(ort-training requested \(ORT Web 1\.19\.2 TrainingSession, wasm\)\)$/m,
    );
    assert.match(r.stderr, /^done: 2 steps, loss [0-9.]+, \d+ tokens\/s on ort-training; adapter in /m);
    const files = Object.keys(await snapshot(out) ?? {});
    assert.ok(files.includes("adapter_model.safetensors") && files.includes("adapter_config.json"), files.join(", "));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
