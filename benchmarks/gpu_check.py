"""A few-minute check of the trainer on one CUDA GPU: bf16 autocast speed and CPU agreement.

    PYTHONPATH=trainer-image:. python benchmarks/gpu_check.py

On a MiniLM-sized BERT (384 hidden, 6 layers; random weights, so no download is needed):
  1. training throughput (examples/s) of the same batches in fp32 and under bf16 autocast,
     with a bare loop, and of the trainer's own loop (which autocasts to bf16 on CUDA);
  2. predictions of one fixed model (random encoder, head aimed so labels vary by row) on
     the CPU (fp32), on the GPU in fp32, and on the GPU through the trainer's bf16 evaluation
     path: probabilities within tolerance, same labels wherever the CPU's decision is not a
     near-tie; the trainer's evaluate() agrees too.
Exits 0 when everything agrees, 1 on a mismatch, 2 when no CUDA GPU is present.
Needs torch, transformers and safetensors only (no boto3, no model files).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
for extra in (_HERE.parent, _HERE.parent / "trainer-image"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from transformers import BertConfig, BertForSequenceClassification  # noqa: E402

from warmstart_trainer.data import EncodedSet, batch_indices, collate, epoch_order  # noqa: E402
from warmstart_trainer.evaluate import autocast_context, evaluate  # noqa: E402
from warmstart_trainer.logs import MetricsLog  # noqa: E402
from warmstart_trainer.train_loop import LoopSettings, TrainingLoop  # noqa: E402

# all-MiniLM-L6-v2's architecture (its config.json), so the numbers carry over.
MINILM: dict[str, Any] = {
    "vocab_size": 30522,
    "hidden_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "max_position_embeddings": 512,
    "num_labels": 2,
}
FP32_TOLERANCE = 1e-3  # probabilities, GPU fp32 vs CPU fp32 (different kernels, same math)
BF16_TOLERANCE = 0.08  # probabilities, bf16 autocast keeps ~3 significant digits
NEAR_TIE = 0.1  # CPU probability margins below this may flip under bf16 rounding
LEARNING_RATE = 5e-4  # high for fine-tuning, right for a quick from-scratch fit of a toy task


TINY: dict[str, Any] = {
    **MINILM,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
}
_SIGNAL = {0: (2000, 2100), 1: (2100, 2200)}  # token-id ranges that decide the label


def synthetic_set(count: int, seed: int, min_len: int = 16, max_len: int = 96) -> EncodedSet:
    """Random token sequences; the first and a quarter of the rest come from the label's
    range, so a model learns the task in a few hundred steps and its predictions then differ
    from row to row (a random model's are all alike: no test of agreement)."""
    generator = torch.Generator().manual_seed(seed)
    rows, labels = [], []
    for index in range(count):
        label = index % 2
        length = int(torch.randint(min_len, max_len + 1, (1,), generator=generator))
        body = torch.randint(3000, 30000, (length - 2,), generator=generator)
        signal = torch.rand(length - 2, generator=generator) < 0.25
        low, high = _SIGNAL[label]
        body[signal] = torch.randint(low, high, (int(signal.sum()),), generator=generator)
        body[0] = int(torch.randint(low, high, (1,), generator=generator))  # always one, first
        rows.append(tuple([101, *body.tolist(), 102]))
        labels.append(label)
    return EncodedSet("synthetic", tuple(rows), tuple(labels))


def fresh_model(seed: int) -> Any:
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(**MINILM))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_throughput(
    data: EncodedSet, batches: list[list[int]], device: torch.device, bf16: bool, seed: int
) -> float:
    model = fresh_model(seed).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)

    def step(indices: list[int]) -> int:
        batch = collate(data, indices, 0).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        loss = F.cross_entropy(logits.float(), batch.labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        return batch.size

    for indices in batches[:3]:  # warm-up: kernel selection, allocator
        step(indices)
    synchronize(device)
    started, examples = time.perf_counter(), 0
    for indices in batches:
        examples += step(indices)
    synchronize(device)
    return examples / (time.perf_counter() - started)


def spread_head(model: Any, data: EncodedSet) -> None:
    """Aim the classification head along the direction in which the encoder's pooled outputs
    vary most over ``data``, centred, so labels split across rows with clear margins.

    A random head on a random encoder gives every row nearly the same probabilities: label
    agreement between devices would then test nothing.
    """
    model.eval()
    pooled = []
    with torch.no_grad():
        for indices in batch_indices(list(range(len(data))), 64):
            batch = collate(data, indices, 0)
            pooled.append(
                model.bert(
                    input_ids=batch.input_ids, attention_mask=batch.attention_mask
                ).pooler_output
            )
        outputs = torch.cat(pooled)
        mean = outputs.mean(dim=0)
        direction = torch.linalg.svd(outputs - mean, full_matrices=False).Vh[0]
        scale = 4.0 / float(((outputs - mean) @ direction).std())
        model.classifier.weight.copy_(torch.stack([direction, -direction]) * scale)
        offset = float(mean @ direction) * scale
        model.classifier.bias.copy_(torch.tensor([-offset, offset]))


def train_with_trainer(
    data: EncodedSet, batch_size: int, device: torch.device, seed: int
) -> tuple[float, Any]:
    """One epoch of the trainer's own loop; returns (examples/s, the trained model)."""
    settings = LoopSettings(
        max_epochs=1,
        batch_size=batch_size,
        learning_rate=LEARNING_RATE,
        weight_decay=0.01,
        warmup_ratio=0.1,
        max_grad_norm=1.0,
        patience=1,
        min_delta=0.0,
        seed=seed,
        progress_interval_s=30.0,
    )
    validation = EncodedSet("v", data.input_ids[:64], data.labels[:64])
    with tempfile.TemporaryDirectory() as scratch:
        loop = TrainingLoop(
            fresh_model(seed),
            data,
            validation,
            settings,
            pad_token_id=0,
            num_classes=2,
            device=device,
            metrics=MetricsLog(Path(scratch) / "metrics.jsonl"),
            spec_fingerprint="gpu-check",
        )
        rate = loop.run().examples_per_second
        return rate, loop.model


def probabilities(model: Any, data: EncodedSet, device: torch.device, bf16: bool) -> torch.Tensor:
    model = model.to(device).eval()
    rows = []
    with torch.no_grad():
        for indices in batch_indices(list(range(len(data))), 64):
            batch = collate(data, indices, 0).to(device)
            context = (
                autocast_context(device) if bf16 else torch.autocast(device.type, enabled=False)
            )
            with context:
                logits = model(
                    input_ids=batch.input_ids, attention_mask=batch.attention_mask
                ).logits
            rows.append(torch.softmax(logits.float(), dim=-1).cpu())
    return torch.cat(rows)


def compare(reference: torch.Tensor, other: torch.Tensor, tolerance: float) -> dict[str, Any]:
    difference = float((reference - other).abs().max())
    top2 = reference.topk(2, dim=-1).values
    decided = (top2[:, 0] - top2[:, 1]) >= NEAR_TIE
    disagree = (reference.argmax(-1) != other.argmax(-1)) & decided
    return {
        "maxAbsDifference": round(difference, 6),
        "tolerance": tolerance,
        "decided": int(decided.sum()),
        "labelDisagreements": int(disagree.sum()),
        "ok": difference <= tolerance and int(disagree.sum()) == 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-examples", type=int, default=16384)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--check-examples", type=int, default=512)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument(
        "--dry-run-on-cpu", action="store_true", help="exercise the script without a GPU"
    )
    parser.add_argument("--tiny", action="store_true", help="a 2-layer model (for dry runs)")
    args = parser.parse_args()
    if args.tiny:
        MINILM.update(TINY)
    if args.dry_run_on_cpu:
        device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    else:
        print("no CUDA GPU: nothing to check", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 must mean fp32 for the comparison
    torch.backends.cudnn.allow_tf32 = False
    cuda = device.type == "cuda"
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu (dry run)",
        "torch": torch.__version__,
        "bf16Supported": torch.cuda.is_bf16_supported() if cuda else False,
    }
    print(f"[gpu-check] {report['device']}, torch {report['torch']}", file=sys.stderr)

    train = synthetic_set(args.train_examples, args.seed)
    batches = batch_indices(epoch_order(len(train), args.seed, 0), args.batch_size)
    fp32 = bare_throughput(train, batches, device, bf16=False, seed=args.seed)
    bf16 = bare_throughput(train, batches, device, bf16=True, seed=args.seed)
    trainer, trained = train_with_trainer(train, args.batch_size, device, args.seed)
    report["throughput"] = {
        "examples": len(train),
        "batchSize": args.batch_size,
        "bareFp32ExamplesPerSecond": round(fp32, 1),
        "bareBf16ExamplesPerSecond": round(bf16, 1),
        "bf16Speedup": round(bf16 / fp32, 2),
        "trainerExamplesPerSecond": round(trainer, 1),
        "trainerVersusBareBf16": round(trainer / bf16, 3),
    }
    print(f"[gpu-check] throughput {report['throughput']}", file=sys.stderr)

    check = synthetic_set(args.check_examples, args.seed + 1)
    model = fresh_model(args.seed + 2)
    spread_head(model, check)
    cpu = probabilities(model, check, torch.device("cpu"), bf16=False)
    gpu_fp32 = probabilities(model, check, device, bf16=False)
    gpu_bf16 = probabilities(model, check, device, bf16=True)
    report["gpuFp32VersusCpu"] = compare(cpu, gpu_fp32, FP32_TOLERANCE)
    report["gpuBf16VersusCpu"] = compare(cpu, gpu_bf16, BF16_TOLERANCE)

    # The trainer's evaluate(): same loss and accuracy on the CPU and under GPU autocast.
    cpu_eval = evaluate(
        model.to("cpu"),
        check,
        batch_size=64,
        pad_token_id=0,
        num_classes=2,
        device=torch.device("cpu"),
    )
    gpu_eval = evaluate(
        model.to(device), check, batch_size=64, pad_token_id=0, num_classes=2, device=device
    )
    report["evaluate"] = {
        "cpu": cpu_eval.to_json(),
        "gpu": gpu_eval.to_json(),
        "ok": abs(cpu_eval.loss - gpu_eval.loss) <= 0.05 * max(1.0, cpu_eval.loss)
        and abs(cpu_eval.accuracy - gpu_eval.accuracy) <= 0.02,
    }
    trained_eval = evaluate(
        trained, check, batch_size=64, pad_token_id=0, num_classes=2, device=device
    )
    report["trainerLoopResult"] = {"note": "informational", **trained_eval.to_json()}
    checks = ("gpuFp32VersusCpu", "gpuBf16VersusCpu", "evaluate")
    passed = all(report[key]["ok"] for key in checks)
    report["passed"] = passed
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0 if passed else 1


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    raise SystemExit(main())
