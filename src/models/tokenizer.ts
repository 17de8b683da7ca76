/**
 * Hugging Face tokenizers from a model directory: `tokenizer.json` (the fast-tokenizer pipeline:
 * normalizer, pre-tokenizer, BPE/Unigram model, post-processor, decoder) run by
 * `@huggingface/tokenizers`, plus the special tokens from `tokenizer_config.json` and/or
 * `special_tokens_map.json` (transformers 4 writes both, transformers 5 only the first; token entries
 * are plain strings or `{content, ...}` objects).
 *
 * Two behaviours follow transformers rather than the library's defaults:
 * - `clean_up_tokenization_spaces` defaults to false when the config does not say (transformers 5;
 *   the library would default to true and turn `"a ."` into `"a."`).
 * - decoding an empty id list gives `""` (the library throws).
 *
 * @module
 */

import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { resolveModelSource } from "../hub/source.ts";
import type { HubOptions } from "../hub/settings.ts";
import { type FileSource, joinPath, localFiles } from "../io/files.ts";
import { ChatTemplateError, parseChatTemplateField } from "./chat_template.ts";

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /** Apply the post-processor's special tokens (e.g. Llama's leading `<s>`). Default true, as in transformers. */
  addSpecialTokens?: boolean;
}

/** Options of {@link Tokenizer.decode}. */
export interface DecodeOptions {
  /** Drop special tokens (`<s>`, `<|endoftext|>`, ...) from the text. Default false. */
  skipSpecialTokens?: boolean;
}

/** A text <-> token-id codec that matches `transformers.AutoTokenizer` for the same directory. */
export interface Tokenizer {
  /** Token ids of a text; special tokens that occur literally in the text are matched as such (HF default). */
  encode(text: string, options?: EncodeOptions): number[];
  /** The text of token ids. */
  decode(ids: readonly number[], options?: DecodeOptions): string;
  /** Number of ids, added tokens included (= `len(tokenizer)` in transformers). */
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  readonly unkId: number | null;
  /** The token string of an id, or null when the id is unknown. */
  idToToken(id: number): string | null;
  /** The id of a token string, or null. */
  tokenToId(token: string): number | null;
  /**
   * The chat template (`chat_template.jinja`, else `tokenizer_config.json`'s `chat_template`; several
   * by name when the config lists them), or null. Applied by `src/models/chat_template.ts`.
   */
  readonly chatTemplate?: string | Readonly<Record<string, string>> | null;
  /** Special-token strings by name (`bos_token`, `eos_token`, ...), as chat templates see them. */
  readonly specialTokenStrings?: Readonly<Record<string, string>>;
}

/** The named special tokens transformers passes to chat templates (`special_tokens_map`). */
const SPECIAL_TOKEN_NAMES = [
  "bos_token",
  "eos_token",
  "unk_token",
  "sep_token",
  "pad_token",
  "cls_token",
  "mask_token",
];

type Json = Record<string, unknown>;

/** The error of a missing, malformed or inconsistent tokenizer file. */
export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TokenizerError";
  }
}

/** A special-token entry as written by either transformers version: a string or `{content}`. */
function tokenString(entry: unknown): string | null {
  if (typeof entry === "string") return entry;
  if (entry && typeof entry === "object" && typeof (entry as Json).content === "string") {
    return (entry as Json).content as string;
  }
  return null;
}

async function readJson(files: FileSource, path: string, required: boolean): Promise<Json | null> {
  if (!required && !(await files.exists(path))) return null;
  const text = await files.readText(path);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new TokenizerError(`${path} must hold a JSON object`);
  }
  return parsed as Json;
}

/** Builds a tokenizer from already parsed `tokenizer.json` and tokenizer config objects. */
export function createTokenizer(
  tokenizerJson: Json,
  tokenizerConfig: Json = {},
  specialTokensMap: Json = {},
  source = "tokenizer.json",
  chatTemplateFile: string | null = null,
): Tokenizer {
  const model = tokenizerJson.model as Json | undefined;
  if (!model || typeof model !== "object" || typeof model.type !== "string") {
    throw new TokenizerError(`${source} has no "model" section with a "type": is it a fast-tokenizer tokenizer.json?`);
  }
  // Later files win, as in transformers: special_tokens_map.json overrides tokenizer_config.json.
  const special: Record<string, string | null> = {};
  for (const key of SPECIAL_TOKEN_NAMES) {
    const fromMap = key in specialTokensMap ? tokenString(specialTokensMap[key]) : undefined;
    const fromConfig = key in tokenizerConfig ? tokenString(tokenizerConfig[key]) : undefined;
    special[key] = fromMap !== undefined ? fromMap : fromConfig ?? null;
  }
  const config: Json = {
    ...tokenizerConfig,
    ...Object.fromEntries(Object.entries(special).filter(([, v]) => v !== null)),
    clean_up_tokenization_spaces: tokenizerConfig.clean_up_tokenization_spaces ?? false,
  };
  let hf: HfTokenizer;
  try {
    hf = new HfTokenizer(tokenizerJson, config);
  } catch (e) {
    throw new TokenizerError(`Cannot build the tokenizer from ${source}: ${(e as Error).message}`);
  }
  const vocab = hf.get_vocab(true);
  let maxId = -1;
  for (const id of vocab.values()) if (id > maxId) maxId = id;
  const idOf = (token: string | null): number | null => {
    if (token === null) return null;
    const id = hf.token_to_id(token);
    return id === undefined ? null : id;
  };
  for (const key of ["bos_token", "eos_token", "pad_token"]) {
    if (special[key] !== null && idOf(special[key]) === null) {
      throw new TokenizerError(`${source}: the ${key} ${JSON.stringify(special[key])} is not in the vocabulary`);
    }
  }
  // A chat_template.jinja file wins over the config's field, as in transformers.
  let chatTemplate: string | Record<string, string> | null = chatTemplateFile;
  if (chatTemplate === null) {
    try {
      chatTemplate = parseChatTemplateField(
        tokenizerConfig.chat_template,
        source.replace(/tokenizer\.json$/, "tokenizer_config.json"),
      );
    } catch (e) {
      throw e instanceof ChatTemplateError ? new TokenizerError(e.message) : e;
    }
  }
  const specialTokenStrings = Object.fromEntries(
    Object.entries(special).filter((e): e is [string, string] => e[1] !== null),
  );
  return {
    chatTemplate,
    specialTokenStrings,
    vocabSize: maxId + 1,
    bosId: idOf(special.bos_token),
    eosId: idOf(special.eos_token),
    padId: idOf(special.pad_token),
    unkId: idOf(special.unk_token),
    encode(text, options = {}) {
      if (typeof text !== "string") throw new TypeError(`encode() takes a string, got ${typeof text}`);
      return hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
    },
    decode(ids, options = {}) {
      if (ids.length === 0) return "";
      for (const id of ids) {
        if (!Number.isInteger(id) || id < 0 || id > maxId) {
          throw new RangeError(`decode(): token id ${id} is outside the vocabulary [0, ${maxId}]`);
        }
      }
      return hf.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
    },
    idToToken(id) {
      return hf.id_to_token(id) ?? null;
    },
    tokenToId(token) {
      return idOf(token);
    },
  };
}

/**
 * Loads the tokenizer of a Hugging Face model directory: `tokenizer.json` is required (slow-only
 * tokenizers with just `vocab.json`/`merges.txt` or `tokenizer.model` are not supported);
 * `tokenizer_config.json`, `special_tokens_map.json` and `chat_template.jinja` are read when present.
 */
export async function loadTokenizer(
  dir: string,
  files: FileSource = localFiles(),
  options: { hub?: HubOptions } = {},
): Promise<Tokenizer> {
  ({ dir, files } = await resolveModelSource(dir, files, "tokenizer", options.hub));
  const path = joinPath(dir, "tokenizer.json");
  if (!(await files.exists(path))) {
    throw new TokenizerError(
      `${path} not found: exo-tune needs the fast tokenizer file (save it with tokenizer.save_pretrained() in transformers)`,
    );
  }
  const tokenizerJson = (await readJson(files, path, true))!;
  const tokenizerConfig = (await readJson(files, joinPath(dir, "tokenizer_config.json"), false)) ?? {};
  const specialTokensMap = (await readJson(files, joinPath(dir, "special_tokens_map.json"), false)) ?? {};
  const templatePath = joinPath(dir, "chat_template.jinja");
  const chatTemplate = (await files.exists(templatePath)) ? await files.readText(templatePath) : null;
  return createTokenizer(tokenizerJson, tokenizerConfig, specialTokensMap, path, chatTemplate);
}
