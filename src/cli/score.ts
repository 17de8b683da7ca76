/**
 * `score --model DIR [--adapter DIR] --data FILE [--backend B] [--threads N] [--temperature F]
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

import { parseArgs } from "node:util";
import { localFiles } from "../io/files.ts";
import { readAdapter } from "../lora/adapter.ts";
import { type LoadedModel, loadModel } from "../models/load.ts";
import { Scorer, type ScoreSequence } from "../models/score.ts";
import { DataError } from "../data/jsonl.ts";
import { readDataset } from "../data/formats.ts";
import { encodeDataset } from "../data/encode.ts";
import type { BackendPreference } from "../runtime/backend.ts";
import { isInputError } from "./errors.ts";
import { parseBackend, parseThreads } from "./backend_args.ts";

const USAGE = "Usage: deno task cli score --model DIR --data FILE [options]\n" +
  "  --model DIR          Hugging Face model directory\n" +
  "  --adapter DIR        PEFT LoRA adapter to apply (default: the base model)\n" +
  "  --data FILE          JSONL: {prompt, chosen, rejected} | {prompt, completions} | {prompt, completion}\n" +
  "                       or the *_ids variants\n" +
  "  --backend B          auto | webgpu | wasm | native-cpu | native-webgpu (default auto)\n" +
  "  --threads N          CPU threads: native-cpu intra-op (default: all cores), wasm (default 1)\n" +
  "  --temperature F      divide the logits by F before log-softmax (default 1)\n" +
  "  --batch-size N       sequences per run (default 8)\n" +
  "  --json               print one JSON object per input line";

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
    ({ values } = parseArgs({
      args: argv,
      options: {
        model: { type: "string" },
        adapter: { type: "string" },
        data: { type: "string" },
        backend: { type: "string", default: "auto" },
        threads: { type: "string" },
        temperature: { type: "string", default: "1" },
        "batch-size": { type: "string", default: "8" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.model === undefined || values.data === undefined) {
    console.error(`score needs --model and --data\n${USAGE}`);
    return 2;
  }
  const temperature = Number(values.temperature);
  if (!(temperature > 0) || !Number.isFinite(temperature)) {
    console.error(`--temperature must be a positive number, got ${values.temperature}`);
    return 2;
  }
  const batchSize = Number(values["batch-size"]);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    console.error(`--batch-size must be a positive integer, got ${values["batch-size"]}`);
    return 2;
  }
  let backend: BackendPreference, threads: number | undefined;
  try {
    backend = parseBackend(values.backend);
    threads = parseThreads(values.threads);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  let model: LoadedModel, data: Encoded[], scorer: Scorer;
  try {
    model = await loadModel(values.model);
    const read = await readData(values.data, model);
    data = read.data;
    if (read.truncated > 0) {
      console.error(
        `note: ${read.truncated} lines were truncated to the model's ${model.config.maxPositions} positions`,
      );
    }
    const adapter = values.adapter ? await readAdapter(values.adapter, localFiles(), model.config) : undefined;
    scorer = await Scorer.create(model, { backend, threads, adapter });
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
