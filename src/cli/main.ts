/**
 * `deno task cli <command> [options]`: dispatches to `src/cli/<command>.ts`, each exporting
 * `run(argv): Promise<number>` (the exit code). Commands load lazily so `doctor` stays fast.
 *
 * @module
 */

import process from "node:process";

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  doctor: {
    summary: "runtime, ONNX Runtime and WebGPU report; the backend auto picks",
    load: () => import("./doctor.ts"),
  },
  tokenize: { summary: "print the token ids of a text or a chat", load: () => import("./tokenize.ts") },
  score: { summary: "per-sequence log-probs of JSONL data", load: () => import("./score.ts") },
  train: { summary: "tune a LoRA adapter on preference data (EXO/DPO)", load: () => import("./train.ts") },
  generate: { summary: "sample completions, optionally with an adapter", load: () => import("./generate.ts") },
  "export-trl": {
    summary: "write the same training run as a TRL script (for GPUs)",
    load: () => import("./export_trl.ts"),
  },
  demo: { summary: "tune the bundled review model and show the effect", load: () => import("./demo.ts") },
  experiment: {
    summary: "EXO vs DPO vs Best-of-N: the reward-KL frontier on the bundled model",
    load: () => import("./experiment.ts"),
  },
  "ort-artifacts": {
    summary: "write (or --check) ONNX Runtime training artifacts for an adapter",
    load: () => import("./ort_artifacts.ts"),
  },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(13)} ${c.summary}`);
  return `Usage: exo-tune <command> [options]   (in a clone: deno task cli <command> [options])

Commands:
${lines.join("\n")}\n\nRun a command with --help for its options.`;
}

/** Runs the CLI and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "--help" || cmd === "-h" || cmd === "help") {
    console.log(usage());
    return cmd ? 0 : 2;
  }
  const entry = COMMANDS[cmd];
  if (!entry) {
    console.error(`Unknown command ${JSON.stringify(cmd)}\n\n${usage()}`);
    return 2;
  }
  const mod = await entry.load();
  return await mod.run(rest);
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  process.exit(code);
}
