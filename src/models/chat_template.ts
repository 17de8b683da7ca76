/**
 * Chat templates: a conversation (a list of `{role, content}` messages) rendered to text by the
 * model's Jinja template and tokenized, as transformers' `apply_chat_template` does (5.x):
 *
 *   text = template.render(messages, add_generation_prompt, bos_token, eos_token, ..., **kwargs)
 *   ids  = tokenizer(text, add_special_tokens=False)
 *
 * The template comes from `chat_template.jinja` (what transformers writes today), else from
 * `tokenizer_config.json`'s `chat_template` (a string, or a list of `{name, template}` of which
 * `default` is used). It is rendered by `@huggingface/jinja`, the engine transformers.js uses; it
 * trims and left-strips blocks as transformers' Jinja environment does. Special tokens are never
 * added by the tokenizer here: templates write them (Gemma's `{{ bos_token }}`), so adding them
 * again would double the BOS.
 *
 * `continueFinalMessage` follows transformers: the final message is rendered with a tag after its
 * content and the text is cut at the tag, so the model continues that message instead of starting
 * a new turn.
 *
 * @module
 */

import { Template } from "@huggingface/jinja";

/** One part of a multimodal message's content (`{"type": "text", "text": ...}`). */
export interface ContentPart {
  type: string;
  [key: string]: unknown;
}

/** One chat message. Extra fields (`tool_calls`, `name`, ...) reach the template unchanged. */
export interface ChatMessage {
  role: string;
  content: string | ContentPart[] | null;
  [key: string]: unknown;
}

/** Options of {@link renderChat} and {@link applyChatTemplate}. */
export interface ChatTemplateOptions {
  /** Append the header that starts the assistant's turn (`<|im_start|>assistant\n`). Default false. */
  addGenerationPrompt?: boolean;
  /** End the text inside the final message, so generation continues it. Default false. */
  continueFinalMessage?: boolean;
  /** Tool schemas, passed to the template as `tools`. */
  tools?: unknown[];
  /** Named template to use when the tokenizer has several (default: `default`, or `tool_use` with tools). */
  templateName?: string;
  /** Extra template variables (e.g. `enable_thinking`), as transformers' `**kwargs`. */
  variables?: Record<string, unknown>;
}

/** What a tokenizer must offer to apply a chat template. `src/models/tokenizer.ts`'s `Tokenizer` does. */
export interface ChatTokenizer {
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  /** Template source(s): one string, or templates by name. Null when the tokenizer has none. */
  readonly chatTemplate?: string | Readonly<Record<string, string>> | null;
  /** Special-token strings by name (`bos_token`, `eos_token`, ...), as templates see them. */
  readonly specialTokenStrings?: Readonly<Record<string, string>>;
}

/** A conversation or template the chat template cannot render. */
export class ChatTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ChatTemplateError";
  }
}

/**
 * The template sources of a tokenizer config's `chat_template` field (a string, or a list of
 * `{name, template}`), or null when absent. Throws on any other shape, naming `source`.
 */
export function parseChatTemplateField(value: unknown, source: string): string | Record<string, string> | null {
  if (value === undefined || value === null) return null;
  if (typeof value === "string") return value;
  if (Array.isArray(value)) {
    const named: Record<string, string> = {};
    for (const [i, t] of value.entries()) {
      const o = t as { name?: unknown; template?: unknown };
      if (!o || typeof o.name !== "string" || typeof o.template !== "string") {
        throw new ChatTemplateError(`${source}: chat_template[${i}] must be {"name": string, "template": string}`);
      }
      named[o.name] = o.template;
    }
    return named;
  }
  throw new ChatTemplateError(`${source}: chat_template must be a string or a list of {name, template}`);
}

/** Picks the template to render, as transformers' `get_chat_template`. */
function pickTemplate(tok: ChatTokenizer, options: ChatTemplateOptions): string {
  const t = tok.chatTemplate;
  if (t === undefined || t === null) {
    throw new ChatTemplateError(
      "this tokenizer has no chat template (no chat_template.jinja, no chat_template in tokenizer_config.json): use a model made for chat, or pass plain text",
    );
  }
  if (typeof t === "string") {
    if (options.templateName !== undefined && options.templateName !== "default") {
      throw new ChatTemplateError(`the tokenizer has a single chat template, not one named "${options.templateName}"`);
    }
    return t;
  }
  const name = options.templateName ?? (options.tools && "tool_use" in t ? "tool_use" : "default");
  const chosen = t[name];
  if (chosen === undefined) {
    throw new ChatTemplateError(
      `the tokenizer has no chat template named "${name}" (it has ${Object.keys(t).join(", ")})`,
    );
  }
  return chosen;
}

/**
 * `{% generation %}...{% endgeneration %}` marks assistant text for transformers' assistant-token
 * mask; it renders its body unchanged. @huggingface/jinja does not know the tag, so it becomes an
 * always-true `if` with the same whitespace control.
 */
function withoutGenerationTags(src: string): string {
  return src
    .replace(/\{%(-?)\s*generation\s*(-?)%\}/g, "{%$1 if true $2%}")
    .replace(/\{%(-?)\s*endgeneration\s*(-?)%\}/g, "{%$1 endif $2%}");
}

const compiled = new Map<string, Template>();

function compile(src: string): Template {
  let t = compiled.get(src);
  if (!t) {
    try {
      t = new Template(withoutGenerationTags(src));
    } catch (e) {
      throw new ChatTemplateError(`cannot parse the chat template: ${(e as Error).message}`);
    }
    compiled.set(src, t);
  }
  return t;
}

/** transformers appends this to the final message and cuts the rendered text there. */
const CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG ";

/** Renders a conversation to the text the model sees (`apply_chat_template(..., tokenize=False)`). */
export function renderChat(
  tok: ChatTokenizer,
  messages: readonly ChatMessage[],
  options: ChatTemplateOptions = {},
): string {
  if (messages.length === 0) {
    throw new ChatTemplateError("cannot apply the chat template to an empty conversation: give at least one message");
  }
  if (options.continueFinalMessage && options.addGenerationPrompt) {
    throw new ChatTemplateError(
      "continueFinalMessage and addGenerationPrompt cannot be combined: continue the final message, or start a new assistant turn",
    );
  }
  const template = compile(pickTemplate(tok, options));
  let chat: ChatMessage[] = messages as ChatMessage[];
  let finalText: string | null = null;
  if (options.continueFinalMessage) {
    chat = structuredClone(messages) as ChatMessage[];
    const last = chat[chat.length - 1];
    if (typeof last.content === "string") {
      finalText = last.content;
      last.content = last.content + CONTINUE_TAG;
    } else if (Array.isArray(last.content)) {
      const part = [...last.content].reverse().find((p) => typeof p.text === "string");
      if (!part) throw new ChatTemplateError("continueFinalMessage: the final message has no text to continue");
      finalText = part.text as string;
      part.text = finalText + CONTINUE_TAG;
    } else throw new ChatTemplateError("continueFinalMessage: the final message has no content to continue");
  }
  let text: string;
  try {
    text = template.render({
      ...(tok.specialTokenStrings ?? {}),
      ...(options.variables ?? {}),
      messages: chat,
      tools: options.tools ?? null,
      documents: null,
      add_generation_prompt: options.addGenerationPrompt ?? false,
    });
  } catch (e) {
    throw new ChatTemplateError(`the chat template refused the conversation: ${(e as Error).message}`);
  }
  if (finalText !== null) {
    const at = text.lastIndexOf(CONTINUE_TAG.trim());
    if (!text.includes(finalText.trim()) || at < 0) {
      throw new ChatTemplateError(
        "continueFinalMessage: the final message does not appear in the rendered chat (the template drops part of it)",
      );
    }
    // The template may trim the message; then the space after the tag is gone too.
    text = text.slice(at, at + CONTINUE_TAG.length) === CONTINUE_TAG ? text.slice(0, at) : text.slice(0, at).trimEnd();
  }
  return text;
}

/**
 * Token ids of a templated conversation, equal to transformers'
 * `tokenizer.apply_chat_template(messages, add_generation_prompt=...)`.
 */
export function applyChatTemplate(
  tok: ChatTokenizer,
  messages: readonly ChatMessage[],
  options: ChatTemplateOptions = {},
): number[] {
  return tok.encode(renderChat(tok, messages, options), { addSpecialTokens: false });
}
