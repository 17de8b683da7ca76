import assert from "node:assert/strict";
import { commandOracle, functionOracle, vaderOracle } from "../../src/experiment/oracle.ts";

const items = [{ prompt: "The movie was", completion: " great fun" }, { prompt: "I", completion: " hated it" }];
// A user's scorer as a command: reads JSON lines, prints one reward per line (here: completion length).
const deno = Deno.execPath();
const script = (body: string) =>
  `${deno} eval 'const t = new TextDecoder().decode(await new Response(Deno.stdin.readable).arrayBuffer()); ${body}'`;

Deno.test("commandOracle: JSON lines in, one number (or {reward}) per line out", async () => {
  const lengths = commandOracle(
    script(`for (const l of t.trim().split("\\n")) console.log(JSON.parse(l).completion.length)`),
  );
  assert.deepEqual(await lengths.score(items), [10, 9]);
  const objects = commandOracle(
    script(
      `for (const l of t.trim().split("\\n")) console.log(JSON.stringify({ reward: -JSON.parse(l).prompt.length }))`,
    ),
  );
  assert.deepEqual(await objects.score(items), [-13, -1]);
  assert.match(objects.name, /^command: /);
});

Deno.test("commandOracle: failures say what went wrong", async () => {
  await assert.rejects(commandOracle("echo broken >&2; exit 3").score(items), /exited with code 3[^]*broken/);
  await assert.rejects(commandOracle("echo 1").score(items), /printed 1 lines for 2 completions/);
  await assert.rejects(commandOracle("printf '1\\nabc\\n'").score(items), /output line 2 is not a number/);
  await assert.rejects(commandOracle("printf '1\\nNaN\\n'").score(items), /output line 2 is not a number/);
  assert.throws(() => commandOracle(" "), /--oracle-cmd is empty/);
});

Deno.test("functionOracle and the VADER oracle", async () => {
  const f = functionOracle("len", (p, c) => p.length + c.length);
  assert.deepEqual(await f.score(items), [23, 10]);
  await assert.rejects(functionOracle("bad", () => NaN).score(items), /non-finite reward \(NaN\) for completion 0/);
  const vader = await vaderOracle();
  const [good, bad] = await vader.score(items);
  assert.ok(good > 0.3 && bad < -0.3, `${good} ${bad}`);
  // The data's oracle scores prompt + completion (data/README.md): "The movie was great fun".
  assert.ok(good >= -1 && good <= 1);
});
