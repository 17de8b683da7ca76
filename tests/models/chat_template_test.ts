/**
 * Chat templates against transformers' `apply_chat_template` (goldens made by transformers 5.18 on
 * the fixture tokenizers, see tests/fixtures/chat_golden.py) and against ids composed by hand from
 * the template's rules: each turn token is one special id, nothing is added by the tokenizer, and
 * the message text tokenizes as it does alone (transformers' own ids for "Hello world").
 */

import assert from "node:assert/strict";
import { applyChatTemplate, type ChatMessage, ChatTemplateError, renderChat } from "../../src/models/chat_template.ts";
import { createTokenizer, loadTokenizer, type Tokenizer } from "../../src/models/tokenizer.ts";
import { FIXTURES } from "./_helpers.ts";

interface GoldenCase {
  messages: ChatMessage[];
  add_generation_prompt?: boolean;
  continue_final_message?: boolean;
  text: string;
  ids: number[];
}

async function golden(
  name: string,
): Promise<{ cases: GoldenCase[]; errors: { messages: ChatMessage[]; error: string }[] }> {
  return JSON.parse(await Deno.readTextFile(`${FIXTURES}${name}/chat_golden.json`));
}

for (const name of ["chat-qwen", "chat-gemma"]) {
  Deno.test(`${name}: rendered text and ids equal transformers' apply_chat_template`, async () => {
    const tok = await loadTokenizer(`${FIXTURES}${name}`);
    const g = await golden(name);
    assert.ok(g.cases.length >= 4);
    for (const c of g.cases) {
      const options = {
        addGenerationPrompt: c.add_generation_prompt ?? false,
        continueFinalMessage: c.continue_final_message ?? false,
      };
      assert.equal(renderChat(tok, c.messages, options), c.text, JSON.stringify(c.messages));
      assert.deepEqual(applyChatTemplate(tok, c.messages, options), c.ids, JSON.stringify(c.messages));
    }
    for (const e of g.errors) {
      assert.throws(() => renderChat(tok, e.messages), (err: Error) => {
        assert.ok(err instanceof ChatTemplateError);
        assert.ok(err.message.includes(e.error), err.message);
        return true;
      });
    }
  });
}

// transformers' ids of "Hello world" without special tokens (shared golden.json tokenization cases).
const HELLO_QWEN = [39, 68, 283, 78, 364, 350];
const HELLO_GEMMA = [296, 321, 377, 331, 459, 441];
const QWEN_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

Deno.test("ChatML (Qwen2.5's template) ids composed by hand", async () => {
  const tok = await loadTokenizer(`${FIXTURES}chat-qwen`);
  const start = tok.tokenToId("<|im_start|>")!, end = tok.tokenToId("<|im_end|>")!;
  assert.deepEqual([start, end], [512, 513]);
  const enc = (s: string) => tok.encode(s, { addSpecialTokens: false });
  assert.deepEqual(enc("Hello world"), HELLO_QWEN);
  const nl = enc("\n");
  // <|im_start|>system\n{default system}<|im_end|>\n<|im_start|>user\nHello world<|im_end|>\n<|im_start|>assistant\n
  const want = [
    start,
    ...enc(`system\n${QWEN_SYSTEM}`),
    end,
    ...nl,
    start,
    ...enc("user\n"),
    ...HELLO_QWEN,
    end,
    ...nl,
    start,
    ...enc("assistant\n"),
  ];
  const messages = [{ role: "user", content: "Hello world" }];
  assert.deepEqual(applyChatTemplate(tok, messages, { addGenerationPrompt: true }), want);
  // Without the generation prompt the conversation stops after the user's turn.
  assert.deepEqual(applyChatTemplate(tok, messages), want.slice(0, want.length - 1 - enc("assistant\n").length));
  // The Qwen tokenizer adds no special tokens, and the template starts with the turn token: no BOS anywhere.
  assert.equal(tok.bosId, null);
});

Deno.test("Gemma 3's template ids composed by hand: one <bos>, model role, system folded into the user turn", async () => {
  const tok = await loadTokenizer(`${FIXTURES}chat-gemma`);
  const start = tok.tokenToId("<start_of_turn>")!, end = tok.tokenToId("<end_of_turn>")!;
  assert.equal(tok.bosId, 2);
  const enc = (s: string) => tok.encode(s, { addSpecialTokens: false });
  assert.deepEqual(enc("Hello world"), HELLO_GEMMA);
  const want = [2, start, ...enc("user\n"), ...HELLO_GEMMA, end, ...enc("\n"), start, ...enc("model\n")];
  const ids = applyChatTemplate(tok, [{ role: "user", content: "Hello world" }], { addGenerationPrompt: true });
  assert.deepEqual(ids, want);
  // The tokenizer's own post-processor would add a second <bos>: templated text is encoded without it.
  assert.deepEqual(tok.encode("<bos>Hello world"), [2, 2, ...HELLO_GEMMA]);
  const sys = renderChat(tok, [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hi" },
    { role: "assistant", content: " Hello " },
  ]);
  assert.equal(
    sys,
    "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n",
  );
});

function tinyTokenizer(chatTemplate: unknown, extra: Record<string, unknown> = {}): Tokenizer {
  const vocab: Record<string, number> = { "<s>": 0, "</s>": 1 };
  for (const [i, ch] of [..."abcdefghijklmnopqrstuvwxyz :|\n<>/"].entries()) vocab[ch] = i + 2;
  return createTokenizer(
    {
      version: "1.0",
      added_tokens: [
        { id: 0, content: "<s>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
        { id: 1, content: "</s>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      ],
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      model: { type: "BPE", vocab, merges: [], unk_token: null, fuse_unk: false, byte_fallback: false },
    },
    { bos_token: "<s>", eos_token: "</s>", chat_template: chatTemplate, ...extra },
  );
}

Deno.test("chat template sources: named templates, tool_use, {% generation %} tags, variables", () => {
  const named = tinyTokenizer([
    { name: "default", template: "{% for m in messages %}{{ m.role }}:{{ m.content }}|{% endfor %}" },
    { name: "tool_use", template: "tools {{ tools | length }}" },
  ]);
  const msgs = [{ role: "user", content: "hi" }];
  assert.equal(renderChat(named, msgs), "user:hi|");
  assert.equal(renderChat(named, msgs, { tools: [{}, {}] }), "tools 2");
  assert.equal(renderChat(named, msgs, { templateName: "tool_use", tools: [] }), "tools 0");
  assert.throws(() => renderChat(named, msgs, { templateName: "rag" }), /no chat template named "rag"/);

  // transformers renders the body of {% generation %} unchanged (the tag only marks assistant text).
  const gen = tinyTokenizer(
    "{{ bos_token }}{%- for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{{ eos_token }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}{%- endfor %}{% if add_generation_prompt %}>{% endif %}{% if flag %}!{% endif %}",
  );
  const conv = [{ role: "user", content: "ab" }, { role: "assistant", content: "cd" }];
  assert.equal(renderChat(gen, conv), "<s>abcd</s>");
  assert.equal(renderChat(gen, conv, { addGenerationPrompt: true, variables: { flag: true } }), "<s>abcd</s>>!");
  assert.deepEqual(applyChatTemplate(gen, [{ role: "user", content: "ab" }]), [0, 2, 3]);
});

Deno.test("chat template errors say what to do", () => {
  const none = tinyTokenizer(undefined);
  assert.equal(none.chatTemplate, null);
  assert.throws(() => renderChat(none, [{ role: "user", content: "a" }]), /has no chat template/);
  const t = tinyTokenizer("{% for m in messages %}{{ m.content }}{% endfor %}");
  assert.throws(() => renderChat(t, []), /empty conversation/);
  assert.throws(
    () => renderChat(t, [{ role: "user", content: "a" }], { addGenerationPrompt: true, continueFinalMessage: true }),
    /cannot be combined/,
  );
  assert.throws(() => tinyTokenizer(42), /chat_template must be a string or a list/);
  const broken = tinyTokenizer("{% for m in messages %}");
  assert.throws(() => renderChat(broken, [{ role: "user", content: "a" }]), ChatTemplateError);
});
