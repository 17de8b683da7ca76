/**
 * `tokenize --model M (--text STR | --chat FILE) [--add-generation-prompt] [--no-special] [--json]`:
 * the token ids of a text, or of a conversation through the model's chat template (the ids of
 * transformers' `apply_chat_template`). Only the tokenizer files are read (or fetched, for a Hub id),
 * not the weights.
 *
 * @module
 */

import { validateMessages } from "../data/formats.ts";
import { DataError } from "../data/jsonl.ts";
import { localFiles } from "../io/files.ts";
import { applyChatTemplate, renderChat } from "../models/chat_template.ts";
import { loadTokenizer } from "../models/tokenizer.ts";
import { modelOption, revisionOption } from "../options/common.ts";
import { flag, text } from "../options/table.ts";
import { isInputError } from "./errors.ts";
import { flagMessage, helpText, readFlags, UsageError } from "./flags.ts";

/** The command's flags. */
const FLAGS = {
  model: modelOption(),
  revision: revisionOption(),
  text: text({ default: null, help: "the text to encode" }),
  chat: text({
    default: null,
    metavar: "FILE",
    help: 'a JSON list of {"role", "content"} messages, through the chat template',
  }),
  addGenerationPrompt: flag({ help: "end the conversation with the assistant's turn header (with --chat)" }),
  noSpecial: flag({ help: "do not add the tokenizer's special tokens (with --text; e.g. Llama's <s>)" }),
  json: flag({ help: "print {ids, tokens} (and the templated text with --chat) as JSON" }),
  help: flag({ help: "show this help" }),
} as const;

const USAGE = helpText("Usage: deno task cli tokenize --model M (--text STR | --chat FILE) [options]", FLAGS);

/** CLI entry: prints the ids; exit 2 on bad input. */
export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    values = readFlags(FLAGS, argv);
    if (values !== "help" && (values.text === null) === (values.chat === null)) {
      throw new UsageError("text", (n) => `tokenize needs exactly one of ${n("text")} STR or ${n("chat")} FILE`);
    }
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
  let out: { ids: number[]; tokens: (string | null)[]; text?: string };
  try {
    const files = localFiles();
    const tok = await loadTokenizer(values.model, files, { hub: { revision: values.revision } });
    if (values.chat !== null) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(await files.readText(values.chat));
      } catch (e) {
        if (!(e instanceof SyntaxError)) throw e;
        throw new DataError({ file: values.chat, line: null, field: null }, `not valid JSON: ${e.message}`);
      }
      const messages = validateMessages(parsed, values.chat);
      const options = { addGenerationPrompt: values.addGenerationPrompt };
      const ids = applyChatTemplate(tok, messages, options);
      out = { ids, tokens: ids.map((i) => tok.idToToken(i)), text: renderChat(tok, messages, options) };
    } else {
      const ids = tok.encode(values.text!, { addSpecialTokens: !values.noSpecial });
      out = { ids, tokens: ids.map((i) => tok.idToToken(i)) };
    }
  } catch (e) {
    console.error(`error: ${flagMessage(e, FLAGS)}`);
    return isInputError(e) ? 2 : 1;
  }
  console.log(values.json ? JSON.stringify(out) : out.ids.join(" "));
  return 0;
}
