/**
 * The bench sizes every train graph's MatMuls from its symbolic dims (bench/flops.ts). A builder
 * that renames a dim the bench binds (the fused head's completion positions, `positions_*`) would
 * break every train workload of `deno task bench`, which no other test runs: this test builds the
 * same preference graph the bench does and counts its FLOPs.
 */

import assert from "node:assert/strict";
import { flopCounter } from "../../bench/flops.ts";
import { createLoraConfig } from "../../src/lora/config.ts";
import { loadModel } from "../../src/models/load.ts";
import { buildPreferenceGraph } from "../../src/train/preference_graph.ts";
import { FIXTURES } from "../models/_helpers.ts";

Deno.test("the bench's FLOP count sizes every MatMul of a train graph, the fused head's included", async () => {
  const model = await loadModel(`${FIXTURES}tiny-gpt2`);
  const lora = createLoraConfig(model.config, { r: 4 });
  const pg = buildPreferenceGraph(model, lora, {
    loss: "exo-pref",
    betaPi: 0.1,
    betaR: 0.1,
    eps: 1e-3,
    temperature: 1,
  });
  const flopsOf = flopCounter(pg.graph);
  const few = flopsOf({ rows: 4, seq: 8, positions: 4 });
  const more = flopsOf({ rows: 4, seq: 8, positions: 12 });
  assert.ok(few > 0 && Number.isFinite(few), `flops ${few}`);
  // The head's products grow with the completion positions: the binding reached them.
  assert.ok(more > few, `flops with 12 positions ${more} > with 4 ${few}`);
});
