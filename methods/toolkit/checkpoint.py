"""Weights files: the one record the learned methods, ``bench train`` and ``bench export`` all read or write.

A weights file (``.pth``: ``bench train``'s ``best.pth``, a shipped ``methods/weights/<network>.pth``, an
exported ``model.pth``) is a ``torch.save`` dictionary::

    {"format": CHECKPOINT_FORMAT, "network": "<learned method name>", "config": {constructor arguments},
     "state_dict": {...}, "card": {model card: data, steps, validation score, commit, ...}}

A training checkpoint (``last.pt``) adds the ``TrainingState`` fields (optimiser, schedule, step, best
score, history, the training settings), so training can resume. ``Checkpoint.load`` checks every field and
names the file and the field at fault.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import BenchError, first_line
from bench.core.files import atomic_write_bytes

CHECKPOINT_FORMAT = "raw-bench-checkpoint-1"
_TRAINING_FIELDS = ("optimizer", "schedule", "step", "best_score", "history", "train_config")


@dataclass
class TrainingState:
    """What a training checkpoint holds beyond the weights: enough to resume exactly."""

    optimizer: dict
    schedule: dict
    step: int
    best_score: float
    history: list
    train_config: dict


@dataclass
class Checkpoint:
    """A network's weights with what rebuilds it (``network``, ``config``) and its model ``card``."""

    network: str
    config: dict
    state_dict: dict
    card: dict
    training: TrainingState | None = None

    @classmethod
    def of(cls, network: str, net, card: dict, training: TrainingState | None = None) -> "Checkpoint":
        """The checkpoint of torch module ``net`` (its ``config`` attribute and weights, copied to the CPU)."""
        state = {key: value.detach().cpu().clone() for key, value in net.state_dict().items()}
        return cls(network, dict(net.config), state, card, training)

    def save(self, path: Path) -> None:
        """Write it atomically with ``torch.save``. Serialised in memory first, so the file's bytes depend
        only on its content (torch names the archive inside after the file it writes to)."""
        import torch

        data = {"format": CHECKPOINT_FORMAT, "network": self.network, "config": self.config,
                "state_dict": self.state_dict, "card": self.card}
        if self.training is not None:
            data.update(dataclasses.asdict(self.training))
        buffer = io.BytesIO()
        torch.save(data, buffer)
        atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> "Checkpoint":
        """Read and check a weights or training checkpoint; BenchError naming the file (and field) when it is
        not a whole one."""
        import torch

        path = Path(path)
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise BenchError(f"{path}: weights file not found") from None
        except Exception as exc:  # torch raises many kinds for a damaged or foreign file
            raise BenchError(f"{path}: not a readable weights file ({first_line(exc)})") from None
        if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
            raise BenchError(f"{path}: not a raw-bench weights file (no format {CHECKPOINT_FORMAT!r})")
        expected = {"network": str, "config": dict, "state_dict": dict, "card": dict}
        for name, kind in expected.items():
            if not isinstance(data.get(name), kind):
                raise BenchError(f"{path}: {name} is {type(data.get(name)).__name__}, not {kind.__name__}")
        training = None
        if any(name in data for name in _TRAINING_FIELDS):
            missing = [name for name in _TRAINING_FIELDS if name not in data]
            if missing:
                raise BenchError(f"{path}: a training checkpoint without {', '.join(missing)}")
            training = TrainingState(*(data[name] for name in _TRAINING_FIELDS))
        return cls(data["network"], data["config"], data["state_dict"], data["card"], training)
