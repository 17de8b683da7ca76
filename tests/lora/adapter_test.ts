import assert from "node:assert/strict";
import { localFiles, memoryFiles } from "../../src/io/files.ts";
import { type ModelConfig, parseModelConfig } from "../../src/models/config.ts";
import { parseSafetensors, serializeSafetensors } from "../../src/models/safetensors.ts";
import {
  adapterConfigJson,
  AdapterError,
  createLoraConfig,
  type LoraConfig,
  loraScaling,
  parseAdapterConfig,
} from "../../src/lora/config.ts";
import { loraTargets } from "../../src/lora/targets.ts";
import {
  initLoraAdapter,
  type LoraAdapter,
  readAdapter,
  validateAdapter,
  writeAdapter,
} from "../../src/lora/adapter.ts";
import { Rng } from "../../src/util/rng.ts";

const MODELS = ["tiny-gpt2", "tiny-llama", "tiny-llama-v4"];

async function modelConfig(name: string): Promise<ModelConfig> {
  return parseModelConfig(JSON.parse(await Deno.readTextFile(`tests/fixtures/${name}/config.json`)), name);
}

async function golden(name: string): Promise<{ keys: Record<string, number[]>; scaling: number }> {
  return JSON.parse(await Deno.readTextFile(`tests/fixtures/${name}/golden.json`)).adapter;
}

function rejectsAdapter(p: Promise<unknown> | (() => unknown), ...patterns: RegExp[]): Promise<void> | void {
  const check = (e: unknown) => {
    assert.ok(e instanceof AdapterError, `expected AdapterError, got ${e}`);
    for (const pat of patterns) assert.match(e.message, pat);
    return true;
  };
  if (typeof p === "function") return assert.throws(p, check);
  return assert.rejects(p, check);
}

Deno.test("fixture adapters load: keys and shapes equal golden.json, scaling equals golden", async () => {
  for (const name of MODELS) {
    for (const dir of ["adapter", "adapter_after_sgd_exo"]) {
      const mc = await modelConfig(name);
      const adapter = await readAdapter(`tests/fixtures/${name}/${dir}`, localFiles(), mc);
      const g = await golden(name);
      const got = Object.fromEntries([...adapter.tensors].map(([k, t]) => [k, [...t.shape]]));
      assert.deepEqual(got, g.keys, `${name}/${dir}`);
      assert.equal(loraScaling(adapter.config), g.scaling);
      for (const t of adapter.tensors.values()) assert.equal(t.dtype, "float32");
    }
  }
});

Deno.test("loraTargets reproduces the fixtures' key sets and shapes from the configs alone", async () => {
  for (const name of MODELS) {
    const mc = await modelConfig(name);
    const lora = parseAdapterConfig(
      JSON.parse(await Deno.readTextFile(`tests/fixtures/${name}/adapter/adapter_config.json`)),
      "adapter_config.json",
    );
    const expected: Record<string, number[]> = {};
    for (const t of loraTargets(mc, lora)) {
      expected[t.keyA] = [lora.r, t.inFeatures];
      expected[t.keyB] = [t.outFeatures, lora.r];
    }
    assert.deepEqual(expected, (await golden(name)).keys, name);
  }
});

Deno.test("GPT-2 targets: c_proj matches attn and mlp (suffix rule), Conv1D base weights, c_fc on request", async () => {
  const mc = await modelConfig("tiny-gpt2");
  const lora = createLoraConfig(mc, { r: 2, targetModules: ["c_proj"] });
  const ts = loraTargets(mc, lora);
  assert.deepEqual(ts.map((t) => t.module), [
    "transformer.h.0.attn.c_proj",
    "transformer.h.0.mlp.c_proj",
    "transformer.h.1.attn.c_proj",
    "transformer.h.1.mlp.c_proj",
  ]);
  assert.deepEqual(ts[1], {
    module: "transformer.h.0.mlp.c_proj",
    keyA: "base_model.model.transformer.h.0.mlp.c_proj.lora_A.weight",
    keyB: "base_model.model.transformer.h.0.mlp.c_proj.lora_B.weight",
    inFeatures: 256,
    outFeatures: 64,
    baseWeight: "transformer.h.0.mlp.c_proj.weight",
    fanInFanOut: true,
  });
  // Every target's base weight exists in model.safetensors with the Conv1D [in, out] layout.
  const weights = parseSafetensors(await Deno.readFile("tests/fixtures/tiny-gpt2/model.safetensors")).tensors;
  for (const t of loraTargets(mc, createLoraConfig(mc, { r: 2 }))) {
    assert.deepEqual(weights.get(t.baseWeight)?.shape, [t.inFeatures, t.outFeatures], t.baseWeight);
  }
  // A dotted suffix selects one of the two.
  assert.deepEqual(loraTargets(mc, { ...lora, targetModules: ["mlp.c_proj"] }).map((t) => t.module), [
    "transformer.h.0.mlp.c_proj",
    "transformer.h.1.mlp.c_proj",
  ]);
  rejectsAdapter(
    () => loraTargets(mc, { ...lora, targetModules: ["c_attn", "q_proj"] }),
    /target module "q_proj" matches no module of this gpt2 model \(valid names: c_attn, c_proj, c_fc\)/,
  );
});

Deno.test("Llama targets: Linear [out, in] base weights with GQA k/v sizes", async () => {
  const mc = await modelConfig("tiny-llama");
  const weights = parseSafetensors(await Deno.readFile("tests/fixtures/tiny-llama/model.safetensors")).tensors;
  const ts = loraTargets(mc, createLoraConfig(mc, { r: 4 }));
  assert.equal(ts.length, 14);
  for (const t of ts) {
    assert.equal(t.fanInFanOut, false);
    assert.deepEqual(weights.get(t.baseWeight)?.shape, [t.outFeatures, t.inFeatures], t.baseWeight);
  }
  rejectsAdapter(
    () => loraTargets(mc, createLoraConfig(mc, { r: 4, targetModules: ["c_attn"] })),
    /valid names: q_proj, k_proj/,
  );
});

Deno.test("write → read is bit-exact, and rewriting a PEFT fixture gives PEFT's exact safetensors bytes", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    for (const name of MODELS) {
      const mc = await modelConfig(name);
      const src = `tests/fixtures/${name}/adapter`;
      const adapter = await readAdapter(src, localFiles(), mc);
      const out = `${tmp}/${name}/nested`;
      await writeAdapter(out, adapter, localFiles());
      assert.deepEqual(
        await Deno.readFile(`${out}/adapter_model.safetensors`),
        await Deno.readFile(`${src}/adapter_model.safetensors`),
      );
      const back = await readAdapter(out, localFiles(), mc);
      assert.deepEqual(back.config, adapter.config);
      assert.deepEqual(back.tensors, adapter.tensors);
      assert.deepEqual(parseSafetensors(await Deno.readFile(`${out}/adapter_model.safetensors`)).metadata, {
        format: "pt",
      });
      // No temp files are left behind by the atomic writes.
      assert.deepEqual([...Deno.readDirSync(out)].map((e) => e.name).sort(), [
        "adapter_config.json",
        "adapter_model.safetensors",
      ]);
    }
    // A fresh adapter round-trips too, and the data is copied (mutating what was read does not touch the file).
    const mc = await modelConfig("tiny-llama");
    const fresh = initLoraAdapter(
      mc,
      createLoraConfig(mc, { r: 3, alpha: 5, useRslora: true, baseModelNameOrPath: "x/y" }),
      new Rng(7),
    );
    await writeAdapter(`${tmp}/fresh`, fresh, localFiles());
    const back = await readAdapter(`${tmp}/fresh`, localFiles(), mc);
    assert.deepEqual(back, fresh);
    // Tensors read are copies: mutating them leaves the source bytes alone.
    const bytes = await Deno.readFile(`${tmp}/fresh/adapter_model.safetensors`);
    const before = bytes.slice();
    const mem = memoryFiles({
      "m/adapter_config.json": await Deno.readTextFile(`${tmp}/fresh/adapter_config.json`),
      "m/adapter_model.safetensors": bytes,
    });
    for (const t of (await readAdapter("m", mem)).tensors.values()) (t.data as Float32Array).fill(123);
    assert.deepEqual(bytes, before);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("adapter_config.json we write has PEFT's fields and values and parses back", async () => {
  for (const name of MODELS) {
    const peft = JSON.parse(await Deno.readTextFile(`tests/fixtures/${name}/adapter/adapter_config.json`));
    const ours = adapterConfigJson(parseAdapterConfig(peft, "x"));
    // Every key we write is one PEFT 0.21 writes, with the same value.
    for (const [k, v] of Object.entries(ours)) {
      assert.ok(k in peft, `PEFT does not write "${k}"`);
      assert.deepEqual(v, peft[k], k);
    }
    for (
      const k of [
        "peft_type",
        "r",
        "lora_alpha",
        "target_modules",
        "fan_in_fan_out",
        "use_rslora",
        "lora_dropout",
        "bias",
        "task_type",
        "base_model_name_or_path",
        "inference_mode",
        "init_lora_weights",
        "modules_to_save",
      ]
    ) assert.ok(k in ours, k);
    assert.deepEqual(Object.keys(ours), Object.keys(ours).sort(), "keys sorted like PEFT's json.dump(sort_keys=True)");
    assert.deepEqual(parseAdapterConfig(JSON.parse(JSON.stringify(ours)), "y"), parseAdapterConfig(peft, "x"));
  }
  const c = parseAdapterConfig(
    adapterConfigJson({
      r: 16,
      alpha: 32,
      targetModules: ["q_proj"],
      useRslora: true,
      fanInFanOut: false,
      dropout: 0.05,
      bias: "none",
      baseModelNameOrPath: null,
      taskType: "CAUSAL_LM",
    }),
    "z",
  );
  assert.equal(loraScaling(c), 8);
  assert.equal(c.dropout, 0.05);
});

Deno.test("parseAdapterConfig rejects what we do not implement, listing every problem", async () => {
  const base = JSON.parse(await Deno.readTextFile("tests/fixtures/tiny-llama/adapter/adapter_config.json"));
  rejectsAdapter(
    () =>
      parseAdapterConfig({
        ...base,
        peft_type: "IA3",
        bias: "all",
        use_dora: true,
        layers_to_transform: [0],
        rank_pattern: { q_proj: 8 },
        alpha_pattern: { q_proj: 8 },
        modules_to_save: ["lm_head"],
      }, "a/adapter_config.json"),
    /^a\/adapter_config\.json: unsupported adapter config/,
    /peft_type "IA3" \(supported: "LORA"\)/,
    /bias "all" \(supported: "none"\)/,
    /use_dora: true \(supported: false\)/,
    /layers_to_transform \[0\] \(supported: null\)/,
    /rank_pattern \{"q_proj":8\}/,
    /alpha_pattern/,
    /modules_to_save \["lm_head"\]/,
  );
  rejectsAdapter(
    () => parseAdapterConfig({ ...base, target_modules: ".*proj" }, "a"),
    /target_modules is a regular expression/,
  );
  rejectsAdapter(() => parseAdapterConfig({ ...base, task_type: "SEQ_CLS" }, "a"), /task_type "SEQ_CLS"/);
  rejectsAdapter(() => parseAdapterConfig({ ...base, r: 0 }, "a"), /r must be a positive integer, got 0/);
  rejectsAdapter(() => parseAdapterConfig({ ...base, lora_dropout: 1 }, "a"), /lora_dropout must be in \[0, 1\)/);
  rejectsAdapter(() => parseAdapterConfig("x", "a"), /must be a JSON object/);
  // Null task_type (get_peft_model without one) saves the same keys: accepted.
  assert.equal(parseAdapterConfig({ ...base, task_type: null }, "a").taskType, "CAUSAL_LM");
});

Deno.test("validateAdapter and readAdapter name the missing, extra or misshapen key", async () => {
  const mc = await modelConfig("tiny-gpt2");
  const good = await readAdapter("tests/fixtures/tiny-gpt2/adapter", localFiles());
  validateAdapter(good, mc);
  const drop = new Map(good.tensors);
  drop.delete("base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight");
  rejectsAdapter(
    () => validateAdapter({ ...good, tensors: drop }, mc),
    /1 LoRA tensor\(s\) missing .*"base_model\.model\.transformer\.h\.1\.mlp\.c_proj\.lora_B\.weight"/,
  );
  const narrowed: LoraAdapter = { ...good, config: { ...good.config, targetModules: ["c_attn"] } };
  rejectsAdapter(() => validateAdapter(narrowed, mc), /8 tensor\(s\) match no LoRA target .*and 4 more/);
  const bad = new Map(good.tensors);
  bad.set("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight", {
    dtype: "float32",
    shape: [4, 192],
    data: new Float32Array(768),
  });
  rejectsAdapter(
    () => validateAdapter({ ...good, tensors: bad }, mc),
    /tensor "base_model\.model\.transformer\.h\.0\.attn\.c_attn\.lora_B\.weight" has shape \[4, 192\]; expected \[192, 4\]/,
  );
  // The llama adapter against the GPT-2 model: its target names match nothing.
  await rejectsAdapter(
    readAdapter("tests/fixtures/tiny-llama/adapter", localFiles(), mc),
    /target module "gate_proj" matches no module/,
  );
  // Directory problems.
  const cfg = await Deno.readTextFile("tests/fixtures/tiny-gpt2/adapter/adapter_config.json");
  await rejectsAdapter(readAdapter("d", memoryFiles({})), /d: no adapter_config\.json/);
  await rejectsAdapter(
    readAdapter("d", memoryFiles({ "d/adapter_config.json": cfg, "d/adapter_model.bin": new Uint8Array(1) })),
    /no adapter_model\.safetensors; adapter_model\.bin \(pickle\) is not supported/,
  );
  await rejectsAdapter(
    readAdapter("d", memoryFiles({ "d/adapter_config.json": "{", "d/adapter_model.safetensors": "" })),
    /not valid JSON/,
  );
  // F16 adapters are upcast on read.
  const half = serializeSafetensors({
    "base_model.model.x.lora_A.weight": { dtype: "float16", shape: [1, 2], data: new Uint16Array([0x3c00, 0xc000]) },
  });
  const read = await readAdapter(
    "d",
    memoryFiles({ "d/adapter_config.json": cfg, "d/adapter_model.safetensors": half }),
  );
  assert.deepEqual([...read.tensors.values()][0].data, new Float32Array([1, -2]));
});

Deno.test("init: B zero, A uniform within ±1/sqrt(in) with the right spread, seeded and reproducible", async () => {
  const mc = await modelConfig("tiny-llama");
  const lora: LoraConfig = createLoraConfig(mc, { r: 8 });
  const a1 = initLoraAdapter(mc, lora, new Rng(42));
  validateAdapter(a1, mc);
  assert.deepEqual(initLoraAdapter(mc, lora, new Rng(42)), a1);
  const a2 = initLoraAdapter(mc, lora, new Rng(43));
  assert.equal(loraTargets(mc, lora).length, 2 * 7, "7 projections in each of 2 layers");
  for (const t of loraTargets(mc, lora)) {
    const b = a1.tensors.get(t.keyB)!.data as Float32Array;
    assert.ok(b.every((x) => x === 0), `${t.keyB} is zero`);
    const a = a1.tensors.get(t.keyA)!.data as Float32Array;
    const bound = 1 / Math.sqrt(t.inFeatures);
    assert.ok(a.every((x) => Math.abs(x) <= Math.fround(bound)), t.keyA);
    // U(-b, b): mean 0, variance b²/3 (n = 512 or 1024: loose 5-sigma-ish bounds).
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    const variance = a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length;
    assert.ok(Math.abs(mean) < 0.15 * bound, `${t.keyA} mean ${mean}`);
    assert.ok(Math.abs(variance / (bound * bound / 3) - 1) < 0.2, `${t.keyA} variance ${variance}`);
    assert.ok(Math.max(...a) > 0.9 * bound && Math.min(...a) < -0.9 * bound, "fills the interval");
    assert.notDeepEqual(a2.tensors.get(t.keyA)!.data, a);
  }
  // The config is copied, not aliased.
  lora.targetModules.push("zzz");
  assert.equal(a1.config.targetModules.includes("zzz"), false);
});
