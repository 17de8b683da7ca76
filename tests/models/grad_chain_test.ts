/**
 * One step of the whole chain, forward → log-probs → loss → backward, against PyTorch: the
 * gradients of the four losses with respect to every LoRA tensor of the fixture adapter, on
 * tests/fixtures/pairs.jsonl and rewards.jsonl, must match golden.json `losses.float64.<loss>.grad`.
 *
 * Two ways to the log-probs: the plain one (full logits, then log-softmax, every activation kept
 * for the backward pass by the op rules) and the memory-saving one the trainer uses (the fused
 * head with its custom gradient, here in many small vocabulary chunks, and every layer recomputed
 * in the backward pass). Both must give the golden gradients.
 *
 * Tolerances (our float32 graph against PyTorch's float64): a gradient tensor within 2e-5 of its
 * largest |entry| (measured 1.1e-6 to 2.0e-6 on wasm and WebGPU), a loss within 7e-6 absolute
 * (measured at most 7.2e-7): 10x the worst measured.
 */
import assert from "node:assert/strict";
import { localFiles } from "../../src/io/files.ts";
import { Graph, type Value } from "../../src/onnx/graph.ts";
import * as op from "../../src/onnx/ops.ts";
import { serializeModel } from "../../src/onnx/serialize.ts";
import { backward } from "../../src/autodiff/mod.ts";
import { emitDpoPref, emitDpoRw, emitExoPref, emitExoRw } from "../../src/losses/mod.ts";
import { readAdapter } from "../../src/lora/adapter.ts";
import { buildForward, buildHidden } from "../../src/models/forward.ts";
import { buildHeadSequenceLogprobs } from "../../src/models/head_logprobs.ts";
import { buildSequenceLogprobs, packSequences, type ScoreSequence } from "../../src/models/score.ts";
import { engineFor, fixtureModel, FIXTURES, type Golden, golden } from "./_helpers.ts";

async function jsonl(name: string) {
  const text = await Deno.readTextFile(`${FIXTURES}${name}`);
  return text.trim().split("\n").map((l) => JSON.parse(l));
}

/** Nested golden values → flat array. */
function flat(x: unknown): number[] {
  return Array.isArray(x) ? x.flatMap(flat) : [x as number];
}

/** Gradient error relative to the tensor's max |grad|: 10x the worst measured (2.0e-6). */
const GRAD_TOL = 2e-5;
/** Loss error, absolute (the losses are 0.7 to 2.9): 10x the worst measured (7.2e-7). */
const LOSS_TOL = 7e-6;

function checkGrads(loss: string, got: Map<string, Float32Array>, gold: Golden): number {
  const want = gold.losses.float64[loss].grad as Record<string, { shape: number[]; values: unknown }>;
  assert.deepEqual([...got.keys()].sort(), Object.keys(want).sort());
  let worst = 0;
  for (const [key, g] of got) {
    const w = flat(want[key].values);
    assert.equal(g.length, w.length, key);
    const scale = Math.max(...w.map(Math.abs));
    assert.ok(scale > 0, `${loss} ${key}: golden gradient is all zeros`);
    let err = 0;
    for (let i = 0; i < w.length; i++) err = Math.max(err, Math.abs(g[i] - w[i]));
    assert.ok(err <= GRAD_TOL * scale, `${loss} ${key}: max |grad diff| ${err} vs max |grad| ${scale}`);
    worst = Math.max(worst, err / scale);
  }
  return worst;
}

const CASES = [
  { m: "tiny-gpt2", backend: "wasm", kinds: ["pairs", "groups"], path: "logits" },
  { m: "tiny-llama", backend: "wasm", kinds: ["pairs", "groups"], path: "logits" },
  { m: "tiny-llama", backend: "webgpu", kinds: ["pairs"], path: "logits" },
  { m: "tiny-gpt2", backend: "wasm", kinds: ["pairs", "groups"], path: "fused head + recompute" },
  { m: "tiny-llama", backend: "wasm", kinds: ["pairs", "groups"], path: "fused head + recompute" },
  { m: "tiny-llama", backend: "webgpu", kinds: ["pairs"], path: "fused head + recompute" },
] as const;

/** Vocabulary chunk of the fused path: small, so the fixtures' vocabularies span many chunks. */
const SMALL_CHUNK = 97;

for (const { m, backend, kinds, path } of CASES) {
  Deno.test(`grad chain ${m} (${backend}, ${path}): d(${kinds.join(", ")} losses)/d(LoRA) match PyTorch (float64) within 2e-5 of max|grad|`, async () => {
    const model = await fixtureModel(m);
    const gold = await golden(m);
    const adapter = await readAdapter(`${FIXTURES}${m}/adapter`, localFiles(), model.config);
    const engine = await engineFor(backend);
    const pairs = await jsonl("pairs.jsonl");
    const groups = await jsonl("rewards.jsonl");
    const K = groups[0].completions_ids.length;

    for (const kind of kinds) {
      const seqs: ScoreSequence[] = kind === "pairs"
        ? [
          ...pairs.map((p) => ({ promptIds: p.prompt_ids, completionIds: p.chosen_ids })),
          ...pairs.map((p) => ({ promptIds: p.prompt_ids, completionIds: p.rejected_ids })),
        ]
        : groups.flatMap((q) =>
          q.completions_ids.map((c: number[]) => ({ promptIds: q.prompt_ids, completionIds: c }))
        );
      const g = new Graph(`grad_${kind}`);
      // A static batch: the losses slice u into chosen/rejected halves (or reshape it into groups).
      const N = seqs.length;
      const ids = g.input("input_ids", "int64", [N, "seq"]);
      const attn = g.input("attention_mask", "int64", [N, "seq"]);
      const targets = g.input("targets", "int64", [N, "seq"]);
      const mask = g.input("completion_mask", "float32", [N, "seq"]);
      const params = new Map<string, Value>();
      for (const [key, t] of adapter.tensors) params.set(key, g.input(key, "float32", t.shape));
      const logp = (lora: boolean) => {
        const attach = lora ? { config: adapter.config, params } : undefined;
        if (path !== "logits") {
          const h = buildHidden(g, model, { inputIds: ids, attentionMask: attn }, attach, { recompute: true });
          assert.ok(model.config.vocabSize > 4 * SMALL_CHUNK, "the vocabulary spans several chunks");
          return buildHeadSequenceLogprobs(h.builder, h.hidden, h.head, targets, mask, 1, SMALL_CHUNK);
        }
        const { logits } = buildForward(
          g,
          model,
          { inputIds: ids, attentionMask: attn },
          lora ? { config: adapter.config, params } : undefined,
        );
        return buildSequenceLogprobs(g, logits, targets, mask);
      };
      const u = op.sub(logp(true), logp(false)); // [N]
      const losses: Record<string, Value> = {};
      if (kind === "pairs") {
        const n = pairs.length;
        const uw = op.slice(u, [0], [n], [0]), ul = op.slice(u, [n], [2 * n], [0]);
        losses.exo_pref = emitExoPref(uw, ul).loss;
        losses.dpo_pref = emitDpoPref(uw, ul).loss;
      } else {
        const rewards = g.input("rewards", "float32", [groups.length, K]);
        const u2 = op.reshape(u, [groups.length, K]);
        losses.exo_rw = emitExoRw(u2, rewards).loss;
        losses.dpo_rw = emitDpoRw(u2, rewards).loss;
      }
      const keys = [...params.keys()];
      for (const [name, loss] of Object.entries(losses)) {
        g.output(loss, `loss_${name}`);
        backward(loss, [...params.values()]).forEach((d, i) => g.output(d, `grad_${name}_${i}`));
      }
      const s = await engine.createSession(serializeModel(g));
      const b = packSequences(seqs, { padId: 0 });
      const feeds: Record<string, ReturnType<typeof engine.tensor>> = {
        input_ids: engine.tensor(b.ids, [b.rows, b.length]),
        attention_mask: engine.tensor(b.attentionMask, [b.rows, b.length]),
        targets: engine.tensor(b.targets, [b.rows, b.length]),
        completion_mask: engine.tensor(b.completionMask, [b.rows, b.length]),
      };
      for (const [key, t] of adapter.tensors) feeds[key] = engine.tensor(t.data as Float32Array, t.shape);
      if (kind === "groups") {
        feeds.rewards = engine.tensor(Float32Array.from(groups.flatMap((q) => q.rewards)), [groups.length, K]);
      }
      const r = await s.run(feeds);
      for (const name of Object.keys(losses)) {
        const got = (r[`loss_${name}`].data as Float32Array)[0];
        const want = gold.losses.float64[name].loss as number;
        assert.ok(Math.abs(got - want) <= LOSS_TOL, `${name} loss ${got} vs ${want}`);
        const worst = checkGrads(
          name,
          new Map(keys.map((k, i) => [k, r[`grad_${name}_${i}`].data as Float32Array])),
          gold,
        );
        console.log(
          `  ${m} ${backend} ${path} ${name}: loss error ${Math.abs(got - want).toExponential(2)}, gradient error ${
            worst.toExponential(2)
          } of max|grad|`,
        );
      }
      await s.release();
    }
  });
}
