/**
 * Shared pieces of the ort-training tests: adapter comparison, artifacts emitted for a fixture
 * model, and protobuf surgery that breaks one part of a model's contract at a time (to show the
 * checks catch it, and what ORT does without them).
 */

import protobuf from "protobufjs/minimal.js";
import type { TensorData } from "../../src/onnx/graph.ts";
import { localFiles } from "../../src/io/files.ts";
import { readAdapter } from "../../src/lora/adapter.ts";
import { loadModel } from "../../src/models/load.ts";
import { type ArtifactLayout, emitArtifacts, type EmittedArtifacts } from "../../src/ort_training/mod.ts";
import { type NodeInfo, readModel } from "../../src/ort_training/onnx_read.ts";
import { padPairs } from "../../src/data/batching.ts";
import { FX } from "../train/_trainer_support.ts";

export { FX };

/**
 * The worst over tensors of max_i |x_i − y_i| / max_i |y_i|: the largest difference relative to
 * the tensor's scale (elements near zero, e.g. a fresh lora_B, make element-wise ratios meaningless).
 */
export function tensorRelative(x: Map<string, TensorData>, y: Map<string, TensorData>): { worst: number; key: string } {
  let worst = 0, key = "";
  if ([...x.keys()].sort().join() !== [...y.keys()].sort().join()) throw new Error("the adapters have different keys");
  for (const [k, t] of x) {
    const a = t.data as Float32Array, b = y.get(k)!.data as Float32Array;
    let scale = 0, d = 0;
    for (let i = 0; i < a.length; i++) {
      scale = Math.max(scale, Math.abs(b[i]));
      d = Math.max(d, Math.abs(a[i] - b[i]));
    }
    if (scale === 0) throw new Error(`${k} is all zeros: a relative comparison would be vacuous`);
    if (d / scale > worst) [worst, key] = [d / scale, k];
  }
  return { worst, key };
}

/** Artifacts for a fixture model's PEFT adapter, EXO-pref, AdamW at a constant 1e-3. */
export async function fixtureArtifacts(
  model = "tiny-gpt2",
  layout: ArtifactLayout = "exo",
  optimizer: "adamw" | "sgd" = "adamw",
): Promise<EmittedArtifacts & { lora: Awaited<ReturnType<typeof readAdapter>>["config"] }> {
  const m = await loadModel(`${FX}/${model}`);
  const adapter = await readAdapter(`${FX}/${model}/adapter`, localFiles(), m.config);
  const params = new Map([...adapter.tensors].map(([k, t]) => [k, t.data as Float32Array]));
  const emitted = emitArtifacts({
    model: m,
    lora: adapter.config,
    params,
    loss: { loss: "exo-pref", betaPi: 0.1, betaR: 0.1, eps: 1e-3, temperature: 1 },
    optimizer: { kind: optimizer, lrTable: new Float32Array([1e-3]), maxGradNorm: 0, weightDecay: 0 },
    layout,
  });
  return { ...emitted, lora: adapter.config };
}

// --- protobuf surgery on a ModelProto's graph -------------------------------------------------

interface Field {
  field: number;
  bytes: Uint8Array;
}

/** The raw top-level fields of a message (each with its tag and payload bytes). */
function rawFields(bytes: Uint8Array): Field[] {
  const r = protobuf.Reader.create(bytes);
  const out: Field[] = [];
  while (r.pos < bytes.length) {
    const start = r.pos;
    const tag = r.uint32();
    r.skipType(tag & 7);
    out.push({ field: tag >>> 3, bytes: bytes.subarray(start, r.pos) });
  }
  return out;
}

/** The payload of a length-delimited field (its bytes after tag and length). */
function payload(f: Field): Uint8Array {
  const r = protobuf.Reader.create(f.bytes);
  r.uint32();
  const len = r.uint32();
  return f.bytes.subarray(r.pos, r.pos + len);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A node field decoded (by wrapping it in a one-node model). */
export function nodeOf(f: Field): NodeInfo {
  const w = protobuf.Writer.create();
  w.uint32((7 << 3) | 2).bytes(f.bytes);
  return readModel(w.finish()).nodes[0];
}

/**
 * Rewrites the graph of a model: `edit` gets the graph's raw fields (node = 1, input = 11,
 * output = 12, ...) in order and returns the new list.
 */
export function editGraph(model: Uint8Array, edit: (fields: Field[]) => Field[]): Uint8Array {
  const top = rawFields(model);
  const parts: Uint8Array[] = [];
  for (const f of top) {
    if (f.field !== 7) {
      parts.push(f.bytes);
      continue;
    }
    const graph = concat(edit(rawFields(payload(f))).map((g) => g.bytes));
    const w = protobuf.Writer.create();
    w.uint32((7 << 3) | 2).bytes(graph);
    parts.push(w.finish());
  }
  return concat(parts);
}

/** The name of a ValueInfo field (graph input or output). */
export function valueName(f: Field): string {
  const w = protobuf.Writer.create();
  w.uint32((7 << 3) | 2).fork().uint32((11 << 3) | 2).bytes(payload(f)).ldelim();
  return readModel(w.finish()).inputs[0].name;
}

/** One batch of the fixture pairs as feeds (any ORT build's tensor shape: `{type, data, dims}`). */
export async function fixtureBatch(): Promise<Record<string, { type: string; data: unknown; dims: number[] }>> {
  const lines = (await Deno.readTextFile(`${FX}/pairs.jsonl`)).trim().split("\n").map((l) => JSON.parse(l));
  const pairs = lines.map((p, i) => ({
    promptIds: p.prompt_ids,
    chosenIds: p.chosen_ids,
    rejectedIds: p.rejected_ids,
    line: i + 1,
  }));
  const b = padPairs(pairs, {});
  const dims = [b.rows, b.length];
  return {
    input_ids: { type: "int64", data: b.inputIds, dims },
    attention_mask: { type: "int64", data: b.attentionMask, dims },
    targets: { type: "int64", data: b.targets, dims },
    completion_mask: { type: "float32", data: b.completionMask, dims },
    // Log-ratios against a reference of log-prob -30 per completion: any finite values exercise the loss.
    ref_logps: { type: "float32", data: new Float32Array(b.rows).fill(-30), dims: [b.rows] },
  };
}

/** A node field re-encoded (inputs, outputs, name, op type, domain; no attributes). */
export function encodeNode(n: NodeInfo): Field {
  const w = protobuf.Writer.create();
  w.uint32((1 << 3) | 2).fork();
  for (const i of n.inputs) w.uint32((1 << 3) | 2).string(i);
  for (const o of n.outputs) w.uint32((2 << 3) | 2).string(o);
  w.uint32((3 << 3) | 2).string(n.name);
  w.uint32((4 << 3) | 2).string(n.opType);
  if (n.domain) w.uint32((7 << 3) | 2).string(n.domain);
  w.ldelim();
  return { field: 1, bytes: w.finish() };
}
