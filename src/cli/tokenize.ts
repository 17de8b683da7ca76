/**
 * `tokenize --model DIR --text STR [--no-special] [--json]`: the token ids of a text under a model
 * directory's tokenizer (only `tokenizer.json` and its configs are read, not the weights).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadTokenizer, TokenizerError } from "../models/tokenizer.ts";

const USAGE = "Usage: deno task cli tokenize --model DIR --text STR [--no-special] [--json]\n" +
  "  --model DIR     Hugging Face model directory (needs tokenizer.json)\n" +
  "  --text STR      the text to encode\n" +
  "  --no-special    do not add the tokenizer's special tokens (e.g. Llama's leading <s>)\n" +
  "  --json          print {ids, tokens} as JSON instead of space-separated ids";

/** CLI entry: prints the ids; exit 2 on bad input. */
export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        model: { type: "string" },
        text: { type: "string" },
        "no-special": { type: "boolean", default: false },
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
  if (values.model === undefined || values.text === undefined) {
    console.error(`tokenize needs --model and --text\n${USAGE}`);
    return 2;
  }
  let ids: number[];
  let tokens: (string | null)[];
  try {
    const tok = await loadTokenizer(values.model);
    ids = tok.encode(values.text, { addSpecialTokens: !values["no-special"] });
    tokens = ids.map((i) => tok.idToToken(i));
  } catch (e) {
    console.error((e as Error).message);
    return e instanceof TokenizerError || /^File not found/.test((e as Error).message) ? 2 : 1;
  }
  console.log(values.json ? JSON.stringify({ ids, tokens }) : ids.join(" "));
  return 0;
}
