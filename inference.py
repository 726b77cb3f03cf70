"""One pass of a model over a dataset without gradients, as every evaluation and prediction makes it: the loader
(longest examples first, split over the processes) and predict(), which gathers the outputs back in dataset order.
Knows Accelerate and the shared flags; no task, no training."""
import numpy as np
import torch
from tqdm.auto import tqdm

import batches


def eval_loader(accelerator, dataset, collate_fn, args):
    """A prepared loader for predict(), longest examples first (batches.longest_first): every process takes its
    share; predict() puts the arrays back in dataset order."""
    order = batches.longest_first(dataset)
    loader = accelerator.prepare(batches.loader(dataset, args.per_device_eval_batch_size, collate_fn, args, order))
    loader.dataset_order = order
    return loader


def predict(accelerator, model, dataloader, keys=("logits",), desc="[VALID]"):
    """One pass without gradients, the model left in its mode. Returns (mean loss or None, {key: array, "labels":
    array}) gathered over processes, in dataset order (also from eval_loader's longest-first batches); variable
    lengths (dim 1) are padded with -100."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros(2, device=accelerator.device)  # sum of batch loss x real examples, real examples
    chunks, has_loss = {}, False
    bar = tqdm(dataloader, desc=desc, disable=not accelerator.is_local_main_process, dynamic_ncols=True)
    for batch in bar:
        with torch.no_grad():
            outputs = model(**batch)
        if outputs.get("loss") is not None:
            loss, size = outputs["loss"], next(v for v in batch.values() if torch.is_tensor(v)).shape[0]
            state = accelerator.gradient_state
            # the last batch of a process may be padded with repeats of the first examples; its loss must
            # cover only the real ones, or the eval loss changes with the number of processes
            real = size
            if state.end_of_dataloader and state.remainder > 0:
                real = min(max(state.remainder - accelerator.process_index * size, 0), size)
                if 0 < real < size:
                    with torch.no_grad():
                        loss = model(**{k: v[:real] if torch.is_tensor(v) else v for k, v in batch.items()})["loss"]
            loss_sum += torch.stack([loss.float() * real, torch.tensor(float(real), device=loss.device)])
            has_loss = True
            bar.set_postfix(loss=loss.item())
        found = {k: outputs[k] for k in keys}
        if keys and "labels" in batch:
            found["labels"] = batch["labels"]
        for k, t in found.items():
            if t.dim() > 1:  # note: pads to the longest sequence on any process before gathering
                t = accelerator.pad_across_processes(t, dim=1, pad_index=-100)
            chunks.setdefault(k, []).append(accelerator.gather_for_metrics(t.detach()).float().cpu().numpy())
    model.train(was_training)
    arrays = {}
    for k, parts in chunks.items():
        if parts[0].ndim > 1:
            width = max(p.shape[1] for p in parts)
            parts = [np.pad(p, [(0, 0), (0, width - p.shape[1])] + [(0, 0)] * (p.ndim - 2), constant_values=-100)
                     for p in parts]
        arrays[k] = np.concatenate(parts)
    order = getattr(dataloader, "dataset_order", None)
    if order is not None:  # batches came longest first: back to dataset order
        inverse = np.argsort(order)
        arrays = {k: a[inverse] for k, a in arrays.items()}
    total, count = accelerator.reduce(loss_sum, "sum").tolist()
    return (total / count if has_loss else None), arrays
