/**
 * Issue #19: killing an online tuner (its process, with SIGKILL, in the middle of a run) loses no
 * acknowledged record. A child process feeds records and prints each index as `add()` resolves;
 * the parent kills it mid-run, restarts a tuner on the same directory, and checks that every
 * acknowledged record is in the log (in order), that the run continues from the last checkpoint,
 * and that, fed the rest, it ends with the adapter bytes of a run that was never killed.
 */

import assert from "node:assert/strict";
import { memoryFiles } from "../../src/io/files.ts";
import { OnlineTuner } from "../../src/train/online.ts";
import { CHILD_OPTIONS } from "./_online_support.ts";
import { DENO, ROOT, writePairs } from "./_trainer_support.ts";

/** Runs the child until it has printed `ack <killAt>`, then kills it; returns the acknowledged indices. */
async function runAndKill(dir: string, data: string, killAt: number, idleAfter: number): Promise<number[]> {
  const child = new Deno.Command(DENO, {
    args: ["run", "-A", `${ROOT}/tests/train/_online_child.ts`, dir, data, String(idleAfter)],
    cwd: ROOT,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const acks: number[] = [];
  const dec = new TextDecoder();
  let buf = "";
  let killed = false;
  for await (const chunk of child.stdout) {
    buf += dec.decode(chunk, { stream: true });
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith("ack ")) acks.push(Number(line.slice(4)));
      if (line === `ack ${killAt}` && !killed) {
        child.kill("SIGKILL");
        killed = true;
      }
    }
  }
  const status = await child.status;
  assert.ok(killed, `the child finished before ack ${killAt} (acks: ${acks.join(", ")})`);
  assert.equal(status.signal, "SIGKILL");
  return acks;
}

Deno.test("an online tuner killed with SIGKILL mid-run loses no acknowledged record", async () => {
  const dir = await Deno.makeTempDir({ prefix: "online-kill-" });
  try {
    const data = `${dir}/feedback.jsonl`;
    await writePairs(data, 15, 21);
    const records = (await Deno.readTextFile(data)).trim().split("\n").map((l) => JSON.parse(l));

    // The run that is never killed (in memory), for the final bytes.
    const whole = await OnlineTuner.create({ ...CHILD_OPTIONS, dir: "w", files: memoryFiles() });
    for (const r of records) await whole.add(r);
    await whole.flush();
    const expected = whole.adapter;
    await whole.close();

    // Updates 1 and 2 finish (checkpoints 1 and 2); record 8 triggers update 3, and the child is
    // killed as soon as record 8 is acknowledged: in update 3, or in the append of record 9.
    const run = `${dir}/run`;
    const acks = await runAndKill(run, data, 8, 5);
    assert.deepEqual(acks, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    const restarted = await OnlineTuner.create({ ...CHILD_OPTIONS, dir: run });
    const s = restarted.stats;
    console.log(`after the kill: ${JSON.stringify(s)}`);
    assert.ok(s.acknowledged >= 9, "every acknowledged record is in the log");
    const logged = (await Deno.readTextFile(`${run}/feedback.jsonl`)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(logged, records.slice(0, s.acknowledged), "the log holds the records in order");
    assert.equal(s.trained + s.pending, s.acknowledged, "each logged record is trained or pending");
    assert.ok(s.trained === 6 || s.trained === 9, `continues from checkpoint 2 (or 3 if it was written): ${s.trained}`);
    await restarted.close();

    // A second child continues the same directory from where the log ends, to the end.
    const child = new Deno.Command(DENO, {
      args: ["run", "-A", `${ROOT}/tests/train/_online_child.ts`, run, data],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    });
    const out = await child.output();
    const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    assert.equal(lines[0], `ready ${s.acknowledged}`);
    assert.equal(lines.at(-1), "done");
    const final = await OnlineTuner.create({ ...CHILD_OPTIONS, dir: run });
    assert.deepEqual(final.stats, { acknowledged: 15, trained: 15, pending: 0, buffered: 4, step: 5 });
    for (const [k, t] of expected.tensors) {
      assert.deepEqual(final.adapter.tensors.get(k)!.data, t.data, `${k}: killed and restarted = never killed`);
    }
    await final.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
