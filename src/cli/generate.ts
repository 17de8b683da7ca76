/**
 * `generate --model M [--adapter DIR] [--merge] (--prompt STR | --chat FILE) [options]`: sample
 * completions, streamed to stdout (or one JSON object with `--json`). `--chat FILE` (a JSON list of
 * messages) goes through the model's chat template with the generation prompt, as transformers'
 * text-generation pipeline does for instruction models (a final assistant message is continued).
 *
 * `--prompts FILE --out FILE` reads JSONL prompts (`{"prompt": ...}` or `{"prompt_ids": [...]}`,
 * other fields ignored) and writes the EXO reward-data format, one line per prompt:
 * `{"prompt", "completions": [K texts], "rewards": [K nulls]}` (or `prompt_ids` /
 * `completions_ids` for tokenized prompts, completion ids without the EOS), for a scorer to fill
 * in the rewards. Conversational prompts (`{"prompt": [messages]}`) are templated and their
 * completions written as assistant messages, TRL's conversational reward format. The file is written atomically (temp file + rename), so an interrupted run leaves
 * no half-written output.
 *
 * @module
 */

import process from "node:process";
import { isConversation, readDataset, validateMessages } from "../data/formats.ts";
import { DataError } from "../data/jsonl.ts";
import { applyChatTemplate, type ChatMessage } from "../models/chat_template.ts";
import { localFiles } from "../io/files.ts";
import { readAdapter } from "../lora/adapter.ts";
import { loadModel } from "../models/load.ts";
import { backendOption, modelOption, revisionOption, threadsOption } from "../options/common.ts";
import { flag, integer, list, number, OptionError, text } from "../options/table.ts";
import { type GenerateOptions, Generator } from "../generate/generator.ts";
import { isInputError } from "./errors.ts";
import { flagMessage, helpText, readFlags } from "./flags.ts";

/** The command's flags. */
const FLAGS = {
  model: modelOption(),
  revision: revisionOption(),
  adapter: text({ default: null, metavar: "DIR", defaultText: "the base model", help: "PEFT LoRA adapter to apply" }),
  merge: flag({ help: "fold the adapter into the weights (default: run it unmerged)" }),
  prompt: text({ default: null, help: "one prompt; the completion streams to stdout" }),
  chat: text({
    default: null,
    metavar: "FILE",
    help: 'a JSON list of {"role", "content"} messages, through the chat template',
  }),
  prompts: text({ default: null, metavar: "FILE", help: 'JSONL prompts ({"prompt"} or {"prompt_ids"}); needs --out' }),
  out: text({
    default: null,
    metavar: "FILE",
    help: "JSONL in the reward format {prompt, completions, rewards: [null...]}",
  }),
  maxNewTokens: integer({
    default: null,
    min: 1,
    defaultText: "generation_config.json, else 32",
    help: "new tokens per completion",
  }),
  temperature: number({
    default: null,
    defaultText: "generation_config.json's sampling, else greedy; 1 with --prompts",
    help: "0 = greedy",
  }),
  topK: integer({ default: null, min: 0, defaultText: "0: all", help: "keep the N most likely tokens" }),
  topP: number({ default: null, defaultText: "1: all", help: "nucleus sampling threshold" }),
  numSamples: integer({
    default: null,
    min: 1,
    defaultText: "1; 4 with --prompts",
    help: "completions per prompt, one batch",
  }),
  batchSize: integer({ default: 1, min: 1, help: "prompts decoded together with --prompts" }),
  stop: list({ default: null, repeat: true, help: "stop a completion at this text" }),
  seed: integer({ default: null, min: 0, defaultText: "random, printed", help: "sampling seed" }),
  backend: backendOption(),
  threads: threadsOption(),
  json: flag({ help: "print one JSON object instead of streaming text" }),
  help: flag({ help: "show this help" }),
} as const;

const usage = () =>
  helpText(
    "Usage: deno task cli generate --model M (--prompt STR | --chat FILE | --prompts FILE --out FILE) [options]",
    FLAGS,
  );

/** Runs the command; returns the exit code (2 for bad options or input). */
export async function run(argv: string[]): Promise<number> {
  let args;
  try {
    args = readFlags(FLAGS, argv);
  } catch (e) {
    console.error(`${flagMessage(e, FLAGS)}\n\n${usage()}`);
    return 2;
  }
  if (args === "help") {
    console.log(usage());
    return 0;
  }
  try {
    if ([args.prompt, args.chat, args.prompts].filter((a) => a !== null).length !== 1) {
      throw new RangeError("Give exactly one of --prompt STR, --chat FILE or --prompts FILE");
    }
    if (args.prompts !== null && !args.out) throw new OptionError("prompts", "needs --out FILE");
    if (args.merge && !args.adapter) throw new OptionError("merge", "needs --adapter DIR");
    const numSamples = args.numSamples ?? (args.prompts !== null ? 4 : 1);
    if (args.prompts !== null && numSamples < 2) {
      throw new OptionError(
        "numSamples",
        "must be >= 2 with --prompts: reward groups need K >= 2 completions per prompt",
      );
    }
    const backend = args.backend;
    const options: GenerateOptions = {
      maxNewTokens: args.maxNewTokens ?? undefined,
      temperature: args.temperature ?? undefined,
      topK: args.topK ?? undefined,
      topP: args.topP ?? undefined,
      numSamples,
      seed: args.seed ?? undefined,
      stopStrings: args.stop ?? [],
    };
    const batchSize = args.batchSize;

    const files = localFiles();
    const model = await loadModel(args.model, files, { hub: { revision: args.revision } });
    let chat: ChatMessage[] | null = null;
    let chatIds: number[] | null = null;
    if (args.chat !== null) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(await files.readText(args.chat));
      } catch (e) {
        if (!(e instanceof SyntaxError)) throw e;
        throw new DataError({ file: args.chat, line: null, field: null }, `not valid JSON: ${e.message}`);
      }
      chat = validateMessages(parsed, args.chat);
      // As transformers' pipeline: a final assistant message is continued, otherwise a new turn starts.
      const continueFinal = chat[chat.length - 1].role === "assistant";
      chatIds = applyChatTemplate(model.tokenizer, chat, {
        addGenerationPrompt: !continueFinal,
        continueFinalMessage: continueFinal,
      });
    }
    const adapter = args.adapter ? await readAdapter(args.adapter, files, model.config) : null;
    // Read and check the prompts before the sessions are built: bad data fails fast.
    const data = args.prompts !== null
      ? await readDataset(args.prompts, { files, kind: "prompts", vocabSize: model.config.vocabSize })
      : null;
    const sampled = options.temperature !== undefined || options.topK !== undefined || options.topP !== undefined;
    if (data && !sampled && !model.generation.doSample) {
      // K greedy completions would all be the same: reward data needs samples.
      options.temperature = 1;
      console.error("sampling with temperature 1 (the model's generation_config.json does not sample)");
    }
    const generator = await Generator.create(model, {
      backend,
      threads: args.threads ?? undefined,
      adapter,
      merge: args.merge,
    });
    console.error(`backend: ${generator.backend} (${generator.reason})`);
    try {
      if (data) {
        const lines: string[] = [];
        const baseSeed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
        const records = data.records as { line: number; prompt: string | number[] | ChatMessage[] }[];
        for (let start = 0; start < records.length; start += batchSize) {
          const batch = records.slice(start, start + batchSize);
          const prompts = batch.map((r) =>
            isConversation(r.prompt)
              ? applyChatTemplate(model.tokenizer, r.prompt, { addGenerationPrompt: true })
              : r.prompt as string | number[]
          );
          // Each batch draws from its own seed, derived from the run's (printed) seed.
          const res = await generator.generate(prompts, { ...options, seed: baseSeed + start });
          batch.forEach((rec, i) => {
            const seqs = res.sequences.filter((s) => s.prompt === i);
            const rewards = seqs.map(() => null);
            if (isConversation(rec.prompt)) {
              const completions = seqs.map((s) => [{ role: "assistant", content: s.text }]);
              lines.push(JSON.stringify({ prompt: rec.prompt, completions, rewards }));
            } else if (typeof rec.prompt === "string") {
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
      const prompt = chatIds ?? args.prompt!;
      if (args.json) {
        const res = await generator.generate(prompt, options);
        console.log(JSON.stringify({
          prompt: chat ?? prompt,
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
      console.error(`error: ${flagMessage(e, FLAGS)}`);
      return 2;
    }
    throw e;
  }
}
