/**
 * The writable memory sink behaves as local files do: the same script of writes, appends, renames,
 * removals and listings gives the same results (and fails at the same steps) on `memoryFiles()` and
 * on `localFiles()` in a temporary directory; writes are copies swapped in whole; checkpoints (the
 * trainer's atomic directory rename) and adapters round-trip through it.
 */

import assert from "node:assert/strict";
import { type FileSink, type FileSource, localFiles, memoryFiles } from "../../src/io/files.ts";
import { latestCheckpoint, loadCheckpoint, saveCheckpoint } from "../../src/train/checkpoint.ts";
import { initLoraAdapter, readAdapter, writeAdapter } from "../../src/lora/adapter.ts";
import { createLoraConfig } from "../../src/lora/config.ts";
import { loadModel } from "../../src/models/load.ts";
import { Rng } from "../../src/util/rng.ts";

type Files = FileSource & FileSink;
type Op = [string, (f: Files, at: (p: string) => string) => Promise<unknown>];

/** Each step's outcome: its value, or "error" (messages differ between the two: paths, errno). */
async function play(f: Files, at: (p: string) => string, ops: Op[]): Promise<[string, unknown][]> {
  const out: [string, unknown][] = [];
  for (const [name, op] of ops) {
    try {
      const v = await op(f, at);
      out.push([name, v instanceof Uint8Array ? new TextDecoder().decode(v) : v ?? "ok"]);
    } catch {
      out.push([name, "error"]);
    }
  }
  return out;
}

const OPS: Op[] = [
  ["write without parent", (f, at) => f.writeText(at("a/x.txt"), "1")],
  ["append without parent", (f, at) => f.appendText(at("a/log"), "1")],
  ["mkdir -p", (f, at) => f.mkdir(at("a/b/c"))],
  ["mkdir again", (f, at) => f.mkdir(at("a/b"))],
  ["write", (f, at) => f.writeText(at("a/x.txt"), "one")],
  ["overwrite", (f, at) => f.writeText(at("a/x.txt"), "two")],
  ["read", (f, at) => f.readText(at("a/x.txt"))],
  ["append new", (f, at) => f.appendText(at("a/log"), "l1\n")],
  ["append more", (f, at) => f.appendText(at("a/log"), "l2\n")],
  ["read log", (f, at) => f.readText(at("a/log"))],
  ["write onto a dir", (f, at) => f.writeText(at("a/b"), "x")],
  ["mkdir onto a file", (f, at) => f.mkdir(at("a/x.txt/y"))],
  ["list a", (f, at) => f.list(at("a"))],
  ["list missing", (f, at) => f.list(at("nope"))],
  ["exists dir", (f, at) => f.exists(at("a/b"))],
  ["exists file", (f, at) => f.exists(at("a/x.txt"))],
  ["exists missing", (f, at) => f.exists(at("a/zz"))],
  ["read missing", (f, at) => f.readBytes(at("a/zz"))],
  ["write in c", (f, at) => f.writeText(at("a/b/c/deep.txt"), "deep")],
  ["rename dir", (f, at) => f.rename(at("a/b"), at("a/moved"))],
  ["old gone", (f, at) => f.exists(at("a/b/c/deep.txt"))],
  ["moved file", (f, at) => f.readText(at("a/moved/c/deep.txt"))],
  ["rename file over file", (f, at) => f.rename(at("a/log"), at("a/x.txt"))],
  ["replaced", (f, at) => f.readText(at("a/x.txt"))],
  ["rename missing", (f, at) => f.rename(at("a/none"), at("a/none2"))],
  ["mkdir empty", (f, at) => f.mkdir(at("a/empty"))],
  ["mkdir full", (f, at) => f.mkdir(at("a/full/sub"))],
  ["rename dir onto empty dir", (f, at) => f.rename(at("a/moved"), at("a/empty"))],
  ["rename dir onto non-empty dir", (f, at) => f.rename(at("a/empty"), at("a/full"))],
  ["list after", (f, at) => f.list(at("a"))],
  ["rename into missing parent", (f, at) => f.rename(at("a/x.txt"), at("q/x.txt"))],
  ["remove dir", (f, at) => f.remove(at("a/empty"))],
  ["remove missing", (f, at) => f.remove(at("a/empty"))],
  ["list end", (f, at) => f.list(at("a"))],
  ["normalized path", (f, at) => f.readText(at("a//./x.txt"))],
];

Deno.test("memoryFiles: the same script gives the same results as local files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "memfs-" });
  try {
    const disk = await play(localFiles(), (p) => `${dir}/${p}`, OPS);
    const mem = await play(memoryFiles(), (p) => p, OPS);
    assert.deepEqual(mem, disk);
    // The script is not vacuous: it has both outcomes.
    assert.ok(disk.some(([, v]) => v === "error") && disk.some(([, v]) => v !== "error"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("memoryFiles: writes store a copy; views handed out do not change under appends", async () => {
  const f = memoryFiles({ "m/config.json": "{}" });
  assert.deepEqual(await f.list("m"), ["config.json"]);
  assert.equal(await f.exists("m"), true);
  const bytes = new Uint8Array([1, 2, 3]);
  await f.writeBytes("m/w.bin", bytes);
  bytes[0] = 9;
  assert.deepEqual([...await f.readBytes("m/w.bin")], [1, 2, 3]);
  await f.appendText("m/log", "a");
  const before = await f.readText("m/log");
  for (let i = 0; i < 300; i++) await f.appendText("m/log", "b");
  assert.equal(before, "a");
  assert.equal((await f.readText("m/log")).length, 301);
  assert.deepEqual(f.paths(), ["m/config.json", "m/log", "m/w.bin"]);
  assert.equal(f.byteLength(), 2 + 301 + 3);
  await assert.rejects(() => f.readText("../x"), /climbs above the root/);
});

Deno.test("memoryFiles: checkpoints and adapters round-trip (atomic directory rename, pruning)", async () => {
  const model = await loadModel("tests/fixtures/tiny-gpt2");
  const adapter = initLoraAdapter(model.config, createLoraConfig(model.config, { r: 2 }), new Rng(1));
  const f = memoryFiles();
  await writeAdapter("out/adapter", adapter, f);
  const back = await readAdapter("out/adapter", f, model.config);
  for (const [k, t] of adapter.tensors) assert.deepEqual(back.tensors.get(k)!.data, t.data, k);
  const state = {
    cursor: { epoch: 0, batchIndex: 0 },
    rng: new Rng(3).state(),
    fingerprint: "f",
    metricsLines: 0,
    elapsedSeconds: 0,
  };
  const moments = new Map([["x::m", new Float32Array([1, 2])]]);
  for (const step of [1, 2, 3]) {
    await saveCheckpoint("out", f, { state: { ...state, step }, adapter, optimizer: moments });
  }
  assert.deepEqual(await f.list("out/checkpoints"), ["step-000002", "step-000003"]);
  const latest = await latestCheckpoint("out", f);
  assert.equal(latest, "out/checkpoints/step-000003");
  const ck = await loadCheckpoint(latest!, f);
  assert.equal(ck.state.step, 3);
  assert.deepEqual([...ck.optimizer.get("x::m")!], [1, 2]);
  assert.ok(f.paths().every((p) => !p.includes(".tmp")), "no temporary directory is left");
});
