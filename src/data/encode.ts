/**
 * Text records to token ids, and truncation to the model's context.
 *
 * Tokenization (TRL's and the EXO paper's convention): the prompt and each completion are tokenized
 * separately; the prompt WITH the tokenizer's special tokens (e.g. Llama's `<s>`), the completion
 * WITHOUT, then EOS appended to each completion. For the bundled review-gpt2 data, whose tokenizer
 * adds no special tokens, this is exactly `tok(prompt) + tok(completion) + [eos]`. Pre-tokenized ids
 * are used verbatim (nothing appended).
 *
 * Conversational records (message lists) follow TRL's `DPOTrainer`: the prompt's ids are the chat
 * template applied to the prompt with the generation prompt (`<|im_start|>assistant\n`), a
 * completion's ids are the template applied to prompt + completion, minus the prompt's ids. Nothing
 * is appended: the template ends the assistant's turn itself (`<|im_end|>`, `<end_of_turn>`). When
 * the prompt's ids are not a prefix of the whole conversation's (a template that renders the
 * prompt differently once an answer follows), the split is made at the same place as TRL makes it
 * and a warning names the line.
 *
 * Truncation to `maxLength` tokens per sequence (prompt + completion): first the prompt is cut from the
 * LEFT (its end is kept, since that is what the completion continues), down to at least 1 token; then
 * completions still too long are cut from the RIGHT (their start is kept). The prompt of a pair or
 * group is shared, so it is cut once, to fit the longest completion.
 *
 * @module
 */

import { applyChatTemplate, type ChatMessage, ChatTemplateError, type ChatTokenizer } from "../models/chat_template.ts";
import {
  type Dataset,
  type GroupRecord,
  isConversation,
  type PairRecord,
  type PromptCompletionRecord,
  type PromptRecord,
  type Segment,
} from "./formats.ts";
import { DataError, type DataUnit, type DataWarning, dataWarning, throwCollected } from "./jsonl.ts";

/**
 * The tokenizer this module needs; `src/models/tokenizer.ts`'s `Tokenizer` satisfies it.
 */
export interface Tokenizer extends ChatTokenizer {
  /** Token ids of a text; `addSpecialTokens` (default true) applies the post-processor's special tokens. */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  readonly eosId: number | null;
  readonly vocabSize: number;
}

/** Options of {@link encodeDataset}. */
export interface EncodeOptions {
  /** Append the tokenizer's EOS to each text completion. Default true. */
  appendEos?: boolean;
  /** The model's context length: truncate each prompt + completion to it (see the module doc). */
  maxLength?: number;
  /** Bound for token ids; default the tokenizer's vocabulary size (no check without either). */
  vocabSize?: number;
  /** How many errors to list before giving up. Default 20. */
  maxErrors?: number;
}

/** A preference pair as token ids. */
export interface EncodedPair {
  promptIds: number[];
  chosenIds: number[];
  rejectedIds: number[];
  /** 1-based line in the data file (0-based index for data given as a list of records). */
  line: number;
}

/** A reward group as token ids. */
export interface EncodedGroup {
  promptIds: number[];
  completionIds: number[][];
  rewards: number[];
  line: number;
}

/** A prompt and one completion as token ids. */
export interface EncodedCompletion {
  promptIds: number[];
  completionIds: number[];
  line: number;
}

/** A prompt as token ids. */
export interface EncodedPrompt {
  promptIds: number[];
  line: number;
}

/** What truncation did, for the trainer's summary. */
export interface TruncationStats {
  /** The limit applied, or null when none was. */
  maxLength: number | null;
  examples: number;
  /** Examples where anything was cut. */
  truncatedExamples: number;
  /** Examples whose prompt was cut. */
  truncatedPrompts: number;
  /** Completions that were cut (a pair counts up to 2, a group up to K). */
  truncatedCompletions: number;
  /** Tokens removed from prompts and from completions. */
  droppedPromptTokens: number;
  droppedCompletionTokens: number;
}

/** An encoded file. */
export type EncodedDataset =
  & { file: string; truncation: TruncationStats; warnings: DataWarning[] }
  & (
    | { kind: "pairs"; examples: EncodedPair[] }
    | { kind: "groups"; examples: EncodedGroup[] }
    | { kind: "prompt_completion"; examples: EncodedCompletion[] }
    | { kind: "prompts"; examples: EncodedPrompt[] }
  );

/** The result of {@link truncateExample}. */
export interface Truncated {
  promptIds: number[];
  completions: number[][];
  /** Tokens removed from the prompt's start. */
  promptCut: number;
  /** Tokens removed from each completion's end. */
  completionCuts: number[];
}

/**
 * Truncates one example so that `prompt + completion <= maxLength` for every completion: the shared
 * prompt is cut from the left (keeping its end, and at least 1 token) to fit the longest completion,
 * then completions still too long are cut from the right. Inputs are not modified.
 */
export function truncateExample(
  promptIds: readonly number[],
  completions: readonly (readonly number[])[],
  maxLength: number,
): Truncated {
  if (!Number.isInteger(maxLength) || maxLength < 2) {
    throw new RangeError(`maxLength must be an integer >= 2 (one prompt and one completion token), got ${maxLength}`);
  }
  const longest = completions.reduce((m, c) => Math.max(m, c.length), 0);
  const keepPrompt = Math.min(promptIds.length, Math.max(1, maxLength - longest));
  const room = maxLength - keepPrompt;
  return {
    promptIds: promptIds.slice(promptIds.length - keepPrompt),
    completions: completions.map((c) => c.slice(0, room)),
    promptCut: promptIds.length - keepPrompt,
    completionCuts: completions.map((c) => Math.max(0, c.length - room)),
  };
}

/** Encodes records one by one, collecting errors with their line and field. */
class Encoder {
  errors: DataError[] = [];
  errorCount = 0;
  warnings: DataWarning[] = [];
  readonly appendEos: boolean;
  readonly vocabSize: number | undefined;
  readonly maxErrors: number;
  stats: TruncationStats;

  constructor(
    readonly file: string,
    readonly tokenizer: Tokenizer | null,
    readonly options: EncodeOptions,
    readonly unit: DataUnit = "line",
  ) {
    this.appendEos = options.appendEos ?? true;
    this.vocabSize = options.vocabSize ?? tokenizer?.vocabSize;
    this.maxErrors = options.maxErrors ?? 20;
    this.stats = {
      maxLength: options.maxLength ?? null,
      examples: 0,
      truncatedExamples: 0,
      truncatedPrompts: 0,
      truncatedCompletions: 0,
      droppedPromptTokens: 0,
      droppedCompletionTokens: 0,
    };
    if (options.maxLength !== undefined) truncateExample([1], [[1]], options.maxLength); // validates maxLength
  }

  error(line: number, field: string, detail: string): void {
    this.errorCount++;
    if (this.errors.length < this.maxErrors) {
      this.errors.push(new DataError({ file: this.file, line, field, unit: this.unit }, detail));
    }
  }

  /**
   * Token ids of a prompt or completion, or null after recording an error. `field` names the text
   * field, `idsField` the pre-tokenized one (e.g. "completions[1]" and "completions_ids[1]").
   */
  segment(s: Segment, line: number, field: string, completion: boolean, idsField = `${field}_ids`): number[] | null {
    let ids: number[];
    if (isConversation(s)) throw new Error(`unreachable: a conversation at line ${line} reached segment()`);
    if (typeof s === "string") {
      const tok = this.tokenizer;
      if (tok === null) {
        throw new DataError(
          { file: this.file, line, field, unit: this.unit },
          "the data is text but no tokenizer was given: pass the model's tokenizer, or pre-tokenize into *_ids fields",
        );
      }
      ids = tok.encode(s, { addSpecialTokens: !completion });
      if (completion && this.appendEos) {
        if (tok.eosId === null) {
          throw new DataError(
            { file: this.file, line, field, unit: this.unit },
            "the tokenizer has no EOS token to end completions with: set eos_token in tokenizer_config.json or pass appendEos: false",
          );
        }
        ids.push(tok.eosId);
      }
    } else {
      ids = (s as number[]).slice();
    }
    const fieldName = typeof s === "string" ? field : idsField;
    if (ids.length === 0) {
      this.error(
        line,
        fieldName,
        completion
          ? "empty completion after tokenization"
          : "empty prompt after tokenization: the first completion token needs at least one token before it",
      );
      return null;
    }
    if (this.vocabSize !== undefined) {
      const bad = ids.findIndex((id) => id >= this.vocabSize!);
      if (bad >= 0) {
        const where = typeof s === "string" ? fieldName : `${fieldName}[${bad}]`;
        this.error(line, where, `token id ${ids[bad]} is out of the vocabulary (size ${this.vocabSize})`);
        return null;
      }
    }
    return ids;
  }

  /**
   * A conversational prompt and its completions as ids (TRL's split, see the module doc), or null
   * after recording an error. `fields` name the completions (e.g. "chosen", "completions[1]").
   */
  conversation(
    prompt: ChatMessage[],
    completions: ChatMessage[][],
    line: number,
    fields: string[],
  ): { promptIds: number[]; completions: number[][] } | null {
    const tok = this.tokenizer;
    if (tok === null) {
      throw new DataError(
        { file: this.file, line, field: "prompt", unit: this.unit },
        "the data is conversational but no tokenizer was given: pass the model's tokenizer (with its chat template)",
      );
    }
    const apply = (messages: ChatMessage[], field: string, addGenerationPrompt: boolean): number[] | null => {
      try {
        return applyChatTemplate(tok, messages, { addGenerationPrompt });
      } catch (e) {
        if (!(e instanceof ChatTemplateError)) throw e;
        if (/has no chat template/.test(e.message)) {
          throw new DataError(
            { file: this.file, line, field, unit: this.unit },
            `conversational data needs a chat template: ${e.message}`,
          );
        }
        this.error(line, field, e.message);
        return null;
      }
    };
    const promptIds = apply(prompt, "prompt", true);
    if (promptIds === null) return null;
    const out: number[][] = [];
    for (const [i, c] of completions.entries()) {
      const full = apply([...prompt, ...c], fields[i], false);
      if (full === null) return null;
      if (!promptIds.every((id, j) => full[j] === id)) {
        this.warnings.push(
          dataWarning(
            { file: this.file, line, field: fields[i], unit: this.unit },
            "the chat template renders the prompt differently once the completion follows, so the completion's first tokens are cut where the prompt alone ends (as TRL does)",
          ),
        );
      }
      const ids = full.slice(promptIds.length);
      if (ids.length === 0) {
        this.error(line, fields[i], "empty completion after applying the chat template");
        return null;
      }
      out.push(ids);
    }
    if (this.vocabSize !== undefined) {
      const bad = [promptIds, ...out].flat().find((id) => id >= this.vocabSize!);
      if (bad !== undefined) {
        this.error(line, "prompt", `token id ${bad} is out of the vocabulary (size ${this.vocabSize})`);
        return null;
      }
    }
    return { promptIds, completions: out };
  }

  /** Applies truncation to one example and counts it. */
  fit(promptIds: number[], completions: number[][]): { promptIds: number[]; completions: number[][] } {
    this.stats.examples++;
    const max = this.options.maxLength;
    if (max === undefined) return { promptIds, completions };
    const t = truncateExample(promptIds, completions, max);
    const cutCompletions = t.completionCuts.filter((c) => c > 0).length;
    if (t.promptCut > 0 || cutCompletions > 0) this.stats.truncatedExamples++;
    if (t.promptCut > 0) this.stats.truncatedPrompts++;
    this.stats.truncatedCompletions += cutCompletions;
    this.stats.droppedPromptTokens += t.promptCut;
    this.stats.droppedCompletionTokens += t.completionCuts.reduce((a, b) => a + b, 0);
    return { promptIds: t.promptIds, completions: t.completions };
  }

  pair(r: PairRecord): EncodedPair | null {
    if (isConversation(r.prompt)) {
      const c = this.conversation(r.prompt, [r.chosen, r.rejected] as ChatMessage[][], r.line, ["chosen", "rejected"]);
      if (c === null) return null;
      const t = this.fit(c.promptIds, c.completions);
      return { promptIds: t.promptIds, chosenIds: t.completions[0], rejectedIds: t.completions[1], line: r.line };
    }
    const p = this.segment(r.prompt, r.line, "prompt", false);
    const c = this.segment(r.chosen, r.line, "chosen", true);
    const j = this.segment(r.rejected, r.line, "rejected", true);
    if (p === null || c === null || j === null) return null;
    const t = this.fit(p, [c, j]);
    return { promptIds: t.promptIds, chosenIds: t.completions[0], rejectedIds: t.completions[1], line: r.line };
  }

  group(r: GroupRecord): EncodedGroup | null {
    if (isConversation(r.prompt)) {
      const fields = r.completions.map((_, i) => `completions[${i}]`);
      const c = this.conversation(r.prompt, r.completions as ChatMessage[][], r.line, fields);
      if (c === null) return null;
      const t = this.fit(c.promptIds, c.completions);
      return { promptIds: t.promptIds, completionIds: t.completions, rewards: r.rewards.slice(), line: r.line };
    }
    const p = this.segment(r.prompt, r.line, "prompt", false);
    const cs = r.completions.map((c, i) => this.segment(c, r.line, `completions[${i}]`, true, `completions_ids[${i}]`));
    if (p === null || cs.some((c) => c === null)) return null;
    const t = this.fit(p, cs as number[][]);
    return { promptIds: t.promptIds, completionIds: t.completions, rewards: r.rewards.slice(), line: r.line };
  }

  completion(r: PromptCompletionRecord): EncodedCompletion | null {
    if (isConversation(r.prompt)) {
      const c = this.conversation(r.prompt, [r.completion as ChatMessage[]], r.line, ["completion"]);
      if (c === null) return null;
      const t = this.fit(c.promptIds, c.completions);
      return { promptIds: t.promptIds, completionIds: t.completions[0], line: r.line };
    }
    const p = this.segment(r.prompt, r.line, "prompt", false);
    const c = this.segment(r.completion, r.line, "completion", true);
    if (p === null || c === null) return null;
    const t = this.fit(p, [c]);
    return { promptIds: t.promptIds, completionIds: t.completions[0], line: r.line };
  }

  prompt(r: PromptRecord): EncodedPrompt | null {
    const p = isConversation(r.prompt)
      ? this.conversation(r.prompt, [], r.line, [])?.promptIds ?? null
      : this.segment(r.prompt, r.line, "prompt", false);
    if (p === null) return null;
    // A prompt alone keeps its last maxLength tokens.
    this.stats.examples++;
    const max = this.options.maxLength;
    if (max !== undefined && p.length > max) {
      this.stats.truncatedExamples++;
      this.stats.truncatedPrompts++;
      this.stats.droppedPromptTokens += p.length - max;
      return { promptIds: p.slice(p.length - max), line: r.line };
    }
    return { promptIds: p, line: r.line };
  }

  run<R, E>(records: readonly R[], one: (r: R) => E | null): E[] {
    const out: E[] = [];
    for (const r of records) {
      const e = one.call(this, r);
      if (e !== null) out.push(e);
    }
    throwCollected(this.file, this.errors, this.errorCount);
    return out;
  }
}

/**
 * Encodes a validated dataset (see `validateAll`) into token ids and truncates it to `maxLength`.
 * `tokenizer` may be null for pre-tokenized data. Throws a {@link DataError} naming the line for
 * examples that cannot be encoded (a prompt that tokenizes to nothing, ids outside the vocabulary).
 */
export function encodeDataset(
  dataset: Dataset,
  tokenizer: Tokenizer | null,
  options: EncodeOptions = {},
): EncodedDataset {
  const enc = new Encoder(dataset.file, tokenizer, options, dataset.unit);
  const file = dataset.file;
  switch (dataset.kind) {
    case "pairs": {
      const examples = enc.run(dataset.records, enc.pair);
      return { file, kind: "pairs", examples, truncation: enc.stats, warnings: enc.warnings };
    }
    case "groups": {
      const examples = enc.run(dataset.records, enc.group);
      return { file, kind: "groups", examples, truncation: enc.stats, warnings: enc.warnings };
    }
    case "prompt_completion": {
      const examples = enc.run(dataset.records, enc.completion);
      return { file, kind: "prompt_completion", examples, truncation: enc.stats, warnings: enc.warnings };
    }
    case "prompts": {
      const examples = enc.run(dataset.records, enc.prompt);
      return { file, kind: "prompts", examples, truncation: enc.stats, warnings: enc.warnings };
    }
  }
}

/** Encodes preference pairs (see {@link encodeDataset}). */
export function encodePairs(
  records: readonly PairRecord[],
  tokenizer: Tokenizer | null,
  options: EncodeOptions & { file?: string } = {},
): { examples: EncodedPair[]; truncation: TruncationStats; warnings: DataWarning[] } {
  const enc = new Encoder(options.file ?? "<data>", tokenizer, options);
  return { examples: enc.run(records, enc.pair), truncation: enc.stats, warnings: enc.warnings };
}

/** Encodes reward groups (see {@link encodeDataset}). */
export function encodeGroups(
  records: readonly GroupRecord[],
  tokenizer: Tokenizer | null,
  options: EncodeOptions & { file?: string } = {},
): { examples: EncodedGroup[]; truncation: TruncationStats; warnings: DataWarning[] } {
  const enc = new Encoder(options.file ?? "<data>", tokenizer, options);
  return { examples: enc.run(records, enc.group), truncation: enc.stats, warnings: enc.warnings };
}
