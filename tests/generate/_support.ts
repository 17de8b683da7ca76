/** Shared helpers of the generation tests: fixtures, golden logits, reference decoding. */

import assert from "node:assert/strict";
import type { Generator } from "../../src/generate/generator.ts";
import { argmax } from "../../src/generate/sampling.ts";
import type { KvDecoder } from "../../src/generate/decoder.ts";

export const FIXTURES = new URL("../fixtures/", import.meta.url).pathname;
export const MODELS = ["tiny-gpt2", "tiny-llama", "tiny-llama-v4"] as const;

/**
 * Decoder logits (prefill and cached steps) against transformers' float32 logits (|logit| up to 11):
 * 10x the worst measured, 5.9e-6 on wasm and 7.6e-6 on WebGPU.
 */
export const DECODER_LOGIT_TOL = { wasm: 6e-5, webgpu: 8e-5 } as const;

/** golden.json `logits`: input ids [2, L], stored positions and float32 values [2, positions, V]. */
export interface GoldenLogits {
  input_ids: number[][];
  positions: number[];
  values: number[][][];
}

export async function goldenLogits(model: string): Promise<GoldenLogits> {
  const g = JSON.parse(await Deno.readTextFile(`${FIXTURES}${model}/golden.json`));
  return g.logits as GoldenLogits;
}

/** Max |a - golden| over one row of logits. */
export function maxDiff(a: Float32Array, offset: number, want: number[]): number {
  let m = 0;
  for (let v = 0; v < want.length; v++) m = Math.max(m, Math.abs(a[offset + v] - want[v]));
  return m;
}

/**
 * Checks the decoder against the golden logits two ways: the prefill of both whole sequences (its
 * last position), and teacher forcing through the cache (prefill one token, then one step per
 * token), which gives every stored position.
 */
export async function checkGolden(decoder: KvDecoder, gold: GoldenLogits, tol: number): Promise<number> {
  const ids = gold.input_ids;
  const L = ids[0].length;
  const V = gold.values[0][0].length;
  const stored = new Map(gold.positions.map((p, i) => [p, i]));
  assert.ok(stored.has(L - 1), "golden must store the last position");
  const full = await decoder.prefill(ids, [0, 1], "logits");
  let worst = 0;
  for (let b = 0; b < 2; b++) {
    const d = maxDiff(full.logits!, b * V, gold.values[b][stored.get(L - 1)!]);
    assert.ok(d < tol, `prefill, sequence ${b}, last position: max |diff| ${d}`);
    worst = Math.max(worst, d);
  }
  let checked = 0;
  let out = await decoder.prefill(ids.map((s) => s.slice(0, 1)), [0, 1], "logits");
  for (let p = 0; p < L; p++) {
    if (p > 0) out = await decoder.step(ids.map((s) => s[p]), "logits");
    const at = stored.get(p);
    if (at === undefined) continue;
    for (let b = 0; b < 2; b++) {
      const d = maxDiff(out.logits!, b * V, gold.values[b][at]);
      assert.ok(d < tol, `cached decode, sequence ${b}, position ${p}: max |diff| ${d}`);
      worst = Math.max(worst, d);
      checked++;
    }
  }
  assert.equal(checked, 2 * gold.positions.length, "every stored position was compared");
  return worst;
}

/** Greedy decoding by full recomputation: the whole sequence through the prefill graph each step. */
export async function greedyByRecompute(gen: Generator, prompt: number[], steps: number): Promise<number[]> {
  const seq = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    const logits = await gen.lastLogits([seq]);
    const id = argmax(logits);
    out.push(id);
    seq.push(id);
  }
  return out;
}
