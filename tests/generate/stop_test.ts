import assert from "node:assert/strict";
import { firstStop, heldSuffix, TextStream } from "../../src/generate/stop.ts";
import { loadTokenizer } from "../../src/models/tokenizer.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url).pathname;

/** A byte-level tokenizer: each id is a byte string, decoded like byte-level BPE (invalid UTF-8 → U+FFFD). */
function byteTokenizer(pieces: (string | number[])[]) {
  const bytes = pieces.map((p) => (typeof p === "string" ? new TextEncoder().encode(p) : Uint8Array.from(p)));
  return {
    decode(ids: readonly number[]) {
      const all = ids.flatMap((i) => [...bytes[i]]);
      return new TextDecoder().decode(Uint8Array.from(all));
    },
  };
}

function pushAll(s: TextStream, ids: number[]): { deltas: string[]; stoppedAt: number } {
  const deltas: string[] = [];
  for (const [i, id] of ids.entries()) {
    const d = s.push(id);
    deltas.push(d.text);
    if (d.stopped) return { deltas, stoppedAt: i };
  }
  deltas.push(s.finish());
  return { deltas, stoppedAt: -1 };
}

Deno.test("a UTF-8 character split across tokens is held back until complete", () => {
  // "é" = C3 A9, "😀" = F0 9F 98 80, each byte its own token.
  const tok = byteTokenizer(["caf", [0xc3], [0xa9], " ", [0xf0], [0x9f], [0x98], [0x80], "!"]);
  const s = new TextStream(tok);
  const { deltas } = pushAll(s, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(deltas, ["caf", "", "é", " ", "", "", "", "😀", "!", ""]);
  assert.equal(s.text, "café 😀!");
});

Deno.test("bytes that never complete a character are handed out at the end, as decode() gives them", () => {
  const tok = byteTokenizer(["a", [0xe2], [0x82]]);
  const s = new TextStream(tok);
  const { deltas } = pushAll(s, [0, 1, 2]);
  assert.equal(deltas.join(""), tok.decode([0, 1, 2]));
  assert.equal(s.text, tok.decode([0, 1, 2]));
  assert.equal(deltas[1], "", "the lone lead byte must wait");
});

Deno.test("stop strings: cut before the first occurrence, across tokens, nothing handed out and taken back", () => {
  const tok = byteTokenizer(["Hel", "lo", "\n", "World", "ST", "OP", "x", "\n\nmore"]);
  let s = new TextStream(tok, ["\n\n"]);
  let r = pushAll(s, [0, 1, 2, 3]);
  // "\n" waits (it may start "\n\n"), then goes out with "World".
  assert.deepEqual(r.deltas, ["Hel", "lo", "", "\nWorld", ""]);
  assert.equal(r.stoppedAt, -1);

  s = new TextStream(tok, ["\n\n"]);
  r = pushAll(s, [0, 1, 2, 2, 3]);
  assert.equal(r.stoppedAt, 3);
  assert.equal(s.text, "Hello");
  assert.equal(r.deltas.join(""), "Hello");
  assert.equal(s.stopString, "\n\n");

  s = new TextStream(tok, ["STOP", "xyz"]);
  r = pushAll(s, [6, 4, 5, 6]);
  assert.equal(r.stoppedAt, 2);
  // "x" may start "xyz" and waits; "ST" may start "STOP" and waits; "OP" completes the stop.
  assert.deepEqual(r.deltas, ["", "x", ""]);
  assert.equal(s.text, "x");

  // The stop string inside one token: the text before it in that token still comes out.
  s = new TextStream(tok, ["\n\n"]);
  r = pushAll(s, [3, 7]);
  assert.deepEqual(r.deltas, ["World", ""]);
  assert.equal(s.text, "World");

  // Held text is released by finish().
  s = new TextStream(tok, ["\n\n"]);
  r = pushAll(s, [0, 2]);
  assert.deepEqual(r.deltas, ["Hel", "", "\n"]);
  assert.equal(s.text, "Hel\n");
  assert.throws(() => new TextStream(tok, [""]), RangeError);
});

Deno.test("firstStop and heldSuffix", () => {
  assert.deepEqual(firstStop("abcSTOPdefEND", ["END", "STOP"]), { at: 3, stop: "STOP" });
  assert.equal(firstStop("abc", ["x"]), null);
  assert.deepEqual(firstStop("a\n\nb", ["\n", "\n\n"]), { at: 1, stop: "\n\n" });
  assert.equal(heldSuffix("abcST", ["STOP"]), 2);
  assert.equal(heldSuffix("abcSTOP", ["STOP"]), 0); // a full stop string is found, not held
  assert.equal(heldSuffix("ab\n", ["\n\n", "b\n\nc"]), 2);
});

Deno.test("real tokenizers: deltas concatenate to decode(), no replacement character from a split", async () => {
  const text = "naïve café — 😀 costs €5 ✓";
  for (const m of ["tiny-gpt2", "tiny-llama"]) {
    const tok = await loadTokenizer(FIXTURES + m);
    const ids = tok.encode(text, { addSpecialTokens: false });
    assert.ok(ids.length > 10, "the text must span many tokens");
    const s = new TextStream(tok);
    const { deltas } = pushAll(s, ids);
    const full = tok.decode(ids, { skipSpecialTokens: true });
    assert.equal(deltas.join(""), full, m);
    assert.equal(s.text, full);
    for (const d of deltas) assert.ok(!d.includes("\uFFFD"), `${m}: delta ${JSON.stringify(d)} has U+FFFD`);
    // At least one multi-byte character really was split across tokens (so holding back was exercised).
    assert.ok(deltas.some((d) => d === ""), `${m}: no token was held back`);
  }
});
