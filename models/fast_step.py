"""A lean incremental step for generation: one character per row per call.

nn.LSTM is built for long sequences; called once per character it pays its set-up cost every
time. Here the weights are extracted once and fused:
  - layer 0's embedding and input projection are folded into one table (a row per character),
    so the first layer's input costs a gather instead of a matmul;
  - deeper layers take [x, h] @ [W_ih; W_hh] as one matmul with the two biases pre-summed;
  - state is updated in place, under inference mode.
The result is the same function as CharRNN.forward in eval mode, to float rounding.
"""

from __future__ import annotations

import torch

from models.model import CharRNN, State


class FastStepper:
    def __init__(self, model: CharRNN, dtype: torch.dtype = torch.float32):
        cfg = model.config
        self.cell, self.layers, self.hidden, self.dtype = cfg.cell, cfg.layers, cfg.hidden, dtype
        rnn = model.rnn
        # LSTM gates are stored (i, f, g, o); reordered to (i, f, o, g) so one sigmoid covers three.
        H = cfg.hidden
        order = (torch.cat([torch.arange(0, 2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)])
                 if self.cell == "lstm" else None)
        with torch.no_grad():
            def w(name):
                t = getattr(rnn, name).detach().float()
                return t[order] if order is not None else t

            # (V, G*H): embedding row -> layer-0 input pre-activation, biases included.
            table = model.embed.weight.detach().float() @ w("weight_ih_l0").T + w("bias_ih_l0")
            if self.cell != "gru":
                table = table + w("bias_hh_l0")
            self.table0 = table.to(dtype).contiguous()
            self.w_hh, self.w_cat, self.b = [], [], []
            for layer in range(cfg.layers):
                if self.cell == "gru":
                    # GRU keeps input and hidden projections apart: n = tanh(Wx + r * (Uh + b_hn)).
                    self.w_cat.append(None if layer == 0 else w(f"weight_ih_l{layer}").T.to(dtype).contiguous())
                    self.w_hh.append(w(f"weight_hh_l{layer}").T.to(dtype).contiguous())
                    self.b.append((w(f"bias_ih_l{layer}").to(dtype), w(f"bias_hh_l{layer}").to(dtype)))
                elif layer == 0:
                    self.w_hh.append(w("weight_hh_l0").T.to(dtype).contiguous())
                    self.w_cat.append(None)
                    self.b.append(None)
                else:
                    self.w_hh.append(None)
                    self.w_cat.append(torch.cat([w(f"weight_ih_l{layer}").T, w(f"weight_hh_l{layer}").T])
                                      .to(dtype).contiguous())  # (2H, G*H)
                    self.b.append((w(f"bias_ih_l{layer}") + w(f"bias_hh_l{layer}")).to(dtype))
            self.w_head = model.head.weight.detach().float().T.to(dtype).contiguous()  # (H, V)
            self.b_head = model.head.bias.detach().float().to(dtype)

    def init_state(self, batch: int) -> State:
        zeros = torch.zeros(self.layers, batch, self.hidden)
        return (zeros, zeros.clone()) if self.cell == "lstm" else (zeros,)

    @torch.inference_mode()
    def __call__(self, ids: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """ids (B,) -> logits (B, V) float32; `state` tensors (L, B, H) are updated in place."""
        h_all = state[0]
        x = None
        for layer in range(self.layers):
            h = h_all[layer]
            if self.cell == "gru":
                x = self._gru(layer, ids, x, h)
            else:
                if layer == 0:
                    gates = torch.addmm(self.table0[ids], h.to(self.dtype), self.w_hh[0])
                else:
                    gates = torch.addmm(self.b[layer], torch.cat([x, h], 1).to(self.dtype), self.w_cat[layer])
                gates = gates.float()
                if self.cell == "lstm":
                    c, H = state[1][layer], self.hidden
                    ifo = gates[:, : 3 * H].sigmoid_()
                    g = gates[:, 3 * H :].tanh_()
                    c.mul_(ifo[:, H : 2 * H]).addcmul_(ifo[:, :H], g)
                    torch.mul(ifo[:, 2 * H :], c.tanh(), out=h)
                else:
                    h.copy_(gates.tanh_())
                x = h
        return torch.addmm(self.b_head, x.to(self.dtype), self.w_head).float(), state

    def _gru(self, layer: int, ids: torch.Tensor, x: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
        b_ih, b_hh = self.b[layer]
        gi = self.table0[ids].float() if layer == 0 else torch.addmm(b_ih, x.to(self.dtype), self.w_cat[layer]).float()
        gh = torch.addmm(b_hh, h.to(self.dtype), self.w_hh[layer]).float()
        i_r, i_z, i_n = gi.chunk(3, 1)
        h_r, h_z, h_n = gh.chunk(3, 1)
        r = (i_r + h_r).sigmoid_()
        z = (i_z + h_z).sigmoid_()
        n = (i_n + r * h_n).tanh_()
        h.sub_(n).mul_(z).add_(n)  # h' = (1 - z) * n + z * h = n + z * (h - n)
        return h
