/**
 * Which errors are the user's input (exit code 2, nothing written) rather than a failure.
 *
 * @module
 */

import { DataError } from "../data/jsonl.ts";
import { HubError } from "../hub/settings.ts";
import { ChatTemplateError } from "../models/chat_template.ts";
import { AdapterError } from "../lora/config.ts";
import { ConfigError } from "../models/config.ts";
import { ModelLoadError } from "../models/load.ts";
import { SafetensorsError } from "../models/safetensors.ts";
import { TokenizerError } from "../models/tokenizer.ts";
import { BackendUnavailableError } from "../runtime/backend.ts";
import { ArtifactError, CheckpointError } from "../ort_training/mod.ts";

/**
 * True for bad data, model, adapter, Hub, chat-template, ORT artifact or option errors (OptionError
 * is a RangeError), missing files, and a requested backend that is absent.
 */
export function isInputError(e: unknown): boolean {
  if (
    e instanceof DataError || e instanceof ConfigError || e instanceof ModelLoadError ||
    e instanceof SafetensorsError || e instanceof AdapterError || e instanceof TokenizerError ||
    e instanceof RangeError || e instanceof HubError || e instanceof ChatTemplateError ||
    e instanceof ArtifactError || e instanceof CheckpointError || e instanceof BackendUnavailableError
  ) return true;
  const msg = (e as Error)?.message ?? "";
  return /^File not found: |^WebGPU was requested but is not available/.test(msg);
}
