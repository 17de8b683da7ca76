/**
 * `tokenize --model DIR --text STR [--no-special] [--json]`: the token ids of a text under a model
 * directory's tokenizer (only `tokenizer.json` and its configs are read, not the weights).
 *
 * @module
 */

import { loadTokenizer, TokenizerError } from "../models/tokenizer.ts";
import { flag, text } from "../options/table.ts";
import { flagMessage, helpText, readFlags, UsageError } from "./flags.ts";

/** The command's flags. */
const FLAGS = {
  model: text({ required: true, metavar: "DIR", help: "Hugging Face model directory (needs tokenizer.json)" }),
  text: text({ required: true, help: "the text to encode" }),
  noSpecial: flag({ help: "do not add the tokenizer's special tokens (e.g. Llama's leading <s>)" }),
  json: flag({ help: "print {ids, tokens} as JSON instead of space-separated ids" }),
  help: flag({ help: "show this help" }),
} as const;

const USAGE = helpText("Usage: deno task cli tokenize --model DIR --text STR [--no-special] [--json]", FLAGS);

/** CLI entry: prints the ids; exit 2 on bad input. */
export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    values = readFlags(FLAGS, argv);
  } catch (e) {
    console.error(
      `${flagMessage(e, FLAGS)}${e instanceof UsageError || !(e instanceof RangeError) ? `\n${USAGE}` : ""}`,
    );
    return 2;
  }
  if (values === "help") {
    console.log(USAGE);
    return 0;
  }
  let ids: number[];
  let tokens: (string | null)[];
  try {
    const tok = await loadTokenizer(values.model);
    ids = tok.encode(values.text, { addSpecialTokens: !values.noSpecial });
    tokens = ids.map((i) => tok.idToToken(i));
  } catch (e) {
    console.error((e as Error).message);
    return e instanceof TokenizerError || /^File not found/.test((e as Error).message) ? 2 : 1;
  }
  console.log(values.json ? JSON.stringify({ ids, tokens }) : ids.join(" "));
  return 0;
}
