/**
 * Incremental detokenization of one generated sequence, with stop strings.
 *
 * Each new token re-decodes the sequence and hands out only the new text. Two kinds of text are
 * held back until the next token decides them:
 * - a trailing U+FFFD: a multi-byte UTF-8 character split across tokens decodes to the replacement
 *   character until its last byte arrives;
 * - a suffix that could start a stop string (`"\n"` of a `"\n\n"` stop), so text is never handed
 *   out and then taken back.
 * A stop string ends the sequence; the text is cut just before its first occurrence. The deltas
 * concatenate to exactly {@link TextStream.text}.
 *
 * @module
 */

import type { Tokenizer } from "../models/tokenizer.ts";

/** What one pushed token produced. */
export interface TextDelta {
  /** New text (may be empty while text is held back). */
  text: string;
  /** True when a stop string occurred: the sequence is over. */
  stopped: boolean;
}

/** Decodes one sequence token by token. */
export class TextStream {
  readonly #tokenizer: Pick<Tokenizer, "decode">;
  readonly #stops: readonly string[];
  readonly #ids: number[] = [];
  #emitted = "";
  #final: string | null = null;
  #stopString: string | null = null;

  /**
   * @param tokenizer decodes with `skipSpecialTokens: true`
   * @param stopStrings non-empty strings that end the sequence
   */
  constructor(tokenizer: Pick<Tokenizer, "decode">, stopStrings: readonly string[] = []) {
    for (const s of stopStrings) {
      if (typeof s !== "string" || s === "") throw new RangeError("Stop strings must be non-empty strings");
    }
    this.#tokenizer = tokenizer;
    this.#stops = stopStrings;
  }

  /** The text handed out so far, or the final text once finished. */
  get text(): string {
    return this.#final ?? this.#emitted;
  }

  /** The stop string that ended the sequence, if one did. */
  get stopString(): string | null {
    return this.#stopString;
  }

  /** True once a stop string was seen or {@link finish} was called. */
  get done(): boolean {
    return this.#final !== null;
  }

  /** Adds a token; returns the text it makes final. */
  push(id: number): TextDelta {
    if (this.#final !== null) throw new Error("push() after the sequence finished");
    this.#ids.push(id);
    const full = this.#tokenizer.decode(this.#ids, { skipSpecialTokens: true });
    const hit = firstStop(full, this.#stops);
    if (hit) {
      this.#stopString = hit.stop;
      return { text: this.#close(full.slice(0, hit.at)), stopped: true };
    }
    let stable = full;
    while (stable.endsWith("\uFFFD")) stable = stable.slice(0, -1);
    stable = stable.slice(0, stable.length - heldSuffix(stable, this.#stops));
    // A decoder that rewrites earlier text (rare) waits until the text extends what was handed out.
    if (stable.length <= this.#emitted.length || !stable.startsWith(this.#emitted)) return { text: "", stopped: false };
    const delta = stable.slice(this.#emitted.length);
    this.#emitted = stable;
    return { text: delta, stopped: false };
  }

  /** Ends the sequence (EOS or length): hands out whatever was held back. */
  finish(): string {
    if (this.#final !== null) return "";
    const full = this.#ids.length ? this.#tokenizer.decode(this.#ids, { skipSpecialTokens: true }) : "";
    return this.#close(full);
  }

  #close(finalText: string): string {
    const delta = finalText.startsWith(this.#emitted) ? finalText.slice(this.#emitted.length) : "";
    // If the decoder rewrote handed-out text the stream cannot take it back; `text` stays what was sent.
    this.#final = finalText.startsWith(this.#emitted) ? finalText : this.#emitted;
    return delta;
  }
}

/** The earliest occurrence of any stop string (the longest one on a tie). */
export function firstStop(text: string, stops: readonly string[]): { at: number; stop: string } | null {
  let best: { at: number; stop: string } | null = null;
  for (const s of stops) {
    const at = text.indexOf(s);
    if (at < 0) continue;
    if (!best || at < best.at || (at === best.at && s.length > best.stop.length)) best = { at, stop: s };
  }
  return best;
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
export function heldSuffix(text: string, stops: readonly string[]): number {
  let held = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > held; n--) {
      if (text.endsWith(s.slice(0, n))) {
        held = n;
        break;
      }
    }
  }
  return held;
}
