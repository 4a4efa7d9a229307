"""A lean incremental step for generation: one character per row per call.

nn.LSTM is built for long sequences; called once per character it pays its set-up cost every
time. Here the weights are extracted once and fused:
  - layer 0's embedding and input projection are folded into one table (a row per character),
    so the first layer's input costs a gather instead of a matmul;
  - deeper layers take [x, h] @ [W_ih; W_hh] as one matmul with the two biases pre-summed;
  - state is updated in place, under inference mode.
The result is the same function as CharRNN.forward in eval mode, to float rounding.

Precision (models/precision.py `generation_plan`): the recurrent and deeper-layer products run on
int8 weights (models/quantized.py) for batches of at most `int8_max_batch` rows and on fp32 (or
bf16) weights above; the choice is made per call, from the batch in hand. At batch 1 a step is
bound by the bytes of weights it reads, and int8 reads a quarter of fp32's. The embedding table
and the head stay in float: the table costs one row per character, and the head is small (H x V).

Per-call overhead: for small models a step costs more in per-operation overhead than in
arithmetic (bench/README.md), so a step allocates nothing but its logits and creates no
views. Each batch's hidden states live in one (B, L * (H + 2)) block of rows
[p, h_0, p, h_1, ..., p, h_{L-1}], p being the int8 products' two constant columns
(models/quantized.py PAD): layer 0's product reads [p, h_0] and layer l's reads
[h_{l-1}, p, h_l], each a range of columns, so nothing is concatenated per step, and the (L, B, H)
state handed to the caller is a strided view of the block. Gates are written into buffers whose
slices (i, f, o, g) are made once per batch. A state the stepper did not make itself (from the
caller's own tensors, or after the generator drops finished rows) is copied into a new block on
that call, and the caller's tensors are updated in place as well.

Device: the weights, the block and the buffers live on the stepper's device (`device=`, the CPU
by default). int8 products are fbgemm's, a CPU kernel, so a stepper on a GPU uses its dense
weights at every batch size.
"""

from __future__ import annotations

import torch

from models.model import CharRNN, State
from models.precision import StepPlan, generation_plan
from models.quantized import PAD


class StepState(tuple):
    """A state tuple (h, c) or (h,) of (L, B, H) tensors made by a FastStepper: h is a view of
    the stepper's block of rows; `ws` holds that block and the step's buffers for this batch."""

    stepper: FastStepper
    ws: _Workspace


class _Workspace:
    def __init__(self, stepper: FastStepper, batch: int, c: torch.Tensor | None):
        L, H, P, dev = stepper.layers, stepper.hidden, len(PAD), stepper.device
        W = H + P
        self.block = torch.empty(batch, L * W, device=dev)
        self.block.view(batch, L, W)[:, :, :P] = torch.tensor(PAD, device=dev)
        self.h = self.block.as_strided((L, batch, H), (W, L * W, 1), P)  # the (L, B, H) state view
        self.hs = self.h.unbind(0)  # layer l's h, (B, H)
        self.span = [self.block[:, i * W:(i + 1) * W] for i in range(L)]  # [p, h_i]
        self.pair = [None] + [self.block[:, (i - 1) * W + P:(i + 1) * W] for i in range(1, L)]  # [h_{i-1}, p, h_i]
        self.c = c
        if stepper.cell == "gru":
            return
        G = 4 if stepper.cell == "lstm" else 1
        self.rows = torch.empty(batch, G * H, device=dev)  # layer 0's table rows
        self.gates = [torch.empty(batch, G * H, device=dev) for _ in range(L)]
        if stepper.cell == "lstm":
            self.cs = c.unbind(0)
            self.tmp = torch.empty(batch, H, device=dev)
            # gates are ordered (i, f, o, g): one sigmoid covers the first three
            self.ifo = [g[:, :3 * H] for g in self.gates]
            self.g = [g[:, 3 * H:] for g in self.gates]
            self.i = [g[:, :H] for g in self.gates]
            self.f = [g[:, H:2 * H] for g in self.gates]
            self.o = [g[:, 2 * H:3 * H] for g in self.gates]

    def state(self, stepper: FastStepper) -> StepState:
        state = StepState((self.h, self.c) if self.c is not None else (self.h,))
        state.stepper, state.ws = stepper, self
        return state


class FastStepper:
    def __init__(self, model: CharRNN, precision: str | torch.dtype | StepPlan = "fp32",
                 device: torch.device | str = "cpu"):
        """precision: a GENERATION_PRECISIONS name, a StepPlan, or a float dtype for the weights."""
        self.device = torch.device(device)
        if isinstance(precision, str):
            plan = generation_plan(precision, self.device)
        elif isinstance(precision, torch.dtype):
            plan = StepPlan(precision, 0)
        else:
            plan = precision
        cfg = model.config
        self.cell, self.layers, self.hidden = cfg.cell, cfg.layers, cfg.hidden
        self.dtype = plan.dense
        self.int8_max_batch = plan.int8_max_batch if self.device.type == "cpu" else 0  # fbgemm: CPU only
        rnn, H, P, dtype = model.rnn, cfg.hidden, len(PAD), plan.dense
        # LSTM gates are stored (i, f, g, o); reordered to (i, f, o, g) so one sigmoid covers three.
        order = (torch.cat([torch.arange(0, 2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)])
                 if self.cell == "lstm" else None)
        with torch.no_grad():
            def w(name):
                t = getattr(rnn, name).detach().float().cpu()  # built on the CPU, then moved
                return t[order] if order is not None else t

            # (V, G*H): embedding row -> layer-0 input pre-activation, biases included.
            table = model.embed.weight.detach().float().cpu() @ w("weight_ih_l0").T + w("bias_ih_l0")
            if self.cell != "gru":
                table = table + w("bias_hh_l0")
            self.table0 = table.to(dtype).contiguous()
            self.table0_f32 = table.contiguous()
            # Products as (N, K) matrices and biases, then as float (K, N) for addmm and as int8.
            # LSTM/RNN: layer 0 takes h_0; layer l takes [h_{l-1}, p, h_l] (zero rows for p).
            # GRU: hh[l] takes h_l, ih[l] takes h_{l-1}; kept apart (n = tanh(Wx + r * (Uh + b_hn))).
            hh, ih, cat = [], [], []
            for layer in range(cfg.layers):
                W_hh, b_hh = w(f"weight_hh_l{layer}"), w(f"bias_hh_l{layer}")
                W_ih, b_ih = (w(f"weight_ih_l{layer}"), w(f"bias_ih_l{layer}")) if layer else (None, None)
                if self.cell == "gru":
                    hh.append((W_hh, b_hh))
                    ih.append((W_ih, b_ih) if layer else None)
                    cat.append(None)
                elif layer == 0:
                    hh.append((W_hh, None))
                    cat.append(None)
                else:
                    hh.append(None)
                    cat.append((torch.cat([W_ih, torch.zeros(W_ih.shape[0], P), W_hh], 1), b_ih + b_hh))
            def dense(p):
                return None if p is None else (p[0].T.to(dtype).contiguous(), None if p[1] is None else p[1].to(dtype))
            self.w_hh, self.w_ih, self.w_cat = map(lambda ps: [dense(p) for p in ps], (hh, ih, cat))
            self.w_head = model.head.weight.detach().float().cpu().T.to(dtype).contiguous()  # (H, V)
            self.b_head = model.head.bias.detach().float().cpu().to(dtype)
            if self.device.type != "cpu":
                def moved(p):
                    return None if p is None else tuple(None if t is None else t.to(self.device) for t in p)

                self.table0, self.table0_f32 = self.table0.to(self.device), self.table0_f32.to(self.device)
                self.w_hh, self.w_ih, self.w_cat = ([moved(p) for p in ps] for ps in (self.w_hh, self.w_ih,
                                                                                         self.w_cat))
                self.w_head, self.b_head = self.w_head.to(self.device), self.b_head.to(self.device)
            self.q_hh = self.q_ih = self.q_cat = None
            if self.int8_max_batch > 0:
                from models.quantized import Int8Linear

                # h_l and h_{l-1} are read with the p before them ([p, h]): pad_at=0
                self.q_hh = [None if p is None else Int8Linear(*p, pad_at=0) for p in hh]
                self.q_ih = [None if p is None else Int8Linear(*p, pad_at=0) for p in ih]
                self.q_cat = [None if p is None else Int8Linear(*p) for p in cat]

    def init_state(self, batch: int) -> State:
        c = torch.zeros(self.layers, batch, self.hidden, device=self.device) if self.cell == "lstm" else None
        ws = _Workspace(self, batch, c)
        ws.h.zero_()
        return ws.state(self)

    def uses_int8(self, batch: int) -> bool:
        """Whether a step of `batch` rows runs its matrix products on int8 weights."""
        return batch <= self.int8_max_batch

    def weight_bytes(self, batch: int) -> int:
        """Bytes of weights one step of `batch` rows reads: matrices, biases, the head, a table row per row."""
        def size(t):
            return 0 if t is None else t.numel() * t.element_size()

        if self.uses_int8(batch):
            mats = sum(q.nbytes for q in self.q_hh + self.q_ih + self.q_cat if q is not None)
        else:
            mats = sum(size(w) + size(b) for p in self.w_hh + self.w_ih + self.w_cat if p is not None for w, b in [p])
        return mats + size(self.w_head) + size(self.b_head) + batch * size(self.table0[0])

    def __call__(self, ids: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """ids (B,) -> logits (B, V) float32 and the state after the step. The tensors of `state`
        are updated in place; pass the returned state to the next call (it saves a copy)."""
        if not torch.is_inference_mode_enabled():
            with torch.inference_mode():
                return self(ids, state)
        own = type(state) is StepState and state.stepper is self
        if own:
            new = state
        else:  # the caller's tensors: copy into a block of rows of ours
            ws = _Workspace(self, state[0].shape[1], state[1] if self.cell == "lstm" else None)
            ws.h.copy_(state[0])
            new = ws.state(self)
        int8 = ids.shape[0] <= self.int8_max_batch
        # A step runs on the calling thread alone. fbgemm (and MKL) split a product into one task
        # per torch thread; a step's products are small, so fork and join cost more than they save,
        # and on a shared CPU a worker that is not scheduled stalls every product: with torch's 2
        # threads on this 2-vCPU machine and the other vCPU busy, a batch-1 step took 11-13 ms
        # instead of 0.3-0.5 ms. (set_num_threads is per calling thread for OpenMP and MKL.)
        threads = torch.get_num_threads() if self.device.type == "cpu" else 1
        if threads > 1:
            torch.set_num_threads(1)
        try:
            if self.cell == "gru":
                x = self._gru(ids, new.ws, int8)
            else:
                x = self._lstm_or_rnn(ids, new.ws, int8)
            if self.dtype is torch.float32:
                logits = torch.addmm(self.b_head, x, self.w_head)
            else:
                logits = torch.addmm(self.b_head, x.to(self.dtype), self.w_head).float()
        finally:
            if threads > 1:
                torch.set_num_threads(threads)
        if not own:
            state[0].copy_(new[0])
        return logits, new

    def _lstm_or_rnn(self, ids: torch.Tensor, ws: _Workspace, int8: bool) -> torch.Tensor:
        lstm, fp32 = self.cell == "lstm", self.dtype is torch.float32
        for layer in range(self.layers):
            gates = ws.gates[layer]
            if layer == 0:
                if int8:
                    self.q_hh[0](ws.span[0], torch.index_select(self.table0_f32, 0, ids, out=ws.rows), out=gates)
                elif fp32:
                    torch.addmm(torch.index_select(self.table0, 0, ids, out=ws.rows), ws.hs[0], self.w_hh[0][0],
                                out=gates)
                else:
                    gates.copy_(torch.addmm(self.table0[ids], ws.hs[0].to(self.dtype), self.w_hh[0][0]))
            elif int8:
                self.q_cat[layer](ws.pair[layer], out=gates)
            elif fp32:
                w, b = self.w_cat[layer]
                torch.addmm(b, ws.pair[layer], w, out=gates)
            else:
                w, b = self.w_cat[layer]
                gates.copy_(torch.addmm(b, ws.pair[layer].to(self.dtype), w))
            if lstm:
                ws.ifo[layer].sigmoid_()
                ws.g[layer].tanh_()
                c = ws.cs[layer]
                c.mul_(ws.f[layer]).addcmul_(ws.i[layer], ws.g[layer])
                torch.tanh(c, out=ws.tmp)
                torch.mul(ws.o[layer], ws.tmp, out=ws.hs[layer])
            else:
                torch.tanh(gates, out=ws.hs[layer])
        return ws.hs[-1]

    def _gru(self, ids: torch.Tensor, ws: _Workspace, int8: bool) -> torch.Tensor:
        for layer in range(self.layers):
            h = ws.hs[layer]
            if int8:
                gi = self.table0_f32[ids] if layer == 0 else self.q_ih[layer](ws.span[layer - 1])
                gh = self.q_hh[layer](ws.span[layer])
            else:
                w_hh, b_hh = self.w_hh[layer]
                if layer == 0:
                    gi = self.table0[ids].float()
                else:
                    w_ih, b_ih = self.w_ih[layer]
                    gi = torch.addmm(b_ih, ws.hs[layer - 1].to(self.dtype), w_ih).float()
                gh = torch.addmm(b_hh, h.to(self.dtype), w_hh).float()
            i_r, i_z, i_n = gi.chunk(3, 1)
            h_r, h_z, h_n = gh.chunk(3, 1)
            r = (i_r + h_r).sigmoid_()
            z = (i_z + h_z).sigmoid_()
            n = (i_n + r * h_n).tanh_()
            h.sub_(n).mul_(z).add_(n)  # h' = (1 - z) * n + z * h = n + z * (h - n)
        return ws.hs[-1]
