import assert from "node:assert/strict";
import fc from "fast-check";
import { createTokenizer, loadTokenizer } from "../../src/models/tokenizer.ts";
import { memoryFiles } from "../../src/io/files.ts";
import { FIXTURE_MODELS } from "../support/fixture_models.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url).pathname;
const MODELS = FIXTURE_MODELS;

interface Case {
  text: string;
  input_ids: number[];
  input_ids_no_special: number[];
  tokens_no_special: string[];
  decode: string;
  decode_skip_special: string;
  decode_no_special: string;
}

for (const m of MODELS) {
  Deno.test(`tokenizer ${m}: every golden case (ids, tokens, decode) matches transformers`, async () => {
    const golden = JSON.parse(await Deno.readTextFile(`${FIXTURES}${m}/golden.json`));
    const tok = await loadTokenizer(`${FIXTURES}${m}`);
    const sp = golden.tokenization.special_tokens;
    assert.equal(tok.vocabSize, golden.vocab_size);
    assert.equal(tok.bosId, sp.bos_token.id);
    assert.equal(tok.eosId, sp.eos_token.id);
    assert.equal(tok.padId, sp.pad_token.id);
    assert.equal(tok.unkId, sp.unk_token.id);
    const cases = golden.tokenization.cases as Case[];
    assert.equal(cases.length, 12);
    for (const c of cases) {
      const label = JSON.stringify(c.text);
      assert.deepEqual(tok.encode(c.text), c.input_ids, `input_ids of ${label}`);
      assert.deepEqual(tok.encode(c.text, { addSpecialTokens: false }), c.input_ids_no_special, label);
      assert.deepEqual(c.input_ids_no_special.map((i) => tok.idToToken(i)), c.tokens_no_special, label);
      assert.equal(tok.decode(c.input_ids), c.decode, `decode of ${label}`);
      assert.equal(tok.decode(c.input_ids, { skipSpecialTokens: true }), c.decode_skip_special, label);
      assert.equal(tok.decode(c.input_ids_no_special), c.decode_no_special, label);
    }
  });
}

Deno.test("tokenizer: review-gpt2 (special_tokens_map.json + added_tokens_decoder) round-trips text", async () => {
  const tok = await loadTokenizer(new URL("../../models/review-gpt2", import.meta.url).pathname);
  assert.equal(tok.vocabSize, 2048);
  assert.equal(tok.eosId, 0);
  assert.equal(tok.bosId, 0);
  const text = "This movie was surprisingly good, I'd watch it again.";
  const ids = tok.encode(text);
  assert.ok(ids.length > 3 && ids.length < text.length);
  assert.equal(tok.decode(ids), text);
  assert.deepEqual(tok.encode("<|endoftext|>"), [0]);
});

Deno.test("tokenizer: byte-level GPT-2 decode(encode(s)) == s for any string (property)", async () => {
  const tok = await loadTokenizer(`${FIXTURES}tiny-gpt2`);
  // transformers 5 does not clean up " ." / " n't" unless the config asks (the library would).
  assert.equal(tok.decode(tok.encode("wait . , ! it 's")), "wait . , ! it 's");
  fc.assert(
    fc.property(fc.string({ unit: "grapheme", maxLength: 40 }), (s) => {
      if (s.includes("<|endoftext|>")) return;
      const ids = tok.encode(s);
      assert.ok(ids.every((i) => i >= 0 && i < tok.vocabSize));
      assert.equal(tok.decode(ids), s);
    }),
    { numRuns: 200, seed: 7 },
  );
});

Deno.test("tokenizer: special tokens from special_tokens_map.json ({content} objects) override the config", async () => {
  const tj = await Deno.readTextFile(`${FIXTURES}tiny-llama/tokenizer.json`);
  const files = memoryFiles({
    "m/tokenizer.json": tj,
    "m/tokenizer_config.json": JSON.stringify({ bos_token: "<s>", eos_token: "</s>" }),
    "m/special_tokens_map.json": JSON.stringify({ eos_token: { content: "<unk>", lstrip: false }, pad_token: "</s>" }),
  });
  const tok = await loadTokenizer("m", files);
  assert.equal(tok.bosId, 1);
  assert.equal(tok.eosId, 0);
  assert.equal(tok.padId, 2);
  assert.equal(tok.decode([]), "");
  assert.throws(() => tok.decode([512]), /outside the vocabulary/);
});

Deno.test("tokenizer: clear errors for a missing or broken tokenizer.json", async () => {
  await assert.rejects(loadTokenizer("m", memoryFiles({})), /m\/tokenizer\.json not found/);
  await assert.rejects(loadTokenizer("m", memoryFiles({ "m/tokenizer.json": "{" })), /not valid JSON/);
  await assert.rejects(loadTokenizer("m", memoryFiles({ "m/tokenizer.json": "{}" })), /no "model" section/);
  const tj = JSON.parse(await Deno.readTextFile(`${FIXTURES}tiny-llama/tokenizer.json`));
  assert.throws(() => createTokenizer(tj, { eos_token: "<nope>" }), /eos_token "<nope>" is not in the vocabulary/);
});
