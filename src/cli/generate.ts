/**
 * `generate --model DIR [--adapter DIR] [--merge] --prompt STR [options]`: sample completions,
 * streamed to stdout (or one JSON object with `--json`).
 *
 * `--prompts FILE --out FILE` reads JSONL prompts (`{"prompt": ...}` or `{"prompt_ids": [...]}`,
 * other fields ignored) and writes the EXO reward-data format, one line per prompt:
 * `{"prompt", "completions": [K texts], "rewards": [K nulls]}` (or `prompt_ids` /
 * `completions_ids` for tokenized prompts, completion ids without the EOS), for a scorer to fill
 * in the rewards. The file is written atomically (temp file + rename), so an interrupted run leaves
 * no half-written output.
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { readDataset } from "../data/formats.ts";
import { localFiles } from "../io/files.ts";
import { readAdapter } from "../lora/adapter.ts";
import { loadModel } from "../models/load.ts";
import type { BackendPreference } from "../runtime/backend.ts";
import { parseBackend, parseThreads } from "./backend_args.ts";
import { type GenerateOptions, Generator } from "../generate/generator.ts";
import { isInputError } from "./errors.ts";

const USAGE = "Usage: deno task cli generate --model DIR (--prompt STR | --prompts FILE --out FILE) [options]\n" +
  "  --model DIR           Hugging Face model directory\n" +
  "  --adapter DIR         PEFT LoRA adapter to apply (default: the base model)\n" +
  "  --merge               fold the adapter into the weights (default: run it unmerged)\n" +
  "  --prompt STR          one prompt; the completion streams to stdout\n" +
  '  --prompts FILE        JSONL prompts ({"prompt"} or {"prompt_ids"}); needs --out\n' +
  "  --out FILE            JSONL in the reward format {prompt, completions, rewards: [null...]}\n" +
  "  --max-new-tokens N    new tokens per completion (default: generation_config.json, else 32)\n" +
  "  --temperature F       0 = greedy (default: generation_config.json's sampling, else greedy;\n" +
  "                        1 with --prompts)\n" +
  "  --top-k N             keep the N most likely tokens (default 0: all)\n" +
  "  --top-p F             nucleus sampling threshold (default 1: all)\n" +
  "  --num-samples N       completions per prompt, one batch (default 1; 4 with --prompts)\n" +
  "  --batch-size N        prompts decoded together with --prompts (default 1)\n" +
  "  --stop STR            stop a completion at this text (repeatable)\n" +
  "  --seed N              sampling seed (default: random, printed)\n" +
  "  --backend B           auto | webgpu | wasm | native-cpu | native-webgpu (default auto)\n" +
  "  --threads N           CPU threads: native-cpu intra-op (default: all cores), wasm (default 1)\n" +
  "  --json                print one JSON object instead of streaming text";

function intOption(v: string | undefined, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new RangeError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  }
  return n;
}

function floatOption(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) {
    throw new RangeError(`--${name} must be a number, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** Runs the command; returns the exit code (2 for bad options or input). */
export async function run(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        model: { type: "string" },
        adapter: { type: "string" },
        merge: { type: "boolean", default: false },
        prompt: { type: "string" },
        prompts: { type: "string" },
        out: { type: "string" },
        "max-new-tokens": { type: "string" },
        temperature: { type: "string" },
        "top-k": { type: "string" },
        "top-p": { type: "string" },
        "num-samples": { type: "string" },
        "batch-size": { type: "string" },
        stop: { type: "string", multiple: true },
        seed: { type: "string" },
        backend: { type: "string", default: "auto" },
        threads: { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  try {
    if (!args.model) throw new RangeError("--model is required");
    if ((args.prompt === undefined) === (args.prompts === undefined)) {
      throw new RangeError("Give exactly one of --prompt STR or --prompts FILE");
    }
    if (args.prompts !== undefined && !args.out) throw new RangeError("--prompts needs --out FILE");
    if (args.merge && !args.adapter) throw new RangeError("--merge needs --adapter DIR");
    const backend: BackendPreference = parseBackend(args.backend);
    const threads = parseThreads(args.threads);
    const numSamples = intOption(args["num-samples"], "num-samples", 1) ?? (args.prompts !== undefined ? 4 : 1);
    if (args.prompts !== undefined && numSamples < 2) {
      throw new RangeError(
        "--num-samples must be >= 2 with --prompts: reward groups need K >= 2 completions per prompt",
      );
    }
    const options: GenerateOptions = {
      maxNewTokens: intOption(args["max-new-tokens"], "max-new-tokens", 1),
      temperature: floatOption(args.temperature, "temperature"),
      topK: intOption(args["top-k"], "top-k", 0),
      topP: floatOption(args["top-p"], "top-p"),
      numSamples,
      seed: intOption(args.seed, "seed", 0),
      stopStrings: args.stop ?? [],
    };
    const batchSize = intOption(args["batch-size"], "batch-size", 1) ?? 1;

    const files = localFiles();
    const model = await loadModel(args.model, files);
    const adapter = args.adapter ? await readAdapter(args.adapter, files, model.config) : null;
    // Read and check the prompts before the sessions are built: bad data fails fast.
    const data = args.prompts !== undefined
      ? await readDataset(args.prompts, { files, kind: "prompts", vocabSize: model.config.vocabSize })
      : null;
    const sampled = options.temperature !== undefined || options.topK !== undefined || options.topP !== undefined;
    if (data && !sampled && !model.generation.doSample) {
      // K greedy completions would all be the same: reward data needs samples.
      options.temperature = 1;
      console.error("sampling with temperature 1 (the model's generation_config.json does not sample)");
    }
    const generator = await Generator.create(model, { backend, threads, adapter, merge: args.merge });
    console.error(`backend: ${generator.backend} (${generator.reason})`);
    try {
      if (data) {
        const lines: string[] = [];
        const baseSeed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
        const records = data.records as { line: number; prompt: string | number[] }[];
        for (let start = 0; start < records.length; start += batchSize) {
          const batch = records.slice(start, start + batchSize);
          // Each batch draws from its own seed, derived from the run's (printed) seed.
          const res = await generator.generate(batch.map((r) => r.prompt), { ...options, seed: baseSeed + start });
          batch.forEach((rec, i) => {
            const seqs = res.sequences.filter((s) => s.prompt === i);
            const rewards = seqs.map(() => null);
            if (typeof rec.prompt === "string") {
              lines.push(JSON.stringify({ prompt: rec.prompt, completions: seqs.map((s) => s.text), rewards }));
            } else {
              const ids = seqs.map((s) => (s.finishReason === "eos" ? s.tokenIds.slice(0, -1) : s.tokenIds));
              lines.push(JSON.stringify({ prompt_ids: rec.prompt, completions_ids: ids, rewards }));
            }
          });
          console.error(`${Math.min(start + batchSize, records.length)}/${records.length} prompts`);
        }
        await files.writeText(args.out!, lines.join("\n") + "\n");
        console.error(`wrote ${records.length} lines to ${args.out} (seed ${baseSeed})`);
        return 0;
      }
      const prompt = args.prompt!;
      if (args.json) {
        const res = await generator.generate(prompt, options);
        console.log(JSON.stringify({
          prompt,
          completions: res.sequences.map((s) => s.text),
          token_ids: res.sequences.map((s) => s.tokenIds),
          finish_reasons: res.sequences.map((s) => s.finishReason),
          seed: res.seed,
          sampling: res.sampling,
          timings: res.timings,
        }));
        return 0;
      }
      const it = generator.stream(prompt, options);
      let r = await it.next();
      while (!r.done) {
        const ev = r.value;
        if (numSamples > 1 && ev.text !== "") {
          // Several samples stream interleaved; prefix each piece with its sample number.
          process.stdout.write(`[${ev.sample}] ${JSON.stringify(ev.text)}\n`);
        } else if (ev.text !== "") process.stdout.write(ev.text);
        r = await it.next();
      }
      if (numSamples > 1) {
        for (const s of r.value.sequences) {
          process.stdout.write(`--- sample ${s.sample} (${s.finishReason}) ---\n${s.text}\n`);
        }
      } else process.stdout.write("\n");
      const t = r.value.timings;
      console.error(
        `seed ${r.value.seed}; prefill ${t.promptTokens} tokens in ${
          t.prefillMs.toFixed(0)
        } ms, decode ${t.decodeSteps} steps x ${t.rows} rows in ${t.decodeMs.toFixed(0)} ms (${
          t.decodeTokensPerSecond.toFixed(1)
        } tokens/s)`,
      );
      return 0;
    } finally {
      await generator.release();
    }
  } catch (e) {
    if (isInputError(e)) {
      console.error(`error: ${(e as Error).message}`);
      return 2;
    }
    throw e;
  }
}
