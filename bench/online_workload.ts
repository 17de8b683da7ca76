/**
 * `online-update`: what one online update costs (`src/train/online.ts`) and what it does to a
 * generation running beside it, on the bundled review model (3.7M parameters, LoRA r = 8 on every
 * projection, EXO-pref, AdamW).
 *
 * A tuner with `updateEvery` 8 and `replay` 8 (batches of 16 pairs) on a local directory takes the
 * bundled pairs one by one while a generator streams tokens without a pause. Measured:
 * - per update (medians over the measured updates, after one warm-up update): reference scoring
 *   of the 8 new pairs, the training step, reading back the adapter and optimizer state, the
 *   checkpoint (written to local disk), the swap into the generator, and the whole update;
 * - memory: RSS added by the tuner (its two sessions and buffers), RSS growth over the measured
 *   updates, and one checkpoint's size;
 * - generation latency: the gaps between streamed tokens while no update runs, and while one runs,
 *   once with the updates in this thread and once in a Worker (`worker: true`). The swap waits for
 *   the generation in progress, so a gap that includes it is a gap between two generations and is
 *   not counted (only gaps inside one generation are).
 *
 * @module
 */

import { Generator } from "../src/generate/generator.ts";
import { localFiles } from "../src/io/files.ts";
import { loadModel } from "../src/models/load.ts";
import { OnlineTuner, type OnlineUpdate } from "../src/train/online.ts";
import { TINY_MODEL, TINY_PAIRS } from "./inputs.ts";
import type { Run } from "./report.ts";
import type { WorkloadContext } from "./workloads.ts";

const UPDATE_EVERY = 8;
const REPLAY = 8;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

const rssMb = () => Deno.memoryUsage().rss / 2 ** 20;

/** Streams generations back to back until `stop()`; records each inter-token gap inside a generation. */
function generateForever(gen: Generator) {
  const gaps: { at: number; ms: number }[] = [];
  let running = true;
  const done = (async () => {
    let n = 0;
    while (running) {
      let last = -1;
      const stream = gen.stream("The movie was", { maxNewTokens: 32, temperature: 0.8, seed: n++, eosTokenIds: [] });
      for await (const _ of stream) {
        const t = performance.now();
        if (last >= 0) gaps.push({ at: t, ms: t - last });
        last = t;
      }
    }
  })();
  return {
    gaps,
    async stop() {
      running = false;
      await done;
    },
  };
}

/** One phase: a tuner (in this thread or a Worker) fed pairs while a generator streams. */
async function phase(ctx: WorkloadContext, worker: boolean, updates: number) {
  const model = await loadModel(TINY_MODEL);
  const gen = await Generator.create(model, { engine: ctx.engine });
  const records = (await Deno.readTextFile(TINY_PAIRS)).trim().split("\n").map((l) => JSON.parse(l));
  const dir = await Deno.makeTempDir({ prefix: "bench-online-" });
  const rss0 = rssMb();
  const windows: { from: number; to: number }[] = [];
  const done: OnlineUpdate[] = [];
  let started = 0;
  const tuner = await OnlineTuner.create({
    model: worker ? TINY_MODEL : model,
    generator: gen,
    engine: ctx.engine,
    dir,
    files: localFiles(),
    worker,
    updateEvery: UPDATE_EVERY,
    replay: REPLAY,
    bufferSize: 64,
    lr: 1e-3,
    onUpdate: (u) => {
      windows.push({ from: started, to: performance.now() - u.seconds.swap * 1000 });
      done.push(u);
    },
  });
  const rssTuner = rssMb();
  try {
    // Warm-up: fill the buffer and run the first update (first runs of both sessions).
    for (const r of records.slice(0, 2 * UPDATE_EVERY)) await tuner.add(r);
    await tuner.idle();
    const rssWarm = rssMb();
    const warm = done.length;
    const g = generateForever(gen);
    await new Promise((r) => setTimeout(r, 1500)); // idle gaps
    const idleUntil = performance.now();
    let next = 2 * UPDATE_EVERY;
    for (let u = 0; u < updates; u++) {
      started = performance.now();
      for (const r of records.slice(next, next + UPDATE_EVERY)) await tuner.add(r);
      next += UPDATE_EVERY;
      await tuner.idle();
      await new Promise((r) => setTimeout(r, 300));
    }
    await g.stop();
    const rssEnd = rssMb();
    const measured = done.slice(warm);
    const inWindow = (t: number, ms: number) => windows.slice(warm).some((w) => t >= w.from && t - ms <= w.to);
    const idleGaps = g.gaps.filter((x) => x.at <= idleUntil).map((x) => x.ms);
    const updateGaps = g.gaps.filter((x) => x.at > idleUntil && inWindow(x.at, x.ms)).map((x) => x.ms);
    let ckBytes = 0;
    const ck = `${dir}/checkpoints`;
    for await (const e of Deno.readDir(ck)) {
      if (!e.isDirectory) continue;
      for await (const f of Deno.readDir(`${ck}/${e.name}`)) {
        ckBytes += (await Deno.stat(`${ck}/${e.name}/${f.name}`)).size;
      }
      break;
    }
    return { measured, rss: { tuner: rssTuner - rss0, warm: rssWarm, end: rssEnd }, idleGaps, updateGaps, ckBytes };
  } finally {
    await tuner.close();
    await gen.release();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The `online-update` workload. */
export async function onlineUpdate(ctx: WorkloadContext): Promise<Run[]> {
  const run = (metric: string, value: number | null, unit: string, note?: string): Run => ({
    workload: "online-update",
    backend: ctx.engine.backend,
    threads: ctx.threads,
    metric,
    value,
    unit,
    ...(note ? { note } : {}),
  });
  const updates = ctx.quick ? 3 : 6;
  const out: Run[] = [];
  const a = await phase(ctx, false, updates);
  const ms = (f: (u: OnlineUpdate) => number) => 1000 * median(a.measured.map(f));
  out.push(
    run("update_ms", ms((u) => u.seconds.total), "ms", `median of ${a.measured.length}; 8 new + 8 replayed pairs`),
    run("reference_ms", ms((u) => u.seconds.reference), "ms"),
    run("step_ms", ms((u) => u.seconds.step), "ms"),
    run("readback_ms", ms((u) => u.seconds.readback), "ms"),
    run("checkpoint_ms", ms((u) => u.seconds.checkpoint), "ms", "local disk"),
    run("swap_ms", ms((u) => u.seconds.swap), "ms", "includes waiting for the generation in progress"),
    run("tuner_rss_mb", a.rss.tuner, "MB", "RSS added by OnlineTuner.create (learner sessions)"),
    run("rss_growth_mb", a.rss.end - a.rss.warm, "MB", `over ${a.measured.length} updates after warm-up`),
    run("checkpoint_kb", a.ckBytes / 1024, "KB"),
    run("gen_gap_idle_p50_ms", median(a.idleGaps), "ms"),
    run("gen_gap_update_p50_ms", median(a.updateGaps), "ms", "updates in this thread"),
    run("gen_gap_update_max_ms", Math.max(...a.updateGaps), "ms", "updates in this thread"),
  );
  ctx.log(
    `in-thread: update ${ms((u) => u.seconds.total).toFixed(0)} ms (step ${ms((u) => u.seconds.step).toFixed(0)}), ` +
      `token gap idle ${median(a.idleGaps).toFixed(1)} ms, during updates p50 ${
        median(a.updateGaps).toFixed(1)
      } / max ${Math.max(...a.updateGaps).toFixed(0)} ms`,
  );
  const w = await phase(ctx, true, updates);
  const wms = (f: (u: OnlineUpdate) => number) => 1000 * median(w.measured.map(f));
  out.push(
    run("worker_update_ms", wms((u) => u.seconds.total), "ms", "updates in a Worker (its own ORT, 1 wasm thread)"),
    run("worker_tuner_rss_mb", w.rss.tuner, "MB", "the Worker loads its own copy of the model"),
    run("worker_gen_gap_update_p50_ms", median(w.updateGaps), "ms"),
    run("worker_gen_gap_update_p95_ms", quantile(w.updateGaps, 0.95), "ms"),
    run("worker_gen_gap_update_max_ms", Math.max(...w.updateGaps), "ms"),
  );
  ctx.log(
    `worker: update ${wms((u) => u.seconds.total).toFixed(0)} ms, token gap during updates p50 ${
      median(w.updateGaps).toFixed(1)
    } / max ${Math.max(...w.updateGaps).toFixed(0)} ms`,
  );
  return out;
}
