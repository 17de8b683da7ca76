/**
 * `score --model M [--revision REV] [--adapter DIR] --data FILE [--backend B] [--threads N] [--temperature F]
 * [--batch-size N] [--json]`: log π(completion | prompt) of every completion in a JSONL file.
 *
 * Line formats (TRL's and the EXO code's), text or pre-tokenized:
 * - `{"prompt", "chosen", "rejected"}` → `{"chosen_logp", "rejected_logp"}`
 * - `{"prompt", "completions": [...], "rewards"?}` → `{"completion_logps": [...]}`
 * - `{"prompt", "completion"}` → `{"logp"}`
 * - `prompt_ids`, `chosen_ids`, `rejected_ids`, `completions_ids`, `completion_ids` are used verbatim.
 *
 * Validation and encoding are the data module's (`src/data/`), as for `train`: text is encoded as
 * TRL does (the prompt with the tokenizer's special tokens, each completion without them and with
 * EOS appended); errors name the file, line and field.
 *
 * @module
 */

import { localFiles } from "../io/files.ts";
import { readAdapter } from "../lora/adapter.ts";
import { type LoadedModel, loadModel, releaseWeights } from "../models/load.ts";
import { Scorer, type ScoreSequence } from "../models/score.ts";
import { DataError } from "../data/jsonl.ts";
import { readDataset } from "../data/formats.ts";
import { encodeDataset } from "../data/encode.ts";
import { backendOption, modelOption, revisionOption, threadsOption } from "../options/common.ts";
import { flag, integer, number, text } from "../options/table.ts";
import { isInputError } from "./errors.ts";
import { flagMessage, helpText, readFlags, UsageError } from "./flags.ts";

/** The command's flags. */
const FLAGS = {
  model: modelOption(),
  revision: revisionOption(),
  adapter: text({ default: null, metavar: "DIR", defaultText: "the base model", help: "PEFT LoRA adapter to apply" }),
  data: text({
    required: true,
    metavar: "FILE",
    help: "JSONL: {prompt, chosen, rejected} | {prompt, completions} | {prompt, completion} or the *_ids variants",
  }),
  backend: backendOption(),
  threads: threadsOption(),
  temperature: number({ default: 1, check: "positive", help: "divide the logits by F before log-softmax" }),
  batchSize: integer({ default: 8, min: 1, help: "sequences per run" }),
  json: flag({ help: "print one JSON object per input line" }),
  help: flag({ help: "show this help" }),
} as const;

const usage = () => helpText("Usage: deno task cli score --model M --data FILE [options]", FLAGS);

/** One input line after encoding: which sequences it owns, and how to print them. */
interface Encoded {
  line: number;
  kind: "pair" | "group" | "single";
  seqs: ScoreSequence[];
}

type Json = Record<string, unknown>;

/**
 * Reads, validates and encodes a JSONL file with the shared data module (the same formats, messages
 * and TRL encoding as `train`), in its scoring mode: reward groups need no rewards and may differ in
 * size. Sequences longer than the model's context are truncated by the documented rule.
 */
async function readData(path: string, model: LoadedModel): Promise<{ data: Encoded[]; truncated: number }> {
  const ds = await readDataset(path, { vocabSize: model.config.vocabSize, forScoring: true });
  if (ds.kind === "prompts") {
    throw new DataError(
      { file: path, line: null, field: null },
      `no completion field to score: expected {"prompt","chosen","rejected"}, {"prompt","completions"} or {"prompt","completion"} (or their *_ids forms)`,
    );
  }
  const enc = encodeDataset(ds, model.tokenizer, { maxLength: model.config.maxPositions });
  const seq = (p: number[], c: number[]): ScoreSequence => ({ promptIds: p, completionIds: c });
  let data: Encoded[];
  if (enc.kind === "pairs") {
    data = enc.examples.map((e) => ({
      line: e.line,
      kind: "pair",
      seqs: [seq(e.promptIds, e.chosenIds), seq(e.promptIds, e.rejectedIds)],
    }));
  } else if (enc.kind === "groups") {
    data = enc.examples.map((e) => ({
      line: e.line,
      kind: "group",
      seqs: e.completionIds.map((c) => seq(e.promptIds, c)),
    }));
  } else if (enc.kind === "prompt_completion") {
    data = enc.examples.map((e) => ({ line: e.line, kind: "single", seqs: [seq(e.promptIds, e.completionIds)] }));
  } else throw new Error(`unreachable: ${enc.kind}`);
  return { data, truncated: enc.truncation.truncatedExamples };
}

function result(e: Encoded, logps: number[]): Json {
  if (e.kind === "pair") return { chosen_logp: logps[0], rejected_logp: logps[1] };
  if (e.kind === "group") return { completion_logps: logps };
  return { logp: logps[0] };
}

/** Prints the error; exit 2 for bad input (data, model, adapter, options), 1 for anything else. */
function failure(e: unknown): number {
  console.error((e as Error)?.message ?? String(e));
  return isInputError(e) ? 2 : 1;
}

/** CLI entry. */
export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    values = readFlags(FLAGS, argv);
  } catch (e) {
    console.error(
      `${flagMessage(e, FLAGS)}${e instanceof UsageError || !(e instanceof RangeError) ? `\n${usage()}` : ""}`,
    );
    return 2;
  }
  if (values === "help") {
    console.log(usage());
    return 0;
  }
  const { temperature, batchSize } = values;
  let model: LoadedModel, data: Encoded[], scorer: Scorer;
  try {
    model = await loadModel(values.model, localFiles(), { hub: { revision: values.revision } });
    const read = await readData(values.data, model);
    data = read.data;
    if (read.truncated > 0) {
      console.error(
        `note: ${read.truncated} lines were truncated to the model's ${model.config.maxPositions} positions`,
      );
    }
    const adapter = values.adapter ? await readAdapter(values.adapter, localFiles(), model.config) : undefined;
    scorer = await Scorer.create(model, { backend: values.backend, threads: values.threads ?? undefined, adapter });
    // The session holds the weights now; the JS copy would hold them twice.
    releaseWeights(model);
  } catch (e) {
    return failure(e);
  }
  try {
    const logps = await scorer.score(data.flatMap((d) => d.seqs), { temperature, batchSize });
    let k = 0;
    for (const d of data) {
      const r = result(d, logps.slice(k, k + d.seqs.length));
      k += d.seqs.length;
      if (values.json) console.log(JSON.stringify(r));
      else {
        const body = Object.entries(r).map(([key, v]) =>
          `${key} ${Array.isArray(v) ? v.map((x) => x.toFixed(4)).join(" ") : (v as number).toFixed(4)}`
        );
        console.log(`line ${d.line}: ${body.join("  ")}`);
      }
    }
    if (!values.json) console.error(`scored ${logps.length} sequences on ${scorer.backend} (${scorer.reason})`);
  } catch (e) {
    return failure(e);
  } finally {
    await scorer.release();
  }
  return 0;
}
