/**
 * Learning-rate schedules with warmup, as transformers' `get_*_schedule_with_warmup` (a LambdaLR
 * over the base rate). `lrAt(k)` is the rate used by optimizer update k, counted from 0: with
 * warmup the first update runs at rate 0, exactly as a transformers Trainer does.
 *
 * @module
 */

/** The schedule kinds. */
export type ScheduleKind = "constant" | "linear" | "cosine";

/** Every schedule kind (option tables check `schedule` against it). */
export const SCHEDULE_KINDS: readonly ScheduleKind[] = ["constant", "linear", "cosine"];

/** Options of {@link lrSchedule}. */
export interface ScheduleOptions {
  kind: ScheduleKind;
  /** Base (peak) learning rate. */
  lr: number;
  /** Linear warmup from 0 over this many updates (default 0). */
  warmupSteps?: number;
  /** Total number of updates (needed by linear and cosine). */
  totalSteps?: number;
  /** Cosine cycles (default 0.5: one half-cosine from the peak to 0). */
  numCycles?: number;
}

/** A schedule: the learning rate of update k (0-based). */
export type Schedule = (k: number) => number;

/** Builds a schedule (transformers semantics). */
export function lrSchedule(o: ScheduleOptions): Schedule {
  const warm = o.warmupSteps ?? 0;
  const total = o.totalSteps ?? 0;
  if (!(o.lr >= 0)) throw new RangeError(`Learning rate must be >= 0, got ${o.lr}`);
  if (!(Number.isInteger(warm) && warm >= 0)) throw new RangeError(`warmupSteps must be an integer >= 0, got ${warm}`);
  if (o.kind !== "constant" && !(Number.isInteger(total) && total > 0)) {
    throw new RangeError(`A ${o.kind} schedule needs totalSteps (a positive integer), got ${o.totalSteps}`);
  }
  const cycles = o.numCycles ?? 0.5;
  const factor = (k: number): number => {
    if (k < warm) return k / Math.max(1, warm);
    switch (o.kind) {
      case "constant":
        return 1;
      case "linear":
        return Math.max(0, (total - k) / Math.max(1, total - warm));
      case "cosine": {
        const progress = (k - warm) / Math.max(1, total - warm);
        return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
      }
      default:
        throw new RangeError(`Unknown schedule ${JSON.stringify(o.kind)}: use constant, linear or cosine`);
    }
  };
  return (k) => o.lr * factor(k);
}
