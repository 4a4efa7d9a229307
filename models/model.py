"""CharRNN: embedding -> N stacked recurrent layers (LSTM, GRU or vanilla RNN) -> linear head."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}

# A recurrent state is a tuple of (layers, batch, hidden) tensors: (h, c) for LSTM, (h,) otherwise.
State = tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    cell: str = "lstm"  # lstm | gru | rnn (vanilla tanh)
    layers: int = 2  # stacked recurrent layers
    hidden: int = 512  # units per layer
    embedding: int = 0  # embedding width; 0 means the same as `hidden`
    dropout: float = 0.1  # between layers and before the head (training only)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "layers", "hidden", "embedding"):  # a header may say anything
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
        if not isinstance(self.dropout, int | float) or isinstance(self.dropout, bool):
            raise ValueError(f"dropout must be a number, got {self.dropout!r}")
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        if self.vocab_size < 2 or self.layers < 1 or self.hidden < 1 or self.embedding < 0:
            raise ValueError(f"invalid model size: {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def embedding_dim(self) -> int:
        return self.embedding or self.hidden

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        if not isinstance(data, dict):
            raise ValueError(f"the model config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)


class CharRNN(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.rnn = CELLS[config.cell](
            config.embedding_dim,
            config.hidden,
            num_layers=config.layers,
            dropout=config.dropout if config.layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.vocab_size)

    @property
    def is_lstm(self) -> bool:
        return self.config.cell == "lstm"

    def init_state(self, batch: int) -> State:
        c = self.config
        zeros = torch.zeros(c.layers, batch, c.hidden, device=self.head.weight.device)
        return (zeros, zeros.clone()) if self.is_lstm else (zeros,)

    def forward(self, idx: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """idx (B, T) int64 -> logits (B, T, V) and the state after the last step."""
        x = self.embed(idx)  # (B, T, E)
        out, new_state = self.rnn(x, self._to_torch(state))  # (B, T, H)
        logits = self.head(self.drop(out))  # (B, T, V)
        return logits, self._from_torch(new_state)

    def run_packed(self, padded: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, State]:
        """Burn in prompts of different lengths at once (zero initial state).

        padded (B, T) right-padded ids, lengths (B,) >= 1 -> logits at each row's last
        position (B, V) and each row's state after its last character.
        """
        x = self.embed(padded)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)  # (B, T, H)
        last = out[torch.arange(out.shape[0], device=out.device), lengths.to(out.device) - 1]  # (B, H)
        return self.head(last), self._from_torch(state)

    def _to_torch(self, state: State | None):
        if state is None:
            return None
        return (state[0], state[1]) if self.is_lstm else state[0]

    def _from_torch(self, state) -> State:
        return tuple(state) if self.is_lstm else (state,)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
