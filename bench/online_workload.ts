/**
 * `online-update`: what one online update costs (`src/train/online.ts`) and what it does to a
 * generation running beside it, on the bundled review model (3.7M parameters, LoRA r = 8 on every
 * projection, EXO-pref, AdamW).
 *
 * A tuner with `updateEvery` 8 and `replay` 8 (batches of 16 pairs) on a local directory takes the
 * bundled pairs one by one, with a live generator. After two warm-up updates (the sessions' first
 * runs), it measures:
 * - per update, with nothing else running (medians): reference scoring of the 8 new pairs, the
 *   training step, reading back the adapter and optimizer state, the checkpoint (local disk), the
 *   swap into the generator, and the whole update;
 * - memory: RSS added by the tuner and its first updates (its sessions and buffers), RSS growth over
 *   the measured updates, one checkpoint's size;
 * - beside generation, with a generator streaming one generation after another: the update's
 *   latency, and the gaps between streamed tokens while no update runs and while one runs; once with
 *   the updates in this thread and once in a Worker (`worker: true`). A generation's first token is
 *   timed from its request (so a prefill that waits behind an update's ORT calls counts); the pause
 *   between two generations, where the swap waits, is not a gap. ORT's wasm runs resolve
 *   as microtasks, so file I/O (the tuner's appends and checkpoint) waits for the turn of the event
 *   loop between two generations: an update's latency beside generation includes those waits.
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

/**
 * Streams generations one after another until `stop()`; records how long each token took to come:
 * from the previous token, or from the request for a generation's first token.
 */
function generateForever(gen: Generator) {
  const gaps: { at: number; ms: number }[] = [];
  let running = true;
  const done = (async () => {
    let n = 0;
    while (running) {
      // The first token's wait counts from the request: a prefill queued behind an update's ORT
      // calls is a wait the user sees too.
      let last = performance.now();
      const stream = gen.stream("The movie was", { maxNewTokens: 32, temperature: 0.8, seed: n++, eosTokenIds: [] });
      for await (const _ of stream) {
        const t = performance.now();
        gaps.push({ at: t, ms: t - last });
        last = t;
      }
      // A turn of the event loop between generations, as a server has between requests: ORT's wasm
      // runs resolve as microtasks, so back-to-back generations would starve timers and file I/O
      // (the tuner's appends) for good.
      await new Promise((r) => setTimeout(r, 0));
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

/** Feeds the next `UPDATE_EVERY` records and waits for the update they trigger. */
async function oneUpdate(tuner: OnlineTuner, records: unknown[], next: { i: number }): Promise<void> {
  for (const r of records.slice(next.i, next.i + UPDATE_EVERY)) await tuner.add(r);
  next.i += UPDATE_EVERY;
  await tuner.idle();
}

/**
 * One configuration: a tuner (in this thread or a Worker) with a live generator. Two warm-up
 * updates, then `updates` updates with nothing else running (what an update costs), then
 * `updates` more while the generator streams (what it does to generation, and its latency then).
 */
async function phase(ctx: WorkloadContext, worker: boolean, updates: number) {
  const model = await loadModel(TINY_MODEL);
  const gen = await Generator.create(model, { engine: ctx.engine });
  await gen.generate("The movie was", { maxNewTokens: 4, seed: 0 }); // the generator's sessions exist
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
    backend: ctx.engine.backend,
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
  try {
    // Warm-up: fill the buffer; the first updates create the sessions and run them once.
    const next = { i: 0 };
    for (let u = 0; u < 2; u++) await oneUpdate(tuner, records, next);
    const rssWarm = rssMb();
    const warm = done.length;
    // A slow configuration (software WebGPU) stops after a quarter of its time cap per loop (at least 1 update).
    const capMs = (ctx.timeCapS * 1000) / 4;
    let t0 = performance.now();
    for (let u = 0; u < updates && (u === 0 || performance.now() - t0 < capMs); u++) {
      await oneUpdate(tuner, records, next);
    }
    const rssAlone = rssMb();
    const alone = done.slice(warm);
    const g = generateForever(gen);
    await new Promise((r) => setTimeout(r, 1500)); // gaps with no update running
    const idleUntil = performance.now();
    const besideFrom = done.length;
    t0 = performance.now();
    for (let u = 0; u < updates && (u === 0 || performance.now() - t0 < capMs); u++) {
      started = performance.now();
      await oneUpdate(tuner, records, next);
      await new Promise((r) => setTimeout(r, 300));
    }
    await g.stop();
    const beside = done.slice(besideFrom);
    const inWindow = (t: number, ms: number) => windows.slice(besideFrom).some((w) => t >= w.from && t - ms <= w.to);
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
    return {
      alone,
      beside,
      rss: { tuner: rssWarm - rss0, growth: rssAlone - rssWarm },
      idleGaps,
      updateGaps,
      ckBytes,
    };
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
  const med = (us: OnlineUpdate[], f: (u: OnlineUpdate) => number) => 1000 * median(us.map(f));
  const a = await phase(ctx, false, updates);
  const pairs = `${UPDATE_EVERY} new + ${REPLAY} replayed pairs`;
  out.push(
    run("update_ms", med(a.alone, (u) => u.seconds.total), "ms", `median of ${a.alone.length}; ${pairs}; alone`),
    run("reference_ms", med(a.alone, (u) => u.seconds.reference), "ms", `the ${UPDATE_EVERY} new pairs`),
    run("step_ms", med(a.alone, (u) => u.seconds.step), "ms"),
    run("readback_ms", med(a.alone, (u) => u.seconds.readback), "ms", "adapter + AdamW moments"),
    run("checkpoint_ms", med(a.alone, (u) => u.seconds.checkpoint), "ms", "local disk"),
    run("swap_ms", med(a.alone, (u) => u.seconds.swap), "ms", "Generator.setAdapter, no generation running"),
    run("tuner_rss_mb", a.rss.tuner, "MB", "RSS added by the tuner and its first 2 updates (learner sessions)"),
    run("rss_growth_mb", a.rss.growth, "MB", `over the next ${a.alone.length} updates`),
    run("checkpoint_kb", a.ckBytes / 1024, "KB", "adapter + AdamW moments + state"),
    run("update_beside_gen_ms", med(a.beside, (u) => u.seconds.total), "ms", "while a generator streams"),
    run("gen_gap_idle_p50_ms", median(a.idleGaps), "ms", "wait for a token (the first from the request), no update"),
    run("gen_gap_update_p50_ms", median(a.updateGaps), "ms", "updates in this thread"),
    run("gen_gap_update_max_ms", Math.max(...a.updateGaps), "ms", "updates in this thread"),
  );
  ctx.log(
    `in-thread: update ${med(a.alone, (u) => u.seconds.total).toFixed(0)} ms alone (step ${
      med(a.alone, (u) => u.seconds.step).toFixed(0)
    }), ${med(a.beside, (u) => u.seconds.total).toFixed(0)} ms beside generation; token gap idle ${
      median(a.idleGaps).toFixed(1)
    } ms, during updates p50 ${median(a.updateGaps).toFixed(1)} / max ${Math.max(...a.updateGaps).toFixed(0)} ms`,
  );
  const w = await phase(ctx, true, updates);
  out.push(
    run("worker_update_ms", med(w.alone, (u) => u.seconds.total), "ms", "updates in a Worker (its own ORT); alone"),
    run("worker_step_ms", med(w.alone, (u) => u.seconds.step), "ms"),
    run("worker_tuner_rss_mb", w.rss.tuner, "MB", "the Worker loads its own model and ORT"),
    run("worker_update_beside_gen_ms", med(w.beside, (u) => u.seconds.total), "ms", "while a generator streams"),
    run("worker_gen_gap_idle_p50_ms", median(w.idleGaps), "ms"),
    run("worker_gen_gap_update_p50_ms", median(w.updateGaps), "ms"),
    run("worker_gen_gap_update_p95_ms", quantile(w.updateGaps, 0.95), "ms"),
    run("worker_gen_gap_update_max_ms", Math.max(...w.updateGaps), "ms"),
  );
  ctx.log(
    `worker: update ${med(w.alone, (u) => u.seconds.total).toFixed(0)} ms alone, ${
      med(w.beside, (u) => u.seconds.total).toFixed(0)
    } ms beside generation; token gap during updates p50 ${median(w.updateGaps).toFixed(1)} / max ${
      Math.max(...w.updateGaps).toFixed(0)
    } ms`,
  );
  return out;
}
