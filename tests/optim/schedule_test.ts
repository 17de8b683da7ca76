import assert from "node:assert/strict";
import { lrSchedule } from "../../src/optim/schedule.ts";

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);

Deno.test("linear schedule with warmup follows transformers' get_linear_schedule_with_warmup", () => {
  const s = lrSchedule({ kind: "linear", lr: 2, warmupSteps: 10, totalSteps: 110 });
  close(s(0), 0); // the first update runs at 0, as in transformers
  close(s(5), 1);
  close(s(10), 2);
  close(s(60), 1);
  close(s(110), 0);
  close(s(200), 0);
});

Deno.test("cosine schedule with warmup follows get_cosine_schedule_with_warmup", () => {
  const s = lrSchedule({ kind: "cosine", lr: 1, warmupSteps: 4, totalSteps: 104 });
  close(s(2), 0.5);
  close(s(4), 1);
  close(s(54), 0.5);
  close(s(29), 0.5 * (1 + Math.cos(Math.PI * 0.25)));
  close(s(104), 0);
  const two = lrSchedule({ kind: "cosine", lr: 1, totalSteps: 100, numCycles: 1 });
  close(two(50), 0);
  close(two(100), 1 * 0.5 * (1 + Math.cos(2 * Math.PI)));
});

Deno.test("constant schedule with and without warmup", () => {
  const s = lrSchedule({ kind: "constant", lr: 3e-4, warmupSteps: 3 });
  close(s(0), 0);
  close(s(1), 1e-4);
  close(s(3), 3e-4);
  close(s(1000), 3e-4);
  close(lrSchedule({ kind: "constant", lr: 5 })(0), 5);
});

Deno.test("schedules reject bad options", () => {
  assert.throws(() => lrSchedule({ kind: "linear", lr: 1 }), /needs totalSteps/);
  assert.throws(() => lrSchedule({ kind: "constant", lr: -1 }), /must be >= 0/);
  assert.throws(() => lrSchedule({ kind: "constant", lr: 1, warmupSteps: 1.5 }), /warmupSteps/);
});
