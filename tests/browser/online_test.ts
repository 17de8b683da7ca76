/**
 * Issue #19 in a browser: an `OnlineTuner` from the library bundle in Chromium, its feedback log and
 * checkpoints in OPFS (`opfsFiles`), its updates in a Worker (the bundle's `online_worker.js`, the
 * model by URL, the page's wasm thread count). Records acknowledged before a reload are all there
 * after it, the run continues from its OPFS checkpoint (now with in-thread updates), and it ends
 * with the adapter bytes of the same run done in one go. (That Chromium's wasm engine gives Deno's
 * bytes is page_test.ts's check; here both runs take 1 thread, which Deno's test process may not.)
 */

import assert from "node:assert/strict";
import { Rng } from "../../src/util/rng.ts";
import { browserAvailable, openSession } from "./_browser.ts";

const available = await browserAvailable();
const opts = { ignore: !available, sanitizeOps: false, sanitizeResources: false };

/** Pre-tokenized pairs for tiny-gpt2 (ids < 500). */
function pairs(n: number): Record<string, number[]>[] {
  const rng = new Rng(21);
  const ids = (k: number) => Array.from({ length: k }, () => 3 + rng.int(497));
  return Array.from(
    { length: n },
    (_, i) => ({ prompt_ids: ids(2 + (i % 3)), chosen_ids: ids(4), rejected_ids: ids(5) }),
  );
}

const OPTIONS = { updateEvery: 2, replay: 1, bufferSize: 3, lr: 5e-3, seed: 5, backend: "wasm" as const, dir: "run" };

Deno.test(
  "an online tuner in Chromium: OPFS log and checkpoints survive a reload; updates in a Worker",
  opts,
  async () => {
    const records = pairs(7);
    const s = await openSession();
    try {
      await s.page.goto(s.server.url);
      // First life of the tab: updates in a Worker; 5 records acknowledged, 2 updates, record 4 pending.
      const first = await s.page.evaluate(async ({ records, options }) => {
        const url = "/exo-tune.js"; // a variable: the type checker must not resolve it
        const { configureRuntime, OnlineTuner, opfsFiles } = await import(url);
        configureRuntime({ wasmThreads: 1 }); // not the page's default (its cores): the Worker must take it too
        const lines: string[] = [];
        const tuner = await OnlineTuner.create({
          ...options,
          model: new URL("/fixtures/tiny-gpt2", location.href).href,
          files: opfsFiles("online"),
          worker: true,
          log: (l: string) => lines.push(l),
        });
        const acks = [];
        for (const r of records.slice(0, 5)) acks.push((await tuner.add(r)).index);
        await tuner.idle();
        return { acks, stats: tuner.stats, lines }; // no close(): the tab goes away as it is
      }, { records, options: OPTIONS });
      assert.deepEqual(first.acks, [0, 1, 2, 3, 4]);
      assert.ok(first.lines.includes("online updates on wasm (1 thread) in a Worker"), first.lines.join("\n"));
      assert.deepEqual(first.stats, { acknowledged: 5, trained: 4, pending: 1, buffered: 3, step: 2 });

      await s.page.reload();
      // Second life: the same OPFS folder, updates in the page's thread.
      const second = await s.page.evaluate(async ({ records, options }) => {
        const url = "/exo-tune.js";
        const { configureRuntime, memoryFiles, OnlineTuner, opfsFiles } = await import(url);
        configureRuntime({ wasmThreads: 1 }); // as before the reload (ORT's sums depend on the thread count)
        const files = opfsFiles("online");
        const model = new URL("/fixtures/tiny-gpt2", location.href).href;
        const tuner = await OnlineTuner.create({ ...options, model, files });
        const reopened = tuner.stats;
        for (const r of records.slice(5)) await tuner.add(r);
        await tuner.flush();
        // The same run in one go, in memory, in this thread.
        const whole = await OnlineTuner.create({ ...options, model, files: memoryFiles() });
        for (const r of records) await whole.add(r);
        await whole.flush();
        let maxDiff = 0, compared = 0;
        for (const [k, t] of whole.adapter.tensors) {
          const a = t.data as Float32Array, b = tuner.adapter.tensors.get(k).data as Float32Array;
          for (let i = 0; i < a.length; i++, compared++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
        }
        const out = {
          reopened,
          stats: tuner.stats,
          wholeSteps: whole.stats.step,
          log: (await files.readText("run/feedback.jsonl")).trim().split("\n").length,
          checkpoints: (await files.list("run/checkpoints")).sort(),
          maxDiff,
          compared,
        };
        await tuner.close();
        await whole.close();
        return out;
      }, { records, options: OPTIONS });
      assert.deepEqual(second.reopened, { acknowledged: 5, trained: 4, pending: 1, buffered: 3, step: 2 });
      assert.deepEqual(second.stats, { acknowledged: 7, trained: 7, pending: 0, buffered: 3, step: 4 });
      assert.equal(second.log, 7);
      assert.deepEqual(second.checkpoints, ["step-000003", "step-000004"], "the newest two are kept");

      assert.equal(second.wholeSteps, 4);
      console.log(
        `Chromium, Worker then reload then in-thread vs one go: max |Δ| = ${second.maxDiff} over ${second.compared} values`,
      );
      assert.ok(second.compared > 0);
      assert.equal(second.maxDiff, 0, "interrupted = uninterrupted, bit for bit");
    } catch (e) {
      console.error(s.console.slice(-20).join("\n"));
      throw e;
    } finally {
      await s.close();
    }
  },
);
