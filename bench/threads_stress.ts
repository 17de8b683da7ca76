/**
 * `deno task bench:threads`: the multi-threaded wasm stress probe. Runs `bench/threads_trial.ts`
 * (reference scoring, then fused EXO training steps on the review model) back to back, each in its
 * own process with a timeout, under Deno, Bun and Node, and counts the runs that finished, hung
 * (killed at the timeout) or failed. Before the fix in `src/runtime/wasm_threads.ts`, 2-4 of 8
 * Deno runs of this kind hung; slow, so not part of `deno task test`.
 *
 * Flags: `--runs N` per configuration and runtime (default 10), `--runtimes deno,bun,node`,
 * `--configs tiny-2t,batch16-2t,tiny-4t` (default all), `--timeout S` per run (default 240).
 *
 * @module
 */

import * as esbuild from "esbuild";
import { TRIAL_PREFIX, type TrialResult } from "./threads_trial.ts";

/** A trial configuration: thread count and `threads_trial.ts` flags. */
interface StressConfig {
  threads: number;
  args: string[];
  what: string;
}

const CONFIGS: Record<string, StressConfig> = {
  "tiny-2t": { threads: 2, args: ["--batch", "8", "--steps", "3"], what: "train-tiny shape: 8 pairs/step, 3 steps" },
  "batch16-2t": { threads: 2, args: ["--batch", "16", "--steps", "2"], what: "larger batch: 16 pairs/step, 2 steps" },
  "tiny-4t": { threads: 4, args: ["--batch", "8", "--steps", "3"], what: "4 threads (more than this machine's cores)" },
};

const RUNTIMES = ["deno", "bun", "node"] as const;
type Runtime = typeof RUNTIMES[number];

const ROOT = new URL("..", import.meta.url).pathname;
/** Node runs an esbuild bundle of the trial (Node 20 cannot run TypeScript); packages stay external. */
const NODE_TRIAL = `${ROOT}.cache/threads/threads_trial.mjs`;

function parse(args: string[]) {
  const get = (f: string) => {
    const i = args.indexOf(f);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const runtimes = (get("--runtimes")?.split(",") ?? [...RUNTIMES]) as Runtime[];
  for (const r of runtimes) if (!RUNTIMES.includes(r)) throw new RangeError(`--runtimes: unknown runtime ${r}`);
  const configs = get("--configs")?.split(",") ?? Object.keys(CONFIGS);
  for (const c of configs) if (!(c in CONFIGS)) throw new RangeError(`--configs: unknown configuration ${c}`);
  return { runs: Number(get("--runs") ?? 10), timeoutS: Number(get("--timeout") ?? 240), runtimes, configs };
}

function command(rt: Runtime, trialArgs: string[]): [string, string[]] {
  switch (rt) {
    case "deno":
      return [Deno.execPath(), ["run", "-A", "bench/threads_trial.ts", ...trialArgs]];
    case "bun":
      return [`${ROOT}node_modules/.bin/bun`, ["bench/threads_trial.ts", ...trialArgs]];
    case "node":
      return ["node", [NODE_TRIAL, ...trialArgs]];
  }
}

type Outcome = { kind: "ok"; result: TrialResult } | { kind: "hung" } | { kind: "failed"; why: string };

async function runTrial(rt: Runtime, cfg: StressConfig, dir: string, timeoutS: number): Promise<Outcome> {
  const [cmd, args] = command(rt, ["--threads", String(cfg.threads), "--dir", dir, ...cfg.args]);
  const child = new Deno.Command(cmd, { args, cwd: ROOT, stdout: "piped", stderr: "piped" }).spawn();
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, timeoutS * 1000);
  const out = await child.output();
  clearTimeout(timer);
  if (hung) return { kind: "hung" };
  const text = new TextDecoder().decode(out.stdout);
  const line = text.split("\n").find((l) => l.startsWith(TRIAL_PREFIX));
  if (out.success && line) return { kind: "ok", result: JSON.parse(line.slice(TRIAL_PREFIX.length)) };
  // The error's first line says what failed; its stack adds little.
  const err = new TextDecoder().decode(out.stderr).split("\n").find((l) => /error/i.test(l)) ?? "";
  return { kind: "failed", why: `exit ${out.code}: ${err.slice(0, 300)}` };
}

async function main(): Promise<void> {
  const o = parse(Deno.args);
  if (o.runtimes.includes("node")) {
    await esbuild.build({
      entryPoints: [`${ROOT}bench/threads_trial.ts`],
      bundle: true,
      format: "esm",
      platform: "node",
      target: "node20",
      packages: "external",
      outfile: NODE_TRIAL,
      logLevel: "warning",
    });
    await esbuild.stop();
  }
  const tmp = await Deno.makeTempDir({ prefix: "exo-threads-stress-" });
  const rows: string[] = [];
  console.error(`stress: ${o.runs} runs per configuration and runtime, timeout ${o.timeoutS} s`);
  try {
    for (const name of o.configs) {
      const cfg = CONFIGS[name];
      for (const rt of o.runtimes) {
        let ok = 0, hung = 0, failed = 0;
        const seconds: number[] = [];
        const losses = new Set<string>();
        for (let i = 0; i < o.runs; i++) {
          const r = await runTrial(rt, cfg, `${tmp}/${name}-${rt}-${i}`, o.timeoutS);
          if (r.kind === "ok") {
            ok++;
            seconds.push(r.result.seconds);
            losses.add(JSON.stringify(r.result.losses));
            if (r.result.ortThreads !== cfg.threads) {
              throw new Error(`${rt} ran ${r.result.ortThreads} wasm threads, ${cfg.threads} were asked for`);
            }
          } else if (r.kind === "hung") hung++;
          else failed++;
          const note = r.kind === "ok" ? `${r.result.seconds.toFixed(1)} s` : r.kind === "failed" ? r.why : "";
          console.error(`  ${name} ${rt} run ${i + 1}/${o.runs}: ${r.kind} ${note}`);
        }
        seconds.sort((a, b) => a - b);
        const median = seconds.length ? seconds[Math.floor(seconds.length / 2)].toFixed(1) : "-";
        rows.push(
          `| ${name} | ${rt} | ${cfg.threads} | ${ok} | ${hung} | ${failed} | ${median} | ${losses.size} |`,
        );
      }
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  console.log("| configuration | runtime | threads | finished | hung | failed | median s | distinct loss curves |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (const r of rows) console.log(r);
  for (const name of o.configs) console.log(`${name}: ${CONFIGS[name].what}`);
}

if (import.meta.main) await main();
