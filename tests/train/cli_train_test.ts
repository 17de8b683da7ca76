/**
 * The `train` command as users run it: Ctrl-C (SIGINT to a subprocess) finishes the current step,
 * writes a checkpoint and exits 0; `--resume` continues from that checkpoint to the same adapter as an
 * uninterrupted run; every metrics line carries TRL's names plus step, epoch, lr and tokens/s; `--json`
 * prints exactly one JSON object on stdout.
 */

import assert from "node:assert/strict";
import { localFiles } from "../../src/io/files.ts";
import { loadCheckpoint } from "../../src/train/checkpoint.ts";
import { train } from "../../src/train/trainer.ts";
import { DENO, fileDigest, FX, listTree, metricsOf, ROOT, runTrainCli, writePairs } from "./_trainer_support.ts";

const METRIC_KEYS = [
  "step",
  "epoch",
  "lr",
  "loss",
  "grad_norm",
  "rewards/chosen",
  "rewards/rejected",
  "rewards/accuracies",
  "rewards/margins",
  "logps/chosen",
  "logps/rejected",
  "tokens",
  "tokens/s",
  "step_seconds",
].sort();

/** Waits until `path` holds at least one complete line. */
async function firstLine(path: string, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    try {
      if ((await Deno.readTextFile(path)).includes("\n")) return;
    } catch { /* not created yet */ }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no metrics line in ${path} after ${timeoutMs} ms`);
}

Deno.test("Ctrl-C writes a checkpoint and exits 0; --resume finishes the run like an uninterrupted one (wasm)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sigint-" });
  try {
    const data = `${dir}/pairs.jsonl`;
    await writePairs(data, 12, 11);
    const out = `${dir}/out`;
    // 12 pairs, batches of 1, 8 epochs: 96 updates of ~10 ms, so the signal lands mid-run.
    const total = 96;
    const argv = [
      "--model",
      `${FX}/tiny-gpt2`,
      "--data",
      data,
      "--out",
      out,
      "--backend",
      "wasm",
      "--batch-size",
      "1",
      "--epochs",
      "8",
      "--lr",
      "1e-3",
      "--warmup-steps",
      "5",
      "--seed",
      "3",
    ]; // deno-fmt-ignore
    const child = new Deno.Command(DENO, {
      args: ["run", "-A", "src/cli/main.ts", "train", ...argv],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await firstLine(`${out}/metrics.jsonl`, 60_000);
    child.kill("SIGINT");
    const r = await child.output();
    const stderr = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 0, stderr);
    assert.equal(new TextDecoder().decode(r.stdout), "");
    assert.ok(
      stderr.includes("interrupt: finishing the current step, writing a checkpoint (Ctrl-C again to quit at once)"),
      stderr,
    );
    const m = stderr.match(/^interrupted after (\d+) steps, loss [0-9.]+, \d+ tokens\/s on wasm; adapter in (.+)$/m);
    assert.ok(m, stderr);
    const stopped = Number(m[1]);
    assert.ok(stopped >= 1 && stopped < total, `stopped after ${stopped} of ${total} steps`);
    console.log(`  SIGINT after the first metrics line: stopped after ${stopped} of ${total} steps`);

    // The checkpoint of the step it stopped at, with the cursor; no final adapter, nothing temporary.
    const name = `step-${String(stopped).padStart(6, "0")}`;
    const tree = await listTree(out);
    assert.ok(tree.includes(`checkpoints/${name}/trainer_state.json`), tree.join("\n"));
    assert.ok(!tree.includes("adapter_model.safetensors"));
    assert.deepEqual(tree.filter((p) => p.includes(".tmp")), []);
    const ck = await loadCheckpoint(`${out}/checkpoints/${name}`, localFiles());
    assert.equal(ck.state.step, stopped);
    assert.deepEqual(ck.state.cursor, { epoch: Math.floor(stopped / 12), batchIndex: stopped % 12 });
    assert.equal((await metricsOf(out)).length, stopped);

    // --resume --json: continues from that step; exactly one JSON object on stdout.
    const resumed = await runTrainCli([...argv, "--resume", "--json"]);
    assert.equal(resumed.code, 0, resumed.stderr);
    const lines = resumed.stdout.split("\n").filter((l) => l.length > 0);
    assert.equal(lines.length, 1, resumed.stdout);
    const summary = JSON.parse(lines[0]);
    assert.equal(summary.resumedFromStep, stopped);
    assert.equal(summary.steps, total);
    assert.equal(summary.interrupted, false);
    assert.match(resumed.stderr, new RegExp(`^resuming from ${out}/checkpoints/${name} \\(step ${stopped}\\)$`, "m"));

    // Every metrics line: TRL's names plus step, epoch, lr, tokens/s; steps 1..total, once each.
    const rows = await metricsOf(out);
    assert.deepEqual(rows.map((r) => r.step), Array.from({ length: total }, (_, i) => i + 1));
    for (const row of rows) {
      assert.deepEqual(Object.keys(row).sort(), METRIC_KEYS);
      for (const k of METRIC_KEYS) assert.ok(Number.isFinite(row[k]), `${k} = ${row[k]}`);
      assert.ok(row["tokens/s"] > 0);
    }
    assert.equal(rows[total - 1].epoch, 8);

    // The same adapter as the uninterrupted run.
    const ref = `${dir}/ref`;
    await train({
      model: `${FX}/tiny-gpt2`,
      data,
      out: ref,
      backend: "wasm",
      batchSize: 1,
      epochs: 8,
      lr: 1e-3,
      warmupSteps: 5,
      seed: 3,
    });
    assert.equal(
      await fileDigest(`${out}/adapter_model.safetensors`),
      await fileDigest(`${ref}/adapter_model.safetensors`),
    );
    const refRows = await metricsOf(ref);
    assert.deepEqual(rows.map((r) => r.loss), refRows.map((r) => r.loss));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
