/**
 * Runs ONE workload on ONE configuration and prints its runs as a JSON line prefixed by
 * {@link RESULT_PREFIX}. `bench/main.ts` starts one process per (workload, backend, threads):
 * ORT's wasm thread count is fixed once ORT is loaded, and the peak RSS (VmHWM) is per process.
 *
 * Usage: `deno run -A bench/worker.ts <workload> <backend> <threads> [--quick] [--time-cap S]`, the
 * backend one of `wasm`, `webgpu`, `native-cpu`, `native-webgpu`, `ort-training`; threads are wasm's threads or
 * native-cpu's intra-op threads.
 *
 * @module
 */

import { type BackendName, configureRuntime } from "../src/runtime/ort.ts";
import { Engine } from "../src/runtime/session.ts";
import { resolveBackend } from "../src/runtime/backend.ts";
import { BACKEND_NAMES, isBackendName } from "../src/runtime/backends.ts";
import { MemoryProfile, profileRuns, profileTable } from "./memory.ts";
import type { Run } from "./report.ts";
import { runWorkload, type WorkloadName, WORKLOADS } from "./workloads.ts";

/** The marker of the result line on stdout. */
export const RESULT_PREFIX = "@@bench-result@@ ";

/** Peak resident set size of this process in MB (VmHWM), or null off Linux. */
export function peakRssMb(): number | null {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const kb = /VmHWM:\s+(\d+)\s+kB/.exec(status)?.[1];
    return kb ? Number(kb) / 1024 : null;
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const [workload, backend, threadsArg, ...rest] = Deno.args;
  if (!WORKLOADS.includes(workload as WorkloadName) || !(isBackendName(backend) || backend === "ort-training")) {
    console.error(
      `usage: worker.ts <${WORKLOADS.join("|")}> <${
        [...BACKEND_NAMES, "ort-training"].join("|")
      }> <threads> [--quick] [--time-cap S]`,
    );
    Deno.exit(2);
  }
  const threads = Number(threadsArg);
  const quick = rest.includes("--quick");
  const capIdx = rest.indexOf("--time-cap");
  const timeCapS = capIdx >= 0 ? Number(rest[capIdx + 1]) : 1e9;
  // Before ORT loads: the profile wraps WebAssembly.Memory and GPU buffer creation.
  const mem = MemoryProfile.install();
  configureRuntime({ wasmThreads: threads });
  // ort-training: the reference log-probs on wasm, the steps on ORT 1.19.2's TrainingSession.
  const ortTraining = backend === "ort-training";
  const choice = await resolveBackend(ortTraining ? "wasm" : backend as BackendName);
  const engine = await Engine.create(choice.backend, { threads });
  const log = (line: string) => console.error(`  [${workload} ${backend}/${threads}t] ${line}`);
  let memPeak = 0;
  // Sampled too: VmHWM is the authority, the sample is a cross-check where /proc is missing.
  const timer = setInterval(() => (memPeak = Math.max(memPeak, Deno.memoryUsage().rss)), 200);
  let runs: Run[];
  try {
    runs = await runWorkload(workload as WorkloadName, { engine, threads, quick, timeCapS, log, mem, ortTraining });
  } finally {
    clearInterval(timer);
  }
  memPeak = Math.max(memPeak, Deno.memoryUsage().rss);
  const hwm = mem.processPeakRssMb();
  console.error(
    `  [${workload} ${backend}/${threads}t] memory profile (MB):\n${profileTable(mem).replace(/^/gm, "    ")}`,
  );
  runs.push(...profileRuns(mem, { workload, backend, threads }));
  runs.push({
    workload,
    backend,
    threads,
    metric: "peak_rss_mb",
    value: hwm ?? memPeak / 2 ** 20,
    unit: "MB",
    ...(hwm === null ? { note: "sampled Deno.memoryUsage().rss every 200 ms" } : {}),
  });
  console.log(RESULT_PREFIX + JSON.stringify(runs));
}

if (import.meta.main) {
  await main();
  // ORT's worker threads can keep the process alive.
  Deno.exit(0);
}
