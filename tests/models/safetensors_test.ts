import assert from "node:assert/strict";
import fc from "fast-check";
import {
  halfToFloat,
  loadSafetensorsDir,
  parseSafetensors,
  type SafeTensor,
  SafetensorsError,
  serializeSafetensors,
  toFloat32,
  toTensorData,
} from "../../src/models/safetensors.ts";
import type { TensorData } from "../../src/onnx/graph.ts";
import { localFiles, memoryFiles } from "../../src/io/files.ts";

const FIXTURE_FILES = [
  "tests/fixtures/tiny-gpt2/model.safetensors",
  "tests/fixtures/tiny-gpt2/adapter/adapter_model.safetensors",
  "tests/fixtures/tiny-gpt2/adapter_after_sgd_exo/adapter_model.safetensors",
  "tests/fixtures/tiny-llama/model.safetensors",
  "tests/fixtures/tiny-llama/adapter/adapter_model.safetensors",
  "tests/fixtures/tiny-llama/adapter_after_sgd_exo/adapter_model.safetensors",
  "tests/fixtures/tiny-llama-v4/model.safetensors",
  "tests/fixtures/tiny-llama-v4/adapter/adapter_model.safetensors",
  "models/review-gpt2/model.safetensors",
];

/** A safetensors file built by hand (independently of serializeSafetensors), for corruption tests. */
function rawFile(header: unknown, data: Uint8Array, headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function throwsSafetensors(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("every fixture safetensors file parses and re-serializes byte-identically", async () => {
  for (const path of FIXTURE_FILES) {
    const bytes = await Deno.readFile(path);
    const { tensors, metadata } = parseSafetensors(bytes, path);
    assert.deepEqual(metadata, { format: "pt" }, path);
    assert.ok(tensors.size > 0);
    const asData = new Map([...tensors].map(([k, t]) => [k, toTensorData(t, k)]));
    for (const [k, t] of asData) {
      assert.equal(t.data.length, t.shape.reduce((a, b) => a * b, 1), k);
      assert.ok((t.data as Float32Array).every(Number.isFinite), `${path}: ${k} has non-finite values`);
    }
    // HF's writer order, header layout and padding are reproduced exactly.
    assert.deepEqual(serializeSafetensors(asData, metadata), bytes, path);
  }
});

Deno.test("fixture tensors have the shapes HF saved (GPT-2 Conv1D [in, out], Llama Linear [out, in])", async () => {
  const gpt2 = parseSafetensors(await Deno.readFile("tests/fixtures/tiny-gpt2/model.safetensors")).tensors;
  assert.deepEqual(gpt2.get("transformer.h.0.attn.c_attn.weight")?.shape, [64, 192]);
  assert.deepEqual(gpt2.get("transformer.h.1.mlp.c_fc.weight")?.shape, [64, 256]);
  assert.ok(!gpt2.has("lm_head.weight"), "tied embeddings are saved once");
  const llama = parseSafetensors(await Deno.readFile("tests/fixtures/tiny-llama/model.safetensors")).tensors;
  assert.deepEqual(llama.get("model.layers.0.self_attn.k_proj.weight")?.shape, [32, 64]);
  assert.deepEqual(llama.get("lm_head.weight")?.shape, [512, 64]);
  // A value check against the golden logits' source: the first embedding row is stored little-endian float32.
  const emb = toFloat32(llama.get("model.embed_tokens.weight")!);
  const dv = new DataView(llama.get("model.embed_tokens.weight")!.bytes.slice(0, 4).buffer);
  assert.equal(emb[0], dv.getFloat32(0, true));
});

Deno.test("loadSafetensorsDir reads a single file and a sharded checkpoint, naming a missing shard", async () => {
  const single = await loadSafetensorsDir("tests/fixtures/tiny-llama", localFiles());
  assert.equal(single.size, 21);

  const all = [...single];
  const shard1 = serializeSafetensors(new Map(all.slice(0, 10).map(([k, t]) => [k, toTensorData(t)])), {
    format: "pt",
  });
  const shard2 = serializeSafetensors(new Map(all.slice(10).map(([k, t]) => [k, toTensorData(t)])), { format: "pt" });
  const weightMap = Object.fromEntries(
    all.map(([k], i) => [k, i < 10 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors"]),
  );
  const index = JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap });
  const files = memoryFiles({
    "m/model.safetensors.index.json": index,
    "m/model-00001-of-00002.safetensors": shard1,
    "m/model-00002-of-00002.safetensors": shard2,
  });
  const sharded = await loadSafetensorsDir("m", files);
  assert.deepEqual([...sharded.keys()].sort(), [...single.keys()].sort());
  for (const [k, t] of single) assert.deepEqual(toFloat32(sharded.get(k)!), toFloat32(t), k);

  const missing = memoryFiles({
    "m/model.safetensors.index.json": index,
    "m/model-00001-of-00002.safetensors": shard1,
  });
  await assert.rejects(loadSafetensorsDir("m", missing), (e: Error) => {
    assert.ok(e instanceof SafetensorsError);
    assert.match(e.message, /shard "model-00002-of-00002\.safetensors" .* is missing/);
    return true;
  });
  const lacking = memoryFiles({
    "m/model.safetensors.index.json": JSON.stringify({
      weight_map: { ...weightMap, "extra.weight": weightMap["lm_head.weight"] },
    }),
    "m/model-00001-of-00002.safetensors": shard1,
    "m/model-00002-of-00002.safetensors": shard2,
  });
  await assert.rejects(
    loadSafetensorsDir("m", lacking),
    /tensor "extra\.weight" listed in the index is not in this shard/,
  );
  await assert.rejects(
    loadSafetensorsDir("none", memoryFiles({})),
    /no model\.safetensors or model\.safetensors\.index\.json/,
  );
  await assert.rejects(
    loadSafetensorsDir("m", memoryFiles({ "m/model.safetensors.index.json": "{}" })),
    /missing "weight_map"/,
  );
});

// ---------- round trips ----------

const DTYPE_ARB = fc.constantFrom(
  "float32",
  "float64",
  "float16",
  "bfloat16",
  "int64",
  "int32",
  "int8",
  "uint8",
  "bool",
) as fc.Arbitrary<
  TensorData["dtype"]
>;

function randomTensor(dtype: TensorData["dtype"], shape: number[], seed: number): TensorData {
  const n = shape.reduce((a, b) => a * b, 1);
  const bytes = new Uint8Array(
    n * ({ float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int8: 1, uint8: 1, bool: 1 })[dtype],
  );
  let s = seed >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    bytes[i] = s >>> 24;
  }
  if (dtype === "bool") { for (let i = 0; i < bytes.length; i++) bytes[i] &= 1; }
  const buf = bytes.buffer;
  const data = dtype === "float32"
    ? new Float32Array(buf)
    : dtype === "float64"
    ? new Float64Array(buf)
    : dtype === "float16" || dtype === "bfloat16"
    ? new Uint16Array(buf)
    : dtype === "int64"
    ? new BigInt64Array(buf)
    : dtype === "int32"
    ? new Int32Array(buf)
    : dtype === "int8"
    ? new Int8Array(buf)
    : bytes;
  return { dtype, shape, data };
}

const tensorMapArb = fc.uniqueArray(
  fc.record({
    name: fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.constantFrom("__proto__", "a.b", "é\u{1F600}"))
      .filter((s) => s !== "__metadata__"),
    dtype: DTYPE_ARB,
    shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }),
    seed: fc.integer(),
  }),
  { selector: (t) => t.name, maxLength: 6 },
).map((ts) => new Map(ts.map((t) => [t.name, randomTensor(t.dtype, t.shape, t.seed)])));

const SAFE_OF = {
  float32: "F32",
  float64: "F64",
  float16: "F16",
  bfloat16: "BF16",
  int64: "I64",
  int32: "I32",
  int8: "I8",
  uint8: "U8",
  bool: "BOOL",
};

Deno.test("random tensor sets round-trip bit-exactly through serialize/parse", () => {
  fc.assert(
    fc.property(
      tensorMapArb,
      fc.option(
        fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constant("__proto__")), fc.string({ maxLength: 6 })),
        {
          nil: undefined,
        },
      ),
      (tensors, metadata) => {
        const bytes = serializeSafetensors(tensors, metadata);
        const headerLen = new DataView(bytes.buffer).getUint32(0, true);
        assert.equal((8 + headerLen) % 8, 0, "data section starts 8-byte aligned");
        const parsed = parseSafetensors(bytes);
        assert.deepEqual(Object.entries(parsed.metadata), Object.entries(metadata ?? {}));
        assert.deepEqual([...parsed.tensors.keys()].sort(), [...tensors.keys()].sort());
        for (const [name, t] of tensors) {
          const p = parsed.tensors.get(name)!;
          assert.equal(p.dtype, SAFE_OF[t.dtype]);
          assert.deepEqual(p.shape, t.shape);
          assert.deepEqual(p.bytes, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
        }
        // Serializing the parsed tensors again gives the same file (a fixed point).
        const again = new Map([...parsed.tensors].map(([k, s]) => [k, asTensorData(s)]));
        assert.deepEqual(serializeSafetensors(again, metadata), bytes);
      },
    ),
    { numRuns: 300 },
  );
});

function asTensorData(s: SafeTensor): TensorData {
  const buf = s.bytes.slice().buffer;
  const dtype = (Object.keys(SAFE_OF) as TensorData["dtype"][]).find((k) => SAFE_OF[k] === s.dtype)!;
  const data = dtype === "float32"
    ? new Float32Array(buf)
    : dtype === "float64"
    ? new Float64Array(buf)
    : dtype === "float16" || dtype === "bfloat16"
    ? new Uint16Array(buf)
    : dtype === "int64"
    ? new BigInt64Array(buf)
    : dtype === "int32"
    ? new Int32Array(buf)
    : dtype === "int8"
    ? new Int8Array(buf)
    : new Uint8Array(buf);
  return { dtype, shape: s.shape, data };
}

Deno.test("serializeSafetensors refuses data that does not fill the shape and the reserved name", () => {
  throwsSafetensors(
    () => serializeSafetensors({ w: { dtype: "float32", shape: [2, 3], data: new Float32Array(5) } }),
    /tensor "w": 5 values do not fill shape \[2, 3\] \(6\)/,
  );
  throwsSafetensors(
    () => serializeSafetensors({ __metadata__: { dtype: "float32", shape: [1], data: new Float32Array(1) } }),
    /reserved/,
  );
});

// ---------- corruption ----------

const GOOD = serializeSafetensors(
  {
    a: { dtype: "float32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    b: { dtype: "float16", shape: [3], data: new Uint16Array([0x3c00, 0x4000, 0xc200]) },
  },
  { format: "pt" },
);

Deno.test("any corruption of a valid file gives a SafetensorsError or a valid parse, never another error", () => {
  const kinds = new Set<string>();
  let parsed = 0;
  fc.assert(
    fc.property(
      fc.oneof(
        // truncation
        fc.integer({ min: 0, max: GOOD.length - 1 }).map((n) => GOOD.slice(0, n)),
        // random byte flips anywhere
        fc.array(fc.tuple(fc.nat(GOOD.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 })
          .map((edits) => {
            const b = GOOD.slice();
            for (const [i, v] of edits) b[i] = v;
            return b;
          }),
        // random bytes
        fc.uint8Array({ maxLength: 200 }),
        // random header length
        fc.tuple(fc.nat(), fc.nat()).map(([lo, hi]) => {
          const b = GOOD.slice();
          const dv = new DataView(b.buffer);
          dv.setUint32(0, lo, true);
          dv.setUint32(4, hi % 4, true);
          return b;
        }),
      ),
      (bytes) => {
        try {
          const { tensors } = parseSafetensors(bytes, "fuzz.safetensors");
          parsed++;
          // Whatever parses must be self-consistent.
          for (const [name, t] of tensors) {
            assert.equal(
              t.bytes.length,
              t.shape.reduce((a, b) => a * b, 1) * ({ F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4 }[
                t.dtype as string
              ] ?? 1),
              name,
            );
          }
        } catch (e) {
          assert.ok(e instanceof SafetensorsError, `not a SafetensorsError: ${e}`);
          assert.match(e.message, /^fuzz\.safetensors: /);
          kinds.add(e.message.replace(/[\d"].*$/, ""));
        }
      },
    ),
    { numRuns: 1000 },
  );
  // The fuzzer reached many distinct checks, and some corruptions (e.g. in tensor values) still parse.
  assert.ok(kinds.size >= 6, [...kinds].join("\n"));
  assert.ok(parsed > 0);
});

Deno.test("random JSON headers give a SafetensorsError or a consistent parse", () => {
  const entry = fc.record({
    dtype: fc.oneof(fc.constantFrom("F32", "F16", "BF16", "I64", "U8", "F8_E4M3", "Q4"), fc.anything()),
    shape: fc.oneof(fc.array(fc.integer({ min: -1, max: 4 }), { maxLength: 3 }), fc.anything()),
    data_offsets: fc.oneof(fc.tuple(fc.integer({ min: -2, max: 40 }), fc.integer({ min: -2, max: 40 })), fc.anything()),
  }, { requiredKeys: [] });
  fc.assert(
    fc.property(
      fc.dictionary(fc.string({ maxLength: 4 }), fc.oneof(entry, fc.anything())),
      fc.integer({ min: 0, max: 40 }),
      (h, n) => {
        try {
          parseSafetensors(rawFile(h, new Uint8Array(n)), "h.safetensors");
        } catch (e) {
          assert.ok(e instanceof SafetensorsError, `not a SafetensorsError: ${e}`);
          assert.match(e.message, /^h\.safetensors: /);
        }
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("each kind of corruption has its own clear message", () => {
  const f32 = (begin: number, end: number, shape = [2]) => ({ dtype: "F32", shape, data_offsets: [begin, end] });
  const d = new Uint8Array(16);
  throwsSafetensors(
    () => parseSafetensors(new Uint8Array(5), "m.safetensors"),
    /^m\.safetensors: file is 5 bytes, too short/,
  );
  const big = GOOD.slice();
  new DataView(big.buffer).setUint32(0, GOOD.length, true);
  throwsSafetensors(
    () => parseSafetensors(big, "m.safetensors"),
    /header length \d+ exceeds the \d+ bytes after the length field; the file is truncated/,
  );
  const huge = GOOD.slice();
  new DataView(huge.buffer).setUint32(4, 7, true);
  throwsSafetensors(() => parseSafetensors(huge, "m.safetensors"), /exceeds the 100000000-byte limit/);
  throwsSafetensors(() => parseSafetensors(rawFile(null, d, "{not json"), "m.safetensors"), /header is not valid JSON/);
  throwsSafetensors(() => parseSafetensors(rawFile([1, 2], d), "m.safetensors"), /header must be a JSON object/);
  throwsSafetensors(
    () => parseSafetensors(rawFile({ x: { dtype: "F32", shape: [4] } }, d)),
    /tensor "x": missing "data_offsets"/,
  );
  throwsSafetensors(
    () => parseSafetensors(rawFile({ x: { ...f32(0, 16, [4]), dtype: "F8_E4M3" } }, d)),
    /tensor "x": unsupported dtype "F8_E4M3" \(supported: .*BF16/,
  );
  throwsSafetensors(
    () => parseSafetensors(rawFile({ x: f32(8, 24) }, d), "model.safetensors"),
    /^model\.safetensors: tensor "x": data_offsets \[8, 24\] exceed the data section \(16 bytes\)/,
  );
  throwsSafetensors(
    () => parseSafetensors(rawFile({ x: f32(0, 12) }, d)),
    /tensor "x": .* hold 12 bytes but shape \[2\] of F32 needs 8/,
  );
  throwsSafetensors(
    () => parseSafetensors(rawFile({ x: f32(0, 8), y: f32(4, 12) }, d)),
    /tensor "y": data_offsets \[4, 12\] overlap tensor "x" \[0, 8\]/,
  );
  throwsSafetensors(
    () => parseSafetensors(rawFile({ x: f32(0, 8) }, d)),
    /bytes \[8, 16\) of the data section belong to no tensor/,
  );
  throwsSafetensors(
    () => parseSafetensors(rawFile({ x: f32(8, 16) }, d)),
    /bytes \[0, 8\) of the data section belong to no tensor/,
  );
  throwsSafetensors(
    () =>
      parseSafetensors(
        rawFile(
          null,
          d,
          '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"x":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}',
        ),
      ),
    /tensor "x" appears twice/,
  );
  throwsSafetensors(
    () => parseSafetensors(rawFile({ x: { ...f32(0, 8), shape: [-2] } }, d)),
    /shape \[-2\] must be a list of non-negative integers/,
  );
  throwsSafetensors(() => parseSafetensors(rawFile({ x: f32(8, 0) }, d)), /data_offsets \[8,0\] must be two integers/);
  throwsSafetensors(
    () => parseSafetensors(rawFile({ __metadata__: { format: 1 }, x: f32(0, 16, [4]) }, d)),
    /"__metadata__" entry "format" must be a string/,
  );
  const badUtf8 = rawFile(null, d, '{"x":1}');
  badUtf8[10] = 0xff;
  throwsSafetensors(() => parseSafetensors(badUtf8), /header is not valid UTF-8/);
  // Nested objects with the same key are not duplicates; an empty file with an empty header is valid.
  assert.equal(parseSafetensors(rawFile({ __metadata__: { a: "x" }, a: f32(0, 16, [4]) }, d)).tensors.size, 1);
  assert.equal(parseSafetensors(rawFile({}, new Uint8Array(0))).tensors.size, 0);
});

// ---------- conversions ----------

Deno.test("F16 upcast is exact for every one of the 65536 half values", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const t: SafeTensor = { dtype: "F16", shape: [65536], bytes: new Uint8Array(all.buffer) };
  const f = toFloat32(t);
  for (let h = 0; h < 65536; h++) {
    const sign = h >> 15 ? -1 : 1, exp = (h >> 10) & 31, frac = h & 1023;
    const want = exp === 31
      ? (frac ? NaN : sign * Infinity)
      : exp === 0
      ? sign * frac * 2 ** -24
      : sign * (1 + frac / 1024) * 2 ** (exp - 15);
    if (Number.isNaN(want)) assert.ok(Number.isNaN(f[h]), `half ${h}`);
    else assert.ok(Object.is(f[h], want), `half 0x${h.toString(16)}: ${f[h]} != ${want}`);
  }
  assert.equal(halfToFloat(0x3c00), 1);
  assert.equal(halfToFloat(0x7bff), 65504);
  assert.equal(halfToFloat(0x0001), 2 ** -24);
  assert.ok(Object.is(halfToFloat(0x8000), -0));
});

Deno.test("BF16 upcast equals the float32 with the same top 16 bits", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 2, maxLength: 64 }).filter((b) => b.length % 2 === 0), (raw) => {
      const n = raw.length / 2;
      const f = toFloat32({ dtype: "BF16", shape: [n], bytes: raw });
      const dv = new DataView(raw.buffer, raw.byteOffset);
      for (let i = 0; i < n; i++) {
        const want = new DataView(new ArrayBuffer(4));
        want.setUint32(0, dv.getUint16(2 * i, true) << 16, true);
        const w = want.getFloat32(0, true);
        assert.ok(Object.is(f[i], w) || (Number.isNaN(f[i]) && Number.isNaN(w)));
      }
    }),
  );
  const one = toFloat32({ dtype: "BF16", shape: [2], bytes: new Uint8Array([0x80, 0x3f, 0x49, 0xc0]) });
  assert.deepEqual([...one], [1, -3.140625]);
});

Deno.test("F64 downcast rounds to nearest float32; F32 at an odd offset is copied; ints are refused", () => {
  const v = new Float64Array([0.1, 1 / 3, -1e-40, 1e39, 2 ** -149 * 0.6]);
  const f = toFloat32({ dtype: "F64", shape: [5], bytes: new Uint8Array(v.buffer) });
  assert.deepEqual([...f], [...v].map(Math.fround));
  // F32 right after a 1-byte tensor, so its bytes start at an odd address.
  const header = JSON.stringify({
    a: { dtype: "U8", shape: [1], data_offsets: [0, 1] },
    b: { dtype: "F32", shape: [2], data_offsets: [1, 9] },
  });
  const file = rawFile(
    null,
    new Uint8Array([7, ...new Uint8Array(new Float32Array([1.5, -2.25]).buffer)]),
    header.padEnd(Math.ceil(header.length / 8) * 8),
  );
  const { tensors } = parseSafetensors(file);
  assert.equal(tensors.get("b")!.bytes.byteOffset % 4, 1);
  assert.deepEqual([...toFloat32(tensors.get("b")!)], [1.5, -2.25]);
  const odd = new Uint8Array(17);
  odd.set(new Uint8Array(new Float64Array([0.1, 2]).buffer), 1);
  assert.deepEqual([...toFloat32({ dtype: "F64", shape: [2], bytes: odd.subarray(1) })], [Math.fround(0.1), 2]);
  throwsSafetensors(
    () => toFloat32({ dtype: "I64", shape: [1], bytes: new Uint8Array(8) }, "ids"),
    /tensor "ids" has dtype I64/,
  );
});
