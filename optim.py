"""The optimizer core.train steps. Knows the shared flags and the model's parameters; no task, no loop."""
import mmap

import torch
from accelerate.utils import DistributedType


def zeros_untouched(like):
    """Zeros shaped like `like` whose memory becomes resident only where it is written: an anonymous mapping, which
    the kernel fills with zeros page by page on first write (on most kernels, reading an unwritten page maps the
    shared zero page; on some it makes the page resident too). Only rows of the word-embedding matrices are
    written to: the moments of a row-wise update (only rows read too) and the kept gradient (read whole by the
    gradient norm, but after the first step's backward pass, the peak of a run whose longest batch comes first).
    torch.zeros_like writes every page, making the whole matrix resident at once. CPU tensors of 1 MB and more;
    torch.zeros_like otherwise."""
    size = like.numel() * like.element_size()
    if like.device.type != "cpu" or size < 2 ** 20:
        return torch.zeros_like(like)
    return torch.frombuffer(mmap.mmap(-1, size), dtype=like.dtype).view(like.shape)  # keeps the mapping alive


class AdamW(torch.optim.AdamW):
    """torch's AdamW, except for the parameter of a group marked "rows": a word-embedding matrix that only its
    embedding layer reads (no output layer shares it) is updated only in the rows that have ever had a gradient.
    That is exactly dense AdamW when the group's weight decay is 0: a row that never had a gradient has zero moments,
    so dense AdamW moves it by 0 / (0 + eps) = 0, bit for bit. A fine-tuning batch touches a few hundred of 30,522
    rows, and the dense update reads and writes the whole matrix and both its moments every step. The rows with a
    gradient are the token ids the embedding layer saw in training mode since the last step (watch()), gathered
    over processes; every `check_every` steps (and at the first) the gradient itself is checked against them, and a
    row outside them (a model that reads the matrix elsewhere) switches the matrix to dense updates for good, with
    a warning. The rows go through the same fused kernel as the dense update (gathered, updated, scattered back);
    once more than MOST of the rows have been touched, the whole matrix does (exact either way).
    The state is torch's own (full-size moments, the step): it saves, loads and resumes as any AdamW; the rows
    ever touched are found again from the second moment after a load. In one process the matrix's gradient is also
    kept (_keep_gradient): the layer's sparse gradient is added into one matrix, never allocated anew."""
    check_every = 200
    MOST = 0.08  # beyond this share of the rows, one dense call is cheaper

    def __init__(self, groups, **kwargs):
        super().__init__(groups, **kwargs)
        self._touched, self._seen, self._hooks, self._steps = {}, {}, {}, 0
        # one process: a gradient matrix kept for the run, the rows put in it since the step, and its layer
        self._buffer, self._written, self._layers = {}, {}, {}

    def watch(self, embedding):
        """Record the ids the embedding layer sees while training: the rows its weight will have a gradient in."""
        seen = self._seen.setdefault(embedding.weight, torch.zeros(embedding.weight.shape[0], dtype=torch.bool,
                                                                   device=embedding.weight.device))

        def hook(module, inputs):
            if module.training and torch.is_grad_enabled():
                seen[inputs[0].reshape(-1)] = True
        self._hooks[embedding.weight] = embedding.register_forward_pre_hook(hook)
        if not (torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1):
            self._keep_gradient(embedding)

    def _keep_gradient(self, embedding):
        """One process: the layer hands back a sparse gradient (the rows its ids read), which is added into one
        matrix kept for the whole run, the gradient the parameter holds; after each step only the rows written are
        zeroed again. The dense gradient a backward pass would allocate, zero-fill and page in every step (a third
        of MiniLM's parameters) is never made. Bit for bit the dense gradient: each backward pass's rows are summed
        in the order the dense kernel sums them (index_add_ over its ids), then added to the kept matrix once."""
        p = embedding.weight
        buffer = self._buffer[p] = zeros_untouched(p)
        written = self._written[p] = []
        self._layers[p], embedding.sparse = embedding, True
        nothing = torch.sparse_coo_tensor(torch.zeros(1, 0, dtype=torch.long, device=p.device),
                                          torch.zeros(0, p.shape[1], dtype=p.dtype, device=p.device), p.shape,
                                          check_invariants=False)

        def add(grad):  # before autograd accumulates it: into the kept matrix, and nothing left to accumulate
            if p.grad is not buffer:  # reset by someone else (model.zero_grad()): a zero gradient
                self._clear(p)
            if grad.is_sparse:
                rows, where = torch.unique(grad._indices()[0], return_inverse=True)
                summed = torch.zeros(len(rows), p.shape[1], dtype=grad.dtype, device=grad.device)
                buffer.index_add_(0, rows, summed.index_add_(0, where, grad._values()))
                written.append(rows)
                return nothing
            buffer.add_(grad)  # the matrix is also read outside the layer: a dense gradient
            written.append(None)
            return torch.zeros((), dtype=grad.dtype, device=grad.device).expand_as(grad)  # (no allocation)
        if getattr(p, "_kept_gradient_hook", None) is not None:  # an earlier optimizer's (a rebuilt optimizer)
            p._kept_gradient_hook.remove()
        p._kept_gradient_hook = p.register_hook(add)
        p.grad = buffer

    def _plain_gradient(self, p):
        """Back to the layer's own dense gradient (the matrix is read elsewhere too: autograd has been summing a
        sparse and a dense part, in its own order, so from the first step on the run was exact only to rounding)."""
        if p in self._buffer:
            p._kept_gradient_hook.remove()
            p._kept_gradient_hook = None
            self._layers.pop(p).sparse = False
            del self._buffer[p], self._written[p]

    def zero_grad(self, set_to_none=True):
        super().zero_grad(set_to_none)
        for p in self._buffer:
            self._clear(p)

    def _clear(self, p):
        """The kept gradient matrix zero again (only its rows written), and the parameter's gradient."""
        buffer, written = self._buffer[p], self._written[p]
        if any(rows is None for rows in written):  # a dense gradient was added
            buffer.zero_()
        else:
            for rows in written:
                buffer.index_fill_(0, rows, 0)
        written.clear()
        p.grad = buffer

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self._touched = {}

    @torch.no_grad()
    def step(self, closure=None):
        rows = [(g, p, p.grad) for g in self.param_groups if g.get("rows") for p in g["params"] if p.grad is not None]
        for _, p, _ in rows:  # the dense parameters first, by torch; these sit out
            p.grad = None
        try:
            loss = super().step(closure)
        finally:
            for _, p, grad in rows:
                p.grad = grad
        for group, p, grad in rows:
            self._step_rows(group, p, grad)
        self._steps += 1
        return loss

    def _rows(self, group, p, grad):
        """The rows to update: every row that ever had a gradient, this step's included; None for all of them."""
        seen = self._seen[p]
        if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
            seen = seen.to(torch.uint8)
            torch.distributed.all_reduce(seen, op=torch.distributed.ReduceOp.MAX)  # the gradient is everyone's
            seen = seen.bool()
        touched = self._touched.get(p)
        if touched is None:  # a fresh or loaded state: the rows ever touched have a second moment
            touched = self.state[p]["exp_avg_sq"].ne(0).any(dim=1)
        touched |= seen
        self._seen[p].zero_()
        self._touched[p] = touched
        if self._steps % self.check_every == 0 and (grad.ne(0).any(dim=1) & ~touched).any():
            print("warning: the word embeddings have a gradient outside the token ids they saw (the model reads "
                  "them elsewhere): dense AdamW from here on; --embedding_updates dense for an exact run", flush=True)
            self._plain_gradient(p)
            return self._dense_from_now(group, p)
        index = touched.nonzero().squeeze(1)
        # gathering and scattering a row costs about what the fused kernel spends on ten (bench/embedding_rows.py);
        # the touched rows only grow, so past MOST the matrix stays with torch's dense step
        return index if len(index) <= self.MOST * p.shape[0] else self._dense_from_now(group, p)

    def _dense_from_now(self, group, p):
        """The group goes to torch's own step (the same kernel over the whole matrix); no more ids to record."""
        group["rows"] = False
        if p in self._hooks:
            self._hooks.pop(p).remove()
        return None

    def _step_rows(self, group, p, grad):
        state = self.state[p]
        if not state:
            state.update(step=torch.zeros((), dtype=torch.float32, device=p.device),
                         exp_avg=zeros_untouched(p), exp_avg_sq=zeros_untouched(p))
            self._touched[p] = torch.zeros(p.shape[0], dtype=torch.bool, device=p.device)  # (no need to read them)
        index = self._rows(group, p, grad)
        state["step"] += 1
        tensors = [p, grad, state["exp_avg"], state["exp_avg_sq"]]
        if index is not None:
            tensors = [t.index_select(0, index) for t in tensors]
        torch._fused_adamw_(*[[t] for t in tensors], [], [state["step"]], amsgrad=False, lr=group["lr"],
                            beta1=group["betas"][0], beta2=group["betas"][1], weight_decay=group["weight_decay"],
                            eps=group["eps"], maximize=False, grad_scale=None, found_inf=None)
        if index is not None:
            for target, updated in zip((p, state["exp_avg"], state["exp_avg_sq"]), (tensors[0], *tensors[2:])):
                target.index_copy_(0, index, updated)


def row_embedding(model, accelerator, args):
    """The word-embedding layer when its updates can be row-wise and exact (see AdamW): its weight read by no output
    layer (a masked LM's decoder gives every row a gradient), no weight decay, no fp16 loss scaling, not sharded, not
    compiled; None otherwise."""
    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    weight = getattr(embedding, "weight", None)
    if not isinstance(embedding, torch.nn.Embedding) or not weight.requires_grad or args.weight_decay != 0:
        return None
    holders = [m for m in model.modules() if any(p is weight for p in m.parameters(recurse=False))]
    if holders != [embedding] or args.mixed_precision == "fp16" or args.torch_compile or \
            accelerator.device.type not in ("cpu", "cuda") or \
            accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP):
        return None
    return embedding


def adamw(args, accelerator, model):
    no_decay = lambda n, p: p.ndim < 2 or "norm" in n.lower()  # biases and LayerNorm weights
    embedding = row_embedding(model, accelerator, args) if args.embedding_updates == "rows" else None
    rows = None if embedding is None else embedding.weight
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad and p is not rows]
    groups = [{"params": [p for n, p in params if not no_decay(n, p)], "weight_decay": args.weight_decay},
              {"params": [p for n, p in params if no_decay(n, p)], "weight_decay": 0.0}]
    groups += [{"params": [rows], "weight_decay": 0.0, "rows": True}] if rows is not None else []
    # fused AdamW: one kernel for all parameters (5x faster than foreach on a CPU)
    fused = accelerator.device.type in ("cpu", "cuda") and accelerator.distributed_type != DistributedType.DEEPSPEED
    optimizer = AdamW(groups, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon,
                      fused=fused)
    if embedding is not None:
        optimizer.watch(embedding)
    return optimizer
