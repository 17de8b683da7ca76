/**
 * `deno task bench`: the fixed benchmark suite. Every (workload, backend, threads) runs in its own
 * `deno run bench/worker.ts` process with a timeout: ORT's wasm thread count is fixed per process,
 * peak RSS is per process, and a configuration that hangs inside ORT (as 2 wasm threads did under
 * Deno before src/runtime/wasm_threads.ts) is killed and reported as a result instead of stalling
 * the suite.
 *
 * Writes `bench/results/latest.json` and a dated copy, and prints a table.
 *
 * Flags:
 * - `--quick`: fewer steps and repetitions, smaller matmuls (about a third of the time);
 * - `--only <w1,w2>`: run only these workloads (the other workloads' runs are carried over from
 *   the previous latest.json, marked in `notes`);
 * - `--backends wasm,native-cpu,webgpu,native-webgpu,ort-training`, `--threads 1,2`: the
 *   configurations (default: wasm and native-cpu with 1 and 2 threads, webgpu when an adapter
 *   exists, native-webgpu when onnxruntime-node's WebGPU EP finds one, and ort-training, ORT Web
 *   1.19.2's TrainingSession, 1 thread, on train-tiny only; a native backend that cannot load is
 *   skipped with the reason in `notes`);
 * - `--webgpu-small`: also run the 124M workloads on a software WebGPU adapter (minutes per step);
 * - `--max-timeout <s>`: caps every worker's timeout (bench/gpu-check.sh keeps its 10 minutes so);
 * - `--timeout-scale F`: multiply every process timeout by F (a machine shared with other jobs);
 * - `--out <dir>`: results directory (default bench/results);
 * - `--help`: prints these flags. An unknown flag is an error (exit 2), never a silent full run.
 *
 * @module
 */

import type { BackendName } from "../src/runtime/ort.ts";
import { isBackendName } from "../src/runtime/backends.ts";
import { probeNative, probeNativeWebGpu } from "../src/runtime/probe_native.ts";
import { prepareShared } from "./inputs.ts";
import {
  configLabel,
  describeMachine,
  memoryTables,
  type Results,
  resultsTable,
  type Run,
  writeResults,
} from "./report.ts";
import { RESULT_PREFIX } from "./worker.ts";
import { type WorkloadName, WORKLOADS } from "./workloads.ts";

interface Config {
  backend: BackendName | "ort-training";
  threads: number;
}

/** Per-workload process timeouts in seconds (full, quick); WebGPU gets the `slow` factor. */
const TIMEOUT_S: Record<WorkloadName, [number, number]> = {
  "matmul-peak": [150, 90],
  "train-tiny": [240, 150],
  "decode-tiny": [150, 90],
  "score-small": [300, 200],
  "decode-small": [300, 200],
  "train-small": [480, 300],
  "train-0.5b": [3600, 3600],
};

/** Terminal colour codes in Deno's error output. */
const ANSI = new RegExp(String.fromCharCode(27) + "\\[[0-9;]*m", "g");

/** Seconds of measured work after which a slow (software WebGPU) configuration stops measuring. */
const SLOW_TIME_CAP_S = 40;

/** `--help`. */
const HELP = `Usage: deno task bench [flags]

Runs every (workload, backend, threads) in its own worker process; writes <out>/latest.json and prints a table.

  --quick                fewer steps and repetitions, smaller matmuls (about a third of the time)
  --only w1,w2           only these workloads (${WORKLOADS.join(", ")}); the others are carried over
  --backends b1,b2       wasm, native-cpu, webgpu, native-webgpu, ort-training (default: all that run here;
                         a native backend that cannot load is skipped with the reason in the notes)
  --threads 1,2          wasm and native-cpu thread counts (default 1,2)
  --webgpu-small         also run the 124M workloads on a software WebGPU adapter (minutes per step)
  --max-timeout S        cap every worker's timeout at S seconds
  --timeout-scale F      multiply every worker's timeout by F (a machine shared with other jobs)
  --out DIR              results directory (default bench/results)
  --help                 this text`;

/** Flags that take a value, and switches. */
const VALUED = new Set(["--only", "--backends", "--threads", "--max-timeout", "--timeout-scale", "--out"]);
const SWITCHES = new Set(["--quick", "--webgpu-small", "--help"]);

function parseArgs(args: string[]) {
  for (let i = 0; i < args.length; i++) {
    if (VALUED.has(args[i])) i++;
    else if (!SWITCHES.has(args[i])) throw new RangeError(`unknown flag ${JSON.stringify(args[i])}; see --help`);
  }
  const get = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const list = (flag: string) => get(flag)?.split(",").map((s) => s.trim()).filter(Boolean);
  const only = list("--only");
  for (const b of list("--backends") ?? []) {
    if (!isBackendName(b) && b !== "ort-training") {
      throw new RangeError(`--backends: unknown backend ${JSON.stringify(b)}`);
    }
  }
  for (const w of only ?? []) {
    if (!WORKLOADS.includes(w as WorkloadName)) {
      throw new RangeError(`--only: unknown workload ${JSON.stringify(w)}; choose from ${WORKLOADS.join(", ")}`);
    }
  }
  const timeoutScale = Number(get("--timeout-scale") ?? 1);
  if (!(timeoutScale > 0)) {
    throw new RangeError(`--timeout-scale must be a positive number, got ${get("--timeout-scale")}`);
  }
  return {
    quick: args.includes("--quick"),
    only: (only ?? [...WORKLOADS]) as WorkloadName[],
    backends: list("--backends"),
    threads: list("--threads")?.map(Number),
    webgpuSmall: args.includes("--webgpu-small"),
    timeoutScale,
    out: get("--out") ?? new URL("./results", import.meta.url).pathname,
    maxTimeout: get("--max-timeout") === undefined ? Infinity : Number(get("--max-timeout")),
  };
}

/** Runs one worker process; returns its runs, or null runs with the reason it gave none. */
async function runWorker(
  workload: WorkloadName,
  cfg: Config,
  extra: string[],
  timeoutS: number,
  root: string,
): Promise<{ runs: Run[]; seconds: number }> {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      "bench/worker.ts",
      workload,
      cfg.backend,
      String(cfg.threads),
      ...extra,
    ],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, timeoutS * 1000);
  // Stream the worker's progress (stderr) through, dropping Mesa's XDG_RUNTIME_DIR complaint.
  const errDone = (async () => {
    const dec = new TextDecoder();
    let buf = "";
    const tail: string[] = [];
    for await (const chunk of child.stderr) {
      buf += dec.decode(chunk, { stream: true });
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.includes("XDG_RUNTIME_DIR")) continue;
        console.error(line);
        tail.push(line);
        if (tail.length > 6) tail.shift();
      }
    }
    return tail;
  })();
  const outText = new Response(child.stdout).text();
  const status = await child.status;
  clearTimeout(timer);
  const [stdout, errTail] = await Promise.all([outText, errDone]);
  const seconds = (performance.now() - t0) / 1000;
  const line = stdout.split("\n").find((l) => l.startsWith(RESULT_PREFIX));
  if (line && status.success) return { runs: JSON.parse(line.slice(RESULT_PREFIX.length)) as Run[], seconds };
  const why = timedOut
    ? `timed out after ${timeoutS} s (killed; a hang inside ORT or too slow here)`
    : `worker failed (exit ${status.code}): ${
      errTail.map((l) => l.replace(ANSI, "").trim()).filter(Boolean).slice(-2).join(" | ").slice(0, 300)
    }`;
  return { runs: [failure(workload, cfg, why)], seconds };
}

function failure(workload: string, cfg: Config, note: string): Run {
  return { workload, backend: cfg.backend, threads: cfg.threads, metric: "status", value: null, unit: "", note };
}

/** Adds `pct_of_peak` to every run that reports `gflops`, against the same configuration's matmul peak. */
function addPctOfPeak(runs: Run[]): void {
  const peaks = new Map<string, number>();
  for (const r of runs) {
    if (r.workload === "matmul-peak" && r.metric === "peak_gflops" && r.value) {
      peaks.set(configLabel(r.backend, r.threads), r.value);
    }
  }
  // Inserted right after each gflops run, so the table shows them together.
  for (let i = runs.length - 1; i >= 0; i--) {
    const r = runs[i];
    if (r.metric !== "gflops" || r.value === null) continue;
    const peak = peaks.get(configLabel(r.backend, r.threads));
    runs.splice(i + 1, 0, {
      ...r,
      metric: "pct_of_peak",
      value: peak ? (100 * r.value) / peak : null,
      unit: "%",
      ...(peak ? {} : { note: "no matmul-peak for this configuration" }),
    });
  }
}

async function main(): Promise<void> {
  if (Deno.args.includes("--help")) {
    console.log(HELP);
    return;
  }
  let o: ReturnType<typeof parseArgs>;
  try {
    o = parseArgs(Deno.args);
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    Deno.exit(2);
  }
  const root = new URL("..", import.meta.url).pathname;
  Deno.chdir(root);
  const started = new Date();
  const t0 = performance.now();
  const machine = await describeMachine();
  const gpu = machine.webgpu as { isFallbackAdapter?: boolean; available?: boolean; description?: string };
  const notes: string[] = [];
  const configs: Config[] = [];
  const threads = o.threads ?? [1, 2];
  const backends = o.backends ?? ["wasm", "native-cpu", "webgpu", "native-webgpu", "ort-training"];
  if (backends.includes("wasm")) { for (const t of threads) configs.push({ backend: "wasm", threads: t }); }
  if (backends.includes("native-cpu")) {
    const native = await probeNative();
    if (!native.available) notes.push(`native-cpu skipped: ${native.reason}`);
    else for (const t of threads) configs.push({ backend: "native-cpu", threads: t });
  }
  if (backends.includes("webgpu")) {
    if (gpu.available === false) notes.push(`webgpu skipped: ${(machine.webgpu as { reason: string }).reason}`);
    else configs.push({ backend: "webgpu", threads: 1 });
  }
  if (backends.includes("native-webgpu")) {
    const nw = await probeNativeWebGpu();
    if (!nw.available) notes.push(`native-webgpu skipped: ${nw.reason}`);
    else configs.push({ backend: "native-webgpu", threads: 1 });
  }
  // The ort-training engine (src/ort_training): one thread, training only; compared on train-tiny.
  if (backends.includes("ort-training")) configs.push({ backend: "ort-training", threads: 1 });
  console.error(`bench: ${o.only.join(", ")} on ${configs.map((c) => configLabel(c.backend, c.threads)).join(", ")}`);
  console.error(
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, load ${machine.loadAverage}`,
  );

  console.error("preparing inputs (the random 124M model is generated once and cached)...");
  await prepareShared();

  const runs: Run[] = [];
  for (const workload of o.only) {
    for (const cfg of configs) {
      const label = configLabel(cfg.backend, cfg.threads);
      const slow = cfg.backend === "webgpu" && gpu.isFallbackAdapter === true;
      if (cfg.backend === "ort-training" && workload !== "train-tiny") {
        runs.push(failure(workload, cfg, "skipped: the ort-training engine is measured on train-tiny only"));
        continue;
      }
      if (slow && (workload.endsWith("-small") || workload === "train-0.5b") && !o.webgpuSmall) {
        runs.push(failure(
          workload,
          cfg,
          `skipped: software WebGPU adapter (${gpu.description}) runs ~1 GFLOP/s, minutes per 124M step; --webgpu-small runs it`,
        ));
        continue;
      }
      const extra = [...(o.quick ? ["--quick"] : []), ...(slow ? ["--time-cap", String(SLOW_TIME_CAP_S)] : [])];
      const timeout = Math.min(o.maxTimeout, TIMEOUT_S[workload][o.quick ? 1 : 0] * (slow ? 2 : 1) * o.timeoutScale);
      console.error(`== ${workload} on ${label} (timeout ${timeout} s)`);
      const r = await runWorker(workload, cfg, extra, timeout, root);
      console.error(`   ${r.seconds.toFixed(0)} s`);
      runs.push(...r.runs);
    }
  }

  // Carry over the other workloads' runs from the previous full results, so latest.json stays whole.
  if (o.only.length < WORKLOADS.length) {
    try {
      const prev = JSON.parse(await Deno.readTextFile(`${o.out}/latest.json`)) as Results;
      const kept = prev.runs.filter((r) => !o.only.includes(r.workload as WorkloadName) && r.metric !== "pct_of_peak");
      if (kept.length) {
        runs.push(...kept);
        notes.push(`runs of ${[...new Set(kept.map((r) => r.workload))].join(", ")} carried over from ${prev.date}`);
      }
    } catch { /* no previous results */ }
  }
  addPctOfPeak(runs);
  const results: Results = {
    engine: "exo-tune",
    date: started.toISOString(),
    machine,
    options: { quick: o.quick, only: o.only, configs: configs.map((c) => configLabel(c.backend, c.threads)) },
    runs,
    notes,
  };
  const paths = await writeResults(o.out, "", results);
  console.log(resultsTable(runs));
  console.log("\n" + memoryTables(runs));
  for (const n of notes) console.log(`note: ${n}`);
  console.log(
    `\n${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}, Deno ${machine.deno}, ORT Web ${machine.onnxruntimeWeb}, onnxruntime-node ${machine.onnxruntimeNode}`,
  );
  console.log(`wrote ${paths.join(", ")} in ${((performance.now() - t0) / 60000).toFixed(1)} min`);
}

if (import.meta.main) await main();
