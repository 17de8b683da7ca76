/**
 * Optimizers written in ONNX ops (fused into the training-step graph), gradient clipping and
 * learning-rate schedules.
 *
 * @module
 */

export { adamw, type AdamWOptions } from "./adamw.ts";
export { sgd, type SgdOptions } from "./sgd.ts";
export type { Optimizer, ParamUpdate } from "./optimizer.ts";
export { clipByGlobalNorm, globalNorm } from "./clip.ts";
export { lrSchedule, type Schedule, SCHEDULE_KINDS, type ScheduleKind, type ScheduleOptions } from "./schedule.ts";
