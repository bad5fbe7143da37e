"""The hybrid model: physics baseline × a learned correction, with an ensemble and conformal
intervals. The network predicts the residual targets of epi_ml.models.data from the context
columns, the in-situ columns and a temporal encoder over the layer's sensor traces:

    traces (C × L) ──conv1d ×2──avg-pool──┐
    in-situ columns ────────────────────── ┼──MLP──► (r_thickness, r_composition) / target scale
    context columns + material ──────────┘

The output layer starts at zero, so an untrained member is the physics baseline. Members differ
by seed (initialisation and batch order); their mean is the prediction and their spread the
epistemic part of the interval (Lakshminarayanan et al. 2017, "Deep Ensembles"). Training drops
the in-situ inputs of a random share of the layers, so one model also predicts from a recipe.
Early stopping watches the validation epochs (epi_ml.models.data.split_by_epoch). CUDA when
present, with bfloat16 autocast; else the CPU. Seeds fix everything the CPU does.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from epi_ml.models.data import Encoded, InputSpec

IN_SITU_DROPOUT = 0.3  # share of training layers seen as recipes (no sensors)


@dataclass
class HyperParameters:
    # small and strongly regularised: a few thousand noisy measured layers (bench_models)
    hidden: int = 32
    trace_channels: int = 16
    dropout: float = 0.3
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    batch_size: int = 128
    max_epochs: int = 400
    patience: int = 40
    members: int = 5
    huber_delta: float = 2.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class HybridResidualNet(nn.Module):
    def __init__(self, n_context: int, n_in_situ: int, n_traces: int, hp: HyperParameters):
        super().__init__()
        ch = hp.trace_channels
        self.trace_encoder = nn.Sequential(
            nn.Conv1d(n_traces, ch, kernel_size=5, padding=2),
            nn.GELU(),
            nn.Conv1d(ch, ch, kernel_size=5, padding=2, stride=2),
            nn.GELU(),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
        )
        self.body = nn.Sequential(
            nn.Linear(n_context + n_in_situ + ch + 1, hp.hidden),
            nn.GELU(),
            nn.Dropout(hp.dropout),
            nn.Linear(hp.hidden, hp.hidden),
            nn.GELU(),
            nn.Dropout(hp.dropout),
        )
        self.head = nn.Linear(hp.hidden, 2)
        # a linear path beside the MLP ("wide and deep", Cheng et al. 2016): most of the
        # correction is close to linear in the RHEED reading and the layer's time
        self.wide = nn.Linear(n_context + n_in_situ + 1, 2)
        for layer in (self.head, self.wide):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(
        self, context: torch.Tensor, in_situ: torch.Tensor, traces: torch.Tensor, has: torch.Tensor
    ) -> torch.Tensor:
        gate = has.unsqueeze(1)
        encoded = self.trace_encoder(traces) * gate
        tabular = torch.cat([context, in_situ * gate, gate], dim=1)
        x = torch.cat([context, in_situ * gate, encoded, gate], dim=1)
        return self.head(self.body(x)) + self.wide(tabular)


@dataclass
class TrainReport:
    epochs: list[int] = field(default_factory=list)
    best_validation_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    samples_seen: int = 0

    @property
    def samples_per_s(self) -> float:
        return self.samples_seen / self.seconds if self.seconds > 0 else math.nan


def _tensors(data: Encoded, device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(
        torch.as_tensor(a, device=device)
        for a in (data.context, data.in_situ, data.traces, data.has_in_situ, data.targets)
    )


def masked_loss(predicted: torch.Tensor, targets: torch.Tensor, delta: float) -> torch.Tensor:
    """Huber loss over the measured targets only (a fault's outlier must not dominate)."""
    known = torch.isfinite(targets)
    if not known.any():
        return predicted.sum() * 0.0
    diff = predicted[known] - targets[known]
    return nn.functional.huber_loss(diff, torch.zeros_like(diff), delta=delta)


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)


def train_member(
    spec: InputSpec,
    train: Encoded,
    validation: Encoded,
    hp: HyperParameters,
    seed: int,
    device: torch.device,
    report: TrainReport | None = None,
    on_epoch: Any = None,
) -> tuple[HybridResidualNet, float]:
    """One member, early-stopped on the validation loss. `on_epoch(epoch, loss)` may raise to
    stop (Optuna's pruning)."""
    generator = seed_everything(seed)
    model = HybridResidualNet(spec.n_context, spec.n_in_situ, len(spec.trace_names), hp).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp.learning_rate, weight_decay=hp.weight_decay)
    context, situ, traces, has, targets = _tensors(train, device)
    v_context, v_situ, v_traces, v_has, v_targets = _tensors(validation, device)
    autocast = device.type == "cuda"
    best, best_state, best_epoch, waited = math.inf, copy.deepcopy(model.state_dict()), 0, 0
    n = len(train)
    started = time.perf_counter()
    for epoch in range(hp.max_epochs):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        drop = (torch.rand(n, generator=generator) < IN_SITU_DROPOUT).to(device)
        for start in range(0, n, hp.batch_size):
            rows = order[start : start + hp.batch_size]
            batch_has = torch.where(drop[rows], torch.zeros_like(has[rows]), has[rows])
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
                predicted = model(context[rows], situ[rows], traces[rows], batch_has)
            loss = masked_loss(predicted.float(), targets[rows], hp.huber_delta)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if report is not None:
            report.samples_seen += n
        model.eval()
        with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
            v_loss = float(masked_loss(model(v_context, v_situ, v_traces, v_has).float(), v_targets, hp.huber_delta))
        if on_epoch is not None:
            on_epoch(epoch, v_loss)
        if v_loss < best - 1e-6:
            best, best_epoch, waited = v_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
            if waited >= hp.patience:
                break
    if report is not None:
        report.seconds += time.perf_counter() - started
        report.epochs.append(best_epoch + 1)
        report.best_validation_loss.append(best)
    model.load_state_dict(best_state)
    model.eval()
    return model, best


def predict_members(
    members: list[HybridResidualNet], data: Encoded, device: torch.device, batch: int = 4096
) -> np.ndarray:
    """(members, n, 2) scaled residuals."""
    out = []
    with torch.no_grad():
        for model in members:
            model.eval()
            parts = []
            for start in range(0, len(data), batch):
                chunk = data.take(np.arange(start, min(start + batch, len(data))))
                context, situ, traces, has, _ = _tensors(chunk, device)
                parts.append(model(context, situ, traces, has).float().cpu().numpy())
            out.append(np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.float32))
    return np.stack(out)
