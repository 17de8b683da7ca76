/**
 * The Python script `export-trl` writes beside `trl_config.json`. It holds no run settings of its
 * own: everything comes from the config, so one script serves every exported run.
 *
 * @module
 */

/** The TRL release the script and the argument names were written against. */
export const TRL_VERSION = "1.13.0";

/** `train_trl.py`. */
export const TRL_SCRIPT = String.raw`#!/usr/bin/env python3
# /// script
# requires-python = ">=3.10"
# dependencies = [
#   "trl==1.13.0",
#   "peft>=0.17",
#   "transformers>=4.56",
#   "datasets>=3",
#   "accelerate>=1.4",
#   "safetensors",
#   "torch>=2.4",
# ]
# ///
"""TRL training script written by exo-tune's export-trl: the same preference-tuning run, for GPUs.

    accelerate launch train_trl.py --output-dir runs/trl            # every GPU of the machine
    python train_trl.py --output-dir runs/trl --max-steps 10        # one device, a short check

The run's settings are in trl_config.json beside this file (--config to use another): the model
(pinned to the commit exo-tune used when it came from the Hub), the data file, the LoRA config and
the DPOConfig arguments. Written for TRL 1.13.0; the argument names follow trl/trainer/dpo_config.py
of that release. TRL logs the loss and the rewards/* metrics every step (logging_steps=1).

The adapter lands in --output-dir in PEFT format (adapter_config.json, adapter_model.safetensors)
and loads back in exo-tune: deno task cli generate --model M --adapter DIR ...
"""

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Preference-tune a LoRA adapter with TRL (exported by exo-tune).")
    p.add_argument("--output-dir", required=True, help="where the adapter and trainer state go")
    p.add_argument("--max-steps", type=int, default=None, help="stop after N optimizer updates (default: the config's)")
    p.add_argument("--config", default=str(HERE / "trl_config.json"), help="the exported run (default: beside this file)")
    return p.parse_args(argv)


def load_init_adapter(model, adapter_dir):
    """Loads an exo-tune/PEFT adapter's weights into the freshly made LoRA adapter.

    The adapter is built from peft_config (not passed in as a PeftModel) so that the reference stays
    the base model with the adapter disabled, as in exo-tune; with a PeftModel TRL would copy the
    initial adapter and use that copy as the reference instead.
    """
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = load_file(str(Path(adapter_dir) / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(model, state)
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    missing = [k for k in (getattr(result, "missing_keys", []) or []) if "lora_" in k]
    if unexpected or missing:
        sys.exit(f"{adapter_dir}: the adapter does not fit the model: unexpected {unexpected[:5]}, missing {missing[:5]}")


def main(argv=None):
    args = parse_args(argv)
    cfg = json.loads(Path(args.config).read_text())

    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    class PreTokenizedDPOTrainer(DPOTrainer):
        """Takes prompt_ids / chosen_ids / rejected_ids as they are, as exo-tune does (no EOS added)."""

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            keep = ["prompt_ids", "chosen_ids", "rejected_ids"]
            dataset = dataset.remove_columns([c for c in dataset.column_names if c not in keep])
            if args.max_length is not None:
                dataset = dataset.filter(lambda ex: len(ex["prompt_ids"]) < args.max_length)
            return dataset

    m = cfg["model"]
    model = AutoModelForCausalLM.from_pretrained(m["name_or_path"], revision=m["revision"], dtype=getattr(torch, m["dtype"]))
    tokenizer = AutoTokenizer.from_pretrained(m["name_or_path"], revision=m["revision"])
    dataset = load_dataset("json", data_files=cfg["data"]["path"], split="train")

    dpo = dict(cfg["dpo"])
    dpo["output_dir"] = args.output_dir
    if args.max_steps is not None:
        dpo["max_steps"] = args.max_steps
    training_args = DPOConfig(**dpo)

    trainer_class = PreTokenizedDPOTrainer if cfg["data"]["pretokenized"] else DPOTrainer
    trainer = trainer_class(
        model=model,
        args=training_args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=LoraConfig(**cfg["lora"]),
    )
    if cfg["init_adapter"]:
        load_init_adapter(trainer.model, cfg["init_adapter"])
    trainer.train()
    trainer.save_model(args.output_dir)
    print(f"adapter written to {args.output_dir}")


if __name__ == "__main__":
    main()
`;
