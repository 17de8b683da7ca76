/**
 * Issue #19's example server (examples/online_server.ts), on the tiny fixture model over real HTTP:
 * generations come back as two samples, an A/B choice, a thumbs-down and a raw pair are acknowledged
 * in order, the feedback log holds the sampled tokens as pairs the right way round, the second one
 * triggers an update (in a Worker, as the example runs it) whose adapter the live generator then
 * has, and bad requests get a 400 naming the record and field, or a 404.
 */

import assert from "node:assert/strict";
import { onlineServer } from "../../examples/online_server.ts";
import { memoryFiles } from "../../src/io/files.ts";

const FX = new URL("../fixtures", import.meta.url).pathname;

Deno.test("the example server generates, takes feedback and tunes online", async () => {
  const files = memoryFiles();
  const app = await onlineServer(`${FX}/tiny-gpt2`, { updateEvery: 2, replay: 0, dir: "run", files, lr: 1e-2 });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.handler);
  const base = `http://127.0.0.1:${server.addr.port}`;
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${base}${path}`, { method: "POST", body: JSON.stringify(body) });
    return { status: res.status, json: await res.json() };
  };
  try {
    const a = await post("/generate", { prompt: "The movie was" });
    const b = await post("/generate", { prompt: "The plot" });
    for (const g of [a, b]) {
      assert.equal(g.status, 200);
      assert.equal(typeof g.json.id, "string");
      assert.equal(g.json.completions.length, 2);
      for (const c of g.json.completions) assert.equal(typeof c, "string");
    }
    assert.equal(app.generator.adapter, null, "the base model before any update");

    assert.deepEqual(await post("/feedback", { id: a.json.id, choice: 1 }), { status: 200, json: { acknowledged: 0 } });
    // Rated once: the id is forgotten, so a second rating is read as a record, and refused.
    const again = await post("/feedback", { id: a.json.id, choice: 0 });
    assert.equal(again.status, 400);
    assert.match(again.json.error, /^feedback\[1\]: /);
    assert.deepEqual(await post("/feedback", { id: b.json.id, thumbs: "down" }), {
      status: 200,
      json: { acknowledged: 1 },
    });
    await app.tuner.idle(); // the second record completed an update's worth
    assert.deepEqual(await (await fetch(`${base}/stats`)).json(), {
      acknowledged: 2,
      trained: 2,
      pending: 0,
      buffered: 2,
      step: 1,
    });
    assert.equal(app.generator.adapter, app.tuner.adapter, "the update's adapter is live");

    // The log: the tokens sampled, chosen the way the feedback said (A/B picked b; thumbs-down on a).
    const log = (await files.readText("run/feedback.jsonl")).trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(log.length, 2);
    assert.deepEqual(log.map((r) => [r.text.prompt, r.text.chosen, r.text.rejected]), [
      ["The movie was", a.json.completions[1], a.json.completions[0]],
      ["The plot", b.json.completions[1], b.json.completions[0]],
    ]);
    const tok = app.tuner.model.tokenizer;
    for (const r of log) {
      assert.deepEqual(r.prompt_ids, tok.encode(r.text.prompt, { addSpecialTokens: true }));
      assert.ok(r.chosen_ids.length > 0 && r.rejected_ids.length > 0);
      assert.equal(tok.decode(r.chosen_ids, { skipSpecialTokens: true }), r.text.chosen);
    }

    // A pair as sent; bad ones are refused with the record's index and field; unknown paths 404.
    assert.deepEqual(await post("/feedback", { prompt: "Fine", chosen: " film.", rejected: " dull." }), {
      status: 200,
      json: { acknowledged: 2 },
    });
    assert.deepEqual(await post("/feedback", { prompt: "Fine", chosen: 3, rejected: " dull." }), {
      status: 400,
      json: { error: 'feedback[3]: field "chosen": expected a string, got number' },
    });
    assert.equal((await post("/nope", {})).status, 404);
    assert.equal((await post("/generate", { prompt: 7 })).status, 404);
  } finally {
    await server.shutdown();
    await app.close();
  }
});
