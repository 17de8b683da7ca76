/**
 * `tokenize --model M (--text STR | --chat FILE) [--add-generation-prompt] [--no-special] [--json]`:
 * the token ids of a text, or of a conversation through the model's chat template (the ids of
 * transformers' `apply_chat_template`). Only the tokenizer files are read (or fetched, for a Hub id),
 * not the weights.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { validateMessages } from "../data/formats.ts";
import { DataError } from "../data/jsonl.ts";
import { localFiles } from "../io/files.ts";
import { applyChatTemplate, renderChat } from "../models/chat_template.ts";
import { loadTokenizer } from "../models/tokenizer.ts";
import { isInputError } from "./errors.ts";

const USAGE = "Usage: deno task cli tokenize --model M (--text STR | --chat FILE) [options]\n" +
  "  --model M                 model directory, or Hugging Face Hub id (org/name)\n" +
  "  --revision REV            Hub branch, tag or commit (default main)\n" +
  "  --text STR                the text to encode\n" +
  '  --chat FILE               a JSON list of {"role", "content"} messages, through the chat template\n' +
  "  --add-generation-prompt   end the conversation with the assistant's turn header (with --chat)\n" +
  "  --no-special              do not add the tokenizer's special tokens (with --text; e.g. Llama's <s>)\n" +
  "  --json                    print {ids, tokens} (and the templated text with --chat) as JSON";

/** CLI entry: prints the ids; exit 2 on bad input. */
export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        model: { type: "string" },
        revision: { type: "string" },
        text: { type: "string" },
        chat: { type: "string" },
        "add-generation-prompt": { type: "boolean", default: false },
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
  if (values.model === undefined || (values.text === undefined) === (values.chat === undefined)) {
    console.error(`tokenize needs --model and one of --text or --chat\n${USAGE}`);
    return 2;
  }
  let out: { ids: number[]; tokens: (string | null)[]; text?: string };
  try {
    const files = localFiles();
    const tok = await loadTokenizer(values.model, files, { hub: { revision: values.revision } });
    if (values.chat !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(await files.readText(values.chat));
      } catch (e) {
        if (!(e instanceof SyntaxError)) throw e;
        throw new DataError({ file: values.chat, line: null, field: null }, `not valid JSON: ${e.message}`);
      }
      const messages = validateMessages(parsed, values.chat);
      const options = { addGenerationPrompt: values["add-generation-prompt"] };
      const ids = applyChatTemplate(tok, messages, options);
      out = { ids, tokens: ids.map((i) => tok.idToToken(i)), text: renderChat(tok, messages, options) };
    } else {
      const ids = tok.encode(values.text!, { addSpecialTokens: !values["no-special"] });
      out = { ids, tokens: ids.map((i) => tok.idToToken(i)) };
    }
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return isInputError(e) ? 2 : 1;
  }
  console.log(values.json ? JSON.stringify(out) : out.ids.join(" "));
  return 0;
}
