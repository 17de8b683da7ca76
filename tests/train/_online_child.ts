/**
 * The online tuner in a process of its own, for the kill test (`online_kill_test.ts`): feeds the
 * records of a JSONL file to a tuner on `dir` (local files) one by one and prints `ack <index>` as
 * each `add()` resolves, then flushes and prints `done`. Its parent kills it with SIGKILL mid-run.
 * With IDLE_AFTER, it waits for the updates due once record IDLE_AFTER is acknowledged to finish
 * (so that the kill finds checkpoints), and prints `idle` then.
 *
 * Usage: deno run -A tests/train/_online_child.ts DIR DATA.jsonl [IDLE_AFTER]
 */

import { OnlineTuner } from "../../src/train/online.ts";
import { CHILD_OPTIONS } from "./_online_support.ts";

const [dir, data, idleAfter] = Deno.args;
const records = (await Deno.readTextFile(data)).trim().split("\n").map((l) => JSON.parse(l));
const tuner = await OnlineTuner.create({ ...CHILD_OPTIONS, dir });
const skip = tuner.stats.acknowledged;
const out = (line: string) => Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
out(`ready ${skip}`);
for (const r of records.slice(skip)) {
  const { index } = await tuner.add(r);
  out(`ack ${index}`);
  if (String(index) === idleAfter) {
    await tuner.idle();
    out("idle");
  }
}
await tuner.flush();
await tuner.close();
out("done");
