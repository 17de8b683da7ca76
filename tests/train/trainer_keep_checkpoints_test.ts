/**
 * `keepCheckpoints`: by default the two newest checkpoints stay; 0 keeps every one (what the
 * experiment reads to evaluate the adapter along training), each loadable and at its own step.
 */

import assert from "node:assert/strict";
import { localFiles } from "../../src/io/files.ts";
import { loadCheckpoint } from "../../src/train/checkpoint.ts";
import { train } from "../../src/train/trainer.ts";
import { FX, runTrainCli, writePairs } from "./_trainer_support.ts";

const names = (dir: string) => [...Deno.readDirSync(`${dir}/checkpoints`)].map((e) => e.name).sort();

Deno.test("keepCheckpoints: 2 by default, 0 keeps every checkpoint with its own adapter", async () => {
  const dir = await Deno.makeTempDir({ prefix: "keep-ckpt-" });
  try {
    const data = `${dir}/pairs.jsonl`;
    await writePairs(data, 8, 3);
    const base = {
      model: `${FX}/tiny-gpt2`,
      data,
      batchSize: 2,
      maxSteps: 4,
      checkpointEvery: 1,
      lr: 1e-2,
      backend: "wasm" as const,
    };
    await train({ ...base, out: `${dir}/default` });
    assert.deepEqual(names(`${dir}/default`), ["step-000003", "step-000004"]);

    await train({ ...base, out: `${dir}/all`, keepCheckpoints: 0 });
    const all = names(`${dir}/all`);
    assert.deepEqual(all, ["step-000001", "step-000002", "step-000003", "step-000004"]);
    const files = localFiles();
    const ckpts = await Promise.all(all.map((n) => loadCheckpoint(`${dir}/all/checkpoints/${n}`, files)));
    assert.deepEqual(ckpts.map((c) => c.state.step), [1, 2, 3, 4]);
    // Each holds the adapter of its own step: consecutive ones differ (lr 1e-2 moves lora_B off 0).
    const key = [...ckpts[0].adapter.tensors.keys()].find((k) => k.includes("lora_B"))!;
    for (let i = 1; i < ckpts.length; i++) {
      const a = ckpts[i - 1].adapter.tensors.get(key)!.data as Float32Array;
      const b = ckpts[i].adapter.tensors.get(key)!.data as Float32Array;
      assert.ok(a.some((x, j) => x !== b[j]), `steps ${i} and ${i + 1} hold the same ${key}`);
    }

    const r = await runTrainCli([
      "--model",
      base.model,
      "--data",
      data,
      "--out",
      `${dir}/cli`,
      "--keep-checkpoints",
      "-1",
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--keep-checkpoints must be an integer >= 0, got -1/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
