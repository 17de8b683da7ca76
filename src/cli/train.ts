/**
 * `deno task cli train --model DIR --data FILE --out DIR [options]`: tunes a LoRA adapter on
 * preference data and writes it in PEFT format.
 *
 * Exit codes: 0 done (or interrupted with a checkpoint written), 2 bad input (nothing written),
 * 1 a failure during training (the last good checkpoint is kept).
 *
 * @module
 */

import process from "node:process";
import { flag } from "../options/table.ts";
import { NonFiniteLossError, TRAIN_OPTIONS, Trainer, type TrainOptions } from "../train/trainer.ts";
import { isInputError } from "./errors.ts";
import { flagMessage, helpText, parseFlags, UsageError } from "./flags.ts";

/** The trainer's option table plus the flags of the command itself. */
const FLAGS = {
  ...TRAIN_OPTIONS,
  json: flag({ help: "print one JSON summary object on stdout at the end", fingerprint: false }),
  help: flag({ help: "show this help", fingerprint: false }),
} as const;

/** `--help` (built when printed, so that backend names registered later are listed). */
const help = () => helpText("Usage: deno task cli train --model DIR --data FILE --out DIR [options]", FLAGS);

/** Parses the command line into {@link TrainOptions} (throws an OptionError naming the option). */
export function parseTrainArgs(argv: string[]): TrainOptions & { json: boolean; help: boolean } {
  const values = parseFlags(FLAGS, argv);
  if (values.help) return { model: "", data: "", out: "", json: false, help: true };
  const { json, help: _help, ...options } = values;
  return { ...(options as TrainOptions), json: json ?? false, help: false };
}

/** CLI entry. */
export async function run(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parseTrainArgs>;
  try {
    args = parseTrainArgs(argv);
  } catch (e) {
    console.error(`error: ${flagMessage(e, FLAGS)}${e instanceof UsageError ? `\n\n${help()}` : ""}`);
    return 2;
  }
  if (args.help) {
    console.log(help());
    return 0;
  }
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    console.error("\ninterrupt: finishing the current step, writing a checkpoint (Ctrl-C again to quit at once)");
    controller.abort();
  };
  process.on("SIGINT", onSigint);
  const log = (line: string) => console.error(line);
  let trainer: Trainer;
  try {
    trainer = await Trainer.create({
      ...args,
      log,
      signal: controller.signal,
      progress: { write: (t) => process.stderr.write(t), isTTY: Boolean(process.stderr.isTTY) },
    });
  } catch (e) {
    process.off("SIGINT", onSigint);
    console.error(`error: ${flagMessage(e, FLAGS)}`);
    return isInputError(e) ? 2 : 1;
  }
  try {
    const summary = await trainer.train();
    if (args.json) console.log(JSON.stringify(summary));
    else {
      console.error(
        `${summary.interrupted ? "interrupted after" : "done:"} ${summary.steps} steps, loss ${
          summary.finalLoss?.toFixed(4)
        }, ${summary.tokensPerSecond.toFixed(0)} tokens/s on ${summary.backend}; adapter in ${summary.adapter}`,
      );
    }
    return 0;
  } catch (e) {
    console.error(`error: ${flagMessage(e, FLAGS)}`);
    if (e instanceof NonFiniteLossError) return 1;
    return isInputError(e) ? 2 : 1;
  } finally {
    process.off("SIGINT", onSigint);
  }
}
