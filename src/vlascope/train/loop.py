"""The training loop: one function you can read top to bottom.

Data: every frame is stored once and each window is a row of frame indices (data.WindowDataset
.tables); batches are drawn by random index. The tables live on the GPU when they fit (no
loader at all), otherwise in pinned CPU memory, gathered there and copied asynchronously.
Optimisation: AdamW, linear warm-up then cosine decay, gradient-norm clipping (the loss itself
is never clipped: that hides the exploding gradients it is meant to prevent), EMA weights used
for evaluation, bf16 autocast on GPU, optional torch.compile.
Several processes (`accelerate launch -m vlascope train ...`): the policy is wrapped in
DistributedDataParallel through accelerate, each process draws its own batches, and process 0
logs and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import hashlib
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from tqdm import tqdm

from vlascope.configs import build_config
from vlascope.data import TaskSet, WindowDataset, read_dataset
from vlascope.data.episodes import by_task
from vlascope.devices import resolve_device
from vlascope.errors import VlascopeError
from vlascope.fileio import atomic_path
from vlascope.optim import adamw, warmup_cosine
from vlascope.policies import build_for_episodes, check_fits, make_config
from vlascope.train.checkpoint import save_checkpoint


@dataclass
class TrainConfig:
    steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-6
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    log_every: int = 25
    ckpt_every: int = 1000  # 0: only the final checkpoint
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast, on CUDA only
    compile: bool = False  # torch.compile the training step (minutes of compile time first)
    # torch.compile's mode for the training step: "reduce-overhead" replays the compiled forward
    # and backward as CUDA graphs, one launch each instead of hundreds of kernel launches, for a
    # step whose GPU waits on the CPU that launches its kernels.
    compile_mode: str = "default"
    data_on_device: str = "auto"  # "auto" (when it fits in half the free GPU memory) | "yes" | "no"
    # Several processes with compile: dynamo's DDP optimiser splits the compiled graph at DDP's
    # gradient buckets so that each bucket's all-reduce overlaps the rest of the backward. The
    # split graphs fuse less and launch more; where the all-reduce is cheap (GPUs of one host on
    # NVLink) one whole graph, all-reduced after its backward, is the better trade.
    ddp_split_graph: bool = False
    # DistributedDataParallel's own options (see torch's docs): gradients that are views into the
    # all-reduce buckets (no copy in or out), and a graph declared static, which lets DDP skip
    # its per-step search for unused parameters and rebuild its buckets once.
    ddp_gradient_as_bucket_view: bool = False
    ddp_static_graph: bool = False
    # Average each gradient bucket once, in the communication hook that all-reduces it (torch's
    # allreduce_hook), instead of DDP dividing every gradient by the number of processes as it
    # copies it in: one division a bucket, not one a parameter tensor. With the step replayed as
    # CUDA graphs, DDP's per-tensor work is much of what several processes add to the host's
    # step; with ddp_gradient_as_bucket_view the copies back out of the buckets go too.
    ddp_average_per_bucket: bool = False
    profile_steps: int = 0  # profile this many steps before the last; process 0 writes profile.txt
    # `lr` is the rate for one process's batch. N processes take N times the samples a step:
    # "sqrt" multiplies the rate by sqrt(N) (Malladi et al. 2022's rule for Adam), "linear" by N
    # (Goyal et al. 2017's, for SGD); "none" keeps it, as LeRobot and diffusion_policy do.
    lr_scaling: str = "none"

    def __post_init__(self):
        if self.lr_scaling not in LR_SCALINGS:
            raise VlascopeError(f"train option 'lr_scaling' must be one of {', '.join(LR_SCALINGS)}, "
                                f"got {self.lr_scaling!r}")


# The learning rate's factor for a number of processes, by TrainConfig.lr_scaling.
LR_SCALINGS = {"none": lambda processes: 1.0, "sqrt": math.sqrt, "linear": float}


def scaled_lr(cfg: TrainConfig, processes: int) -> float:
    """The learning rate `processes` training processes use (TrainConfig.lr_scaling)."""
    return cfg.lr * LR_SCALINGS[cfg.lr_scaling](processes)


@dataclass
class TrainResult:
    run_dir: Path
    last_checkpoint: Path
    final_loss: float
    seconds: float
    samples_per_second: float
    ema: torch.nn.Module | None = None  # the trained (EMA) policy, in memory


def load_config_file(path: str | None) -> dict:
    """A YAML/JSON file with optional `train:` and `policy:` sections."""
    if path is None:
        return {}
    p = Path(path)
    if not p.exists():
        raise VlascopeError(f"{path}: no such config file")
    try:
        cfg = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise VlascopeError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(cfg, dict) or set(cfg) - {"train", "policy"}:
        raise VlascopeError(f"{path}: expected a mapping with 'train' and/or 'policy' sections")
    for section, values in cfg.items():
        if values is not None and not isinstance(values, dict):
            raise VlascopeError(f"{path}: '{section}' must be a mapping of option: value, got {values!r}")
    return cfg


def check_config_file(path: str, cfg: dict, policy: str) -> None:
    """Each section of a config file read as its config is built, so that a bad option is named
    with the file it is in (the command line may override other options of that section)."""
    from vlascope.policies.factory import make_config

    make_config(policy)  # an unknown policy name is the command line's fault, not the file's
    for section, build in (("train", make_train_config), ("policy", lambda v: make_config(policy, v))):
        try:
            build(dict(cfg.get(section) or {}))
        except VlascopeError as exc:
            raise VlascopeError(f"{path}: {section}: {exc}") from None


def make_train_config(overrides: dict) -> TrainConfig:
    return build_config(TrainConfig, overrides, "train")


def ddp_options(cfg: TrainConfig):
    """accelerate's handler for the DistributedDataParallel options the config sets."""
    from accelerate import DistributedDataParallelKwargs

    return DistributedDataParallelKwargs(gradient_as_bucket_view=cfg.ddp_gradient_as_bucket_view,
                                         static_graph=cfg.ddp_static_graph)


def average_per_bucket(model: torch.nn.parallel.DistributedDataParallel) -> None:
    """Let `model`'s all-reduce average each gradient bucket as a whole (see
    TrainConfig.ddp_average_per_bucket)."""
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    model.register_comm_hook(None, allreduce_hook)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, step: int, max_decay: float) -> None:
    # Warm-up the decay so early EMA weights are not dominated by the random init.
    decay = min(max_decay, (1 + step) / (10 + step))
    # One multi-tensor kernel instead of one lerp per parameter tensor (hundreds of launches).
    torch._foreach_lerp_(list(ema.parameters()), [p.detach() for p in model.parameters()], 1 - decay)


def prepare_data(dataset_paths: list[str], obs_keys: list[str], skip_bad_demos: bool = False):
    # A LeRobot folder of several tasks trains as its tasks, as one file per task would.
    datasets = [part for p in dataset_paths for part in by_task(read_dataset(p))]
    for d in datasets:
        kept = []
        for ep in d.episodes:
            problem = ep.first_non_finite([k for k in obs_keys if k in ep.obs])
            if problem is None:
                kept.append(ep)
            elif skip_bad_demos:
                print(f"warning: {d.path}: skipping data/{ep.name} ({problem})", file=sys.stderr)
            else:
                raise VlascopeError(f"{d.path}: data/{ep.name}/{problem}; one NaN poisons every "
                                    "gradient: repair it, or pass --skip-bad-demos to train without "
                                    "such demos")
        if not kept:
            raise VlascopeError(f"{d.path}: every demo holds NaN or inf values; nothing to train on")
        d.episodes = kept
    for d in datasets:
        missing = [k for k in obs_keys if k not in d.obs_shapes]
        if missing:
            raise VlascopeError(f"{d.path}: observation key(s) {missing} not in the dataset "
                                f"(has: {', '.join(sorted(d.obs_shapes))})")
    first = datasets[0]
    for d in datasets[1:]:
        if d.action_dim != first.action_dim:
            raise VlascopeError(f"{d.path}: action dim {d.action_dim} differs from "
                                f"{first.path}'s {first.action_dim}")
    tasks = TaskSet.of(datasets)
    episodes, task_indices = [], []
    for d in datasets:
        episodes += d.episodes
        task_indices += [tasks.names.index(d.task)] * len(d.episodes)
    return datasets, episodes, task_indices, tasks


def seed_process(seed: int, rank: int, step: int, batches: torch.Generator) -> None:
    """Seed process `rank` of several that train one policy, from `step` on: its batch order and
    every draw of its forward pass (flow times and noise, crops, jitter, dropout) are its own.
    Seeded alike, N processes would repeat one process's draws on N different batches, and the
    averaged gradient would see N times the data but not N times the noise. DDP makes the
    weights agree whatever the seeds: it broadcasts process 0's at the start. A checkpoint holds
    process 0's generators only, so a resumed process seeds again from its step."""
    base = seed + rank + 1_000_003 * step
    batches.manual_seed(base)
    torch.manual_seed(base + 2**32)  # every device's generator, on a stream apart from the batches'


class BatchSource:
    """Random training batches from a dataset's frame tables, on `device`.

    On the GPU when the tables fit in half the free memory (or `on_device` says so); otherwise
    the frames stay in pinned CPU memory, each batch is gathered there into a pinned buffer and
    copied with non_blocking=True.
    """

    def __init__(self, tables: dict, batch_size: int, device: torch.device, seed: int,
                 on_device: str = "auto"):
        self.batch_size = batch_size
        self.device = device
        self.n = len(tables["obs_index"])
        size = sum(t.numel() * t.element_size() for t in tables["frames"].values())
        if device.type != "cuda" or on_device == "yes":
            self.resident = True
        elif on_device == "no":
            self.resident = False
        else:
            self.resident = size < 0.5 * torch.cuda.mem_get_info(device)[0]
        self.bytes = size
        home = device if self.resident else torch.device("cpu")
        self.tables = {k: ({n: t.to(home) for n, t in v.items()} if isinstance(v, dict) else v.to(home))
                       for k, v in tables.items()}
        self.pinned = not self.resident and torch.cuda.is_available()
        if self.pinned:
            self.tables["frames"] = {k: v.pin_memory() for k, v in self.tables["frames"].items()}
        self.buffers = {}
        self.generator = torch.Generator(device=home).manual_seed(seed)

    def gather(self, idx: torch.Tensor) -> dict:
        t = self.tables
        obs_rows, act_rows = t["obs_index"][idx], t["action_index"][idx]
        if self.resident:
            obs = {k: v[obs_rows] for k, v in t["frames"].items()}
        else:
            obs = {}
            for k, v in t["frames"].items():
                rows = obs_rows.flatten()
                buf, copied = self.buffers.get((k, len(rows)), (None, None))
                if buf is None:
                    buf = torch.empty((len(rows), *v.shape[1:]), dtype=v.dtype)
                    buf = buf.pin_memory() if self.pinned else buf
                if copied is not None:
                    copied.synchronize()  # the previous batch's copy out of this buffer is done
                torch.index_select(v, 0, rows, out=buf)
                obs[k] = buf.view(*obs_rows.shape, *v.shape[1:]).to(self.device, non_blocking=True)
                event = torch.cuda.Event() if self.pinned else None
                if event is not None:
                    event.record()
                self.buffers[(k, len(rows))] = (buf, event)
        return {"obs": obs, "action": t["actions"][act_rows].to(self.device, non_blocking=True),
                "task_index": t["task_index"][idx].to(self.device, non_blocking=True)}

    def sample(self) -> dict:
        idx = torch.randint(0, self.n, (self.batch_size,), device=self.generator.device,
                            generator=self.generator)
        return self.gather(idx)


def train(dataset_paths: list[str], policy_name: str, out_dir: str | Path,
          train_config: TrainConfig | None = None, policy_overrides: dict | None = None,
          progress: bool = True, skip_bad_demos: bool = False) -> TrainResult:
    cfg = train_config or TrainConfig()
    config = make_config(policy_name, policy_overrides)
    datasets, episodes, task_indices, tasks = prepare_data(dataset_paths, config.data_keys,
                                                           skip_bad_demos)
    torch.manual_seed(cfg.seed)
    policy = build_for_episodes(policy_name, policy_overrides, episodes, tasks)
    extra = {"data": {"paths": [str(p) for p in dataset_paths], "tasks": tasks.names,
                      "num_demos": len(episodes)}}
    return fit(policy, policy_name, episodes, task_indices, out_dir, cfg, extra, progress)


def resume(run_dir: str | Path, steps: int | None = None, progress: bool = True) -> TrainResult:
    """Continue a run from its newest complete checkpoint: weights, EMA, optimiser, scheduler,
    step, and every random generator, so the loss curve continues as if never interrupted."""
    from vlascope.policies.factory import load_pretrained, load_weights
    from vlascope.train.checkpoint import latest_checkpoint

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise VlascopeError(f"{run_dir}: not a training run (no config.yaml)")
    ckpt = latest_checkpoint(run_dir)
    for stale in (run_dir / "checkpoints").glob(".*.tmp"):  # saves a crash interrupted
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink()
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    cfg = make_train_config({**saved["train"], **({"steps": steps} if steps else {})})
    paths = saved["data"]["paths"]
    policy = load_pretrained(ckpt, weights="model")
    ema = copy.deepcopy(policy)  # one build: a Hugging Face backbone is loaded once
    load_weights(ema, ckpt, "ema")
    datasets, episodes, task_indices, _ = prepare_data(paths, policy.config.data_keys)
    for d in datasets:  # the data may have changed since the run started
        check_fits(policy.config, d.obs_shapes, d.action_dim, d.path)
    try:
        # weights_only: tensors and plain values; a pickled object (code) is refused, not run.
        state = torch.load(ckpt / "train_state.pt", weights_only=True)
    except Exception as exc:  # UnpicklingError, or a truncated file
        raise VlascopeError(f"{ckpt / 'train_state.pt'}: not loaded ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:160]}); vlascope only reads tensors and "
                            "plain values from it") from None
    if state["step"] >= cfg.steps:
        raise VlascopeError(f"{ckpt}: the run already reached step {state['step']} of {cfg.steps}; "
                            "pass --steps to train further")
    extra = {k: v for k, v in saved.items() if k not in ("policy_name", "policy", "train")}
    return fit(policy, saved["policy_name"], episodes, task_indices, run_dir, cfg, extra, progress,
               resume_state={**state, "ema": ema})


def fit(policy: torch.nn.Module, policy_name: str, episodes: list, task_indices: list[int] | None,
        out_dir: str | Path, cfg: TrainConfig, extra: dict | None = None,
        progress: bool = True, resume_state: dict | None = None) -> TrainResult:
    """Train `policy` on every window of `episodes`; logs and checkpoints go to `out_dir`.
    `resume_state` (see `resume`) continues a run from one of its checkpoints."""
    run_dir = Path(out_dir)
    from torch._inductor import list_mode_options

    modes = list(list_mode_options())  # the modes torch.compile accepts
    if cfg.compile_mode not in modes:
        raise VlascopeError(f"train option 'compile_mode' must be one of {', '.join(modes)}, "
                            f"got {cfg.compile_mode!r}")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    accelerator = None
    if world > 1:  # launched by `accelerate launch` (or torchrun): one process per device
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=cfg.device == "cpu", kwargs_handlers=[ddp_options(cfg)])
        device = accelerator.device
    else:
        device = resolve_device(cfg.device)
    rank = accelerator.process_index if accelerator else 0
    main = rank == 0
    torch.manual_seed(cfg.seed)  # several processes are then seeded apart (seed_process, below)
    policy = policy.to(device)
    ema = (resume_state["ema"] if resume_state else copy.deepcopy(policy)).to(device)
    ema.eval().requires_grad_(False)
    cfg_ = policy.config
    tables = WindowDataset(episodes, cfg_.data_keys, cfg_.n_obs_steps, cfg_.horizon,
                           task_indices).tables()
    data = BatchSource(tables, cfg.batch_size, device, cfg.seed + rank, cfg.data_on_device)
    n = data.n

    trainable = [p for p in policy.parameters() if p.requires_grad]
    optimizer = adamw(trainable, scaled_lr(cfg, world), cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(cfg.warmup_steps, cfg.steps))
    amp = cfg.amp and device.type == "cuda"
    first_step = 0
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        first_step = int(resume_state["step"])
        if world == 1:
            torch.set_rng_state(resume_state["torch_rng"])
            if device.type == "cuda" and "cuda_rng" in resume_state:
                torch.cuda.set_rng_state(resume_state["cuda_rng"], device)
            data.generator.set_state(resume_state["batch_rng"].to(data.generator.get_state().device))
    if world > 1:
        seed_process(cfg.seed, rank, first_step, data.generator)
    model = accelerator.prepare_model(policy) if accelerator else policy
    if accelerator is not None and cfg.ddp_average_per_bucket:
        average_per_bucket(model)
    if cfg.compile and accelerator is not None:
        torch._dynamo.config.optimize_ddp = cfg.ddp_split_graph
    step_fn = torch.compile(model, mode=cfg.compile_mode) if cfg.compile else model
    # CUDA graphs reuse their output memory: each step is declared new, so that the last step's
    # outputs (the loss, the gradients already consumed) may be overwritten. Which modes replay
    # graphs is torch's to say.
    graphs = False
    if cfg.compile and device.type == "cuda":
        from torch._inductor import list_mode_options

        graphs = bool(list_mode_options(cfg.compile_mode).get("triton.cudagraphs"))
    profiler = None
    profile_from = cfg.steps - cfg.profile_steps - 1 if cfg.profile_steps else None

    extra = {"train": dataclasses.asdict(cfg), **(extra or {})}
    extra.setdefault("data", {}).update(num_windows=n, on_device=data.resident,
                                        frame_bytes=data.bytes)
    extra["distributed"] = {"world_size": world, "lr": scaled_lr(cfg, world)}
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(run_dir / "config.yaml") as tmp:
            tmp.write_text(yaml.safe_dump({"policy_name": policy_name,
                                           "policy": dataclasses.asdict(policy.config), **extra}))
        kept = []
        if resume_state is not None and (run_dir / "loss.csv").exists():
            # Rows logged after the checkpoint belong to the lost tail: they are redone.
            with open(run_dir / "loss.csv", newline="") as f:
                kept = [r for r in list(csv.reader(f))[1:] if r and int(r[0]) <= first_step]
    # loss.csv is (re)written at the first log, when the policy's loss terms are known: the
    # columns after samples_per_s are the terms its loss sums (the action term, an auxiliary
    # target, a KL), where it has more than one.
    log_file = log = None

    start = time.time()
    last_log = (start, first_step)
    # The loss stays on the device between log steps: reading it every step (.item()) would make
    # the CPU wait for the GPU each step instead of queueing the next one. A non-finite loss is
    # remembered there (its step and value) and reported at the next log or checkpoint, before
    # anything is saved.
    running = None
    first_bad = torch.tensor(-1, device=device)
    bad_value = torch.tensor(0.0, device=device)
    bar = tqdm(range(first_step, cfg.steps), desc=f"train {policy_name}",
               disable=not (progress and main), mininterval=0.5, initial=first_step, total=cfg.steps)
    policy.train()
    for step in bar:
        if step == profile_from and main:
            profiler = start_profiler(device)
        # While profiling, the loop's own parts are labelled (the optimiser and autograd label theirs).
        part = torch.profiler.record_function if profiler is not None else contextlib.nullcontext
        with part("vlascope.sample_batch"):
            batch = data.sample()
        # Before the forward: under CUDA graphs the last step's gradients live in graph memory
        # that this step's replay reuses.
        optimizer.zero_grad(set_to_none=True)
        if graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss, info = step_fn(batch)
        detached = loss.detach().float().clone() if graphs else loss.detach().float()
        seen = torch.isfinite(detached) | (first_bad >= 0)
        first_bad = torch.where(seen, first_bad, step)
        bad_value = torch.where(seen, bad_value, detached)
        loss.backward()
        with part("vlascope.clip_grad_norm"):
            grad_norm = torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        with part("vlascope.ema_update"):
            ema_update(ema, policy, step, cfg.ema_decay)

        running = detached if running is None else 0.95 * running + 0.05 * detached
        done = step + 1
        if profiler is not None and done == cfg.steps - 1:
            write_profile(profiler, device, run_dir / "profile.txt", cfg.profile_steps, world)
            profiler = None
        # Step 1 is always logged: the doctor compares it with the objective's expected start.
        log_now = done == 1 or done % cfg.log_every == 0 or done == cfg.steps
        save_now = (cfg.ckpt_every and done % cfg.ckpt_every == 0) or done == cfg.steps
        if (log_now or save_now) and first_bad.item() >= 0:
            raise VlascopeError(f"training diverged: loss is {bad_value.item()} at step "
                                f"{first_bad.item()}; run `vlascope doctor` on the dataset")
        if main and log_now:
            value = loss.item()
            now = time.time()
            sps = world * (done - last_log[1]) * cfg.batch_size / max(now - last_log[0], 1e-9)
            last_log = (now, done)
            terms = sorted(k for k in info if k != "loss")
            if log is None:
                with atomic_path(run_dir / "loss.csv") as tmp:
                    with open(tmp, "w", newline="") as f:
                        csv.writer(f).writerows([["step", "loss", "grad_norm", "lr", "samples_per_s", *terms],
                                                 *kept])
                log_file = open(run_dir / "loss.csv", "a", newline="")
                log = csv.writer(log_file)
            log.writerow([done, f"{value:.6f}", f"{float(grad_norm):.4f}",
                          f"{scheduler.get_last_lr()[0]:.3e}", f"{sps:.1f}",
                          *(f"{float(info[k]):.6f}" for k in terms)])
            log_file.flush()
            bar.set_postfix(loss=f"{running.item():.4f}", samples_s=f"{sps:.0f}")
        if accelerator is not None and done == cfg.steps:  # collective: every process calls it
            extra["distributed"]["replicas_in_sync"] = replicas_in_sync(policy, accelerator)
            extra["distributed"]["draws"] = "own" if draws_apart(device, accelerator) else "shared"
        if main and save_now:
            save_checkpoint(run_dir, done, policy, ema, policy_name, optimizer, scheduler,
                            {**extra, "train_loss": running.item()}, data.generator.get_state())
    bar.close()
    if accelerator is not None:
        # Taken down in order, every process at the same point: DDP's wrapper (which holds the
        # process group) released while the group and every peer are alive, then the group left
        # together. Left to the interpreter's exit, the order is arbitrary, and a process that
        # frees its group after a peer has gone can hang or abort.
        accelerator.wait_for_everyone()
        del model, step_fn
        accelerator.free_memory()  # accelerate's own references to the prepared model
        accelerator.wait_for_everyone()
        accelerator.end_training()
    if log_file is not None:
        log_file.close()
    seconds = time.time() - start
    return TrainResult(run_dir, run_dir / "checkpoints" / "last", running.item(), seconds,
                       world * (cfg.steps - first_step) * cfg.batch_size / seconds, ema)


def start_profiler(device: torch.device):
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    profiler = profile(activities=activities)
    profiler.start()
    profiler.wall_start = time.perf_counter()
    return profiler


def write_profile(profiler, device: torch.device, path: Path, steps: int, world: int) -> None:
    """Where `steps` training steps spent their time: the wall time per step, the kernels' time
    per step (collectives apart; streams that overlap can add up to more than the wall time),
    and the operators that took it, by CPU time and by GPU time."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = (time.perf_counter() - profiler.wall_start) / steps
    profiler.stop()
    events = profiler.key_averages()
    on_device = device.type == "cuda"
    # Kernels only, each counted once: an operator's GPU time is its kernels' time, and a user
    # annotation (DistributedDataParallel.forward, nccl:all_reduce) spans kernels listed on
    # their own.
    kernels = [e for e in events if on_device and e.device_type == torch.autograd.DeviceType.CUDA
               and not e.is_user_annotation]
    busy = sum(e.self_device_time_total for e in kernels) / 1e6 / steps
    collectives = sum(e.self_device_time_total for e in kernels
                      if e.key.startswith(("ncclDevKernel", "ncclKernel"))) / 1e6 / steps
    head = f"{steps} steps, {world} process(es); per step: wall {1e3 * wall:.2f} ms"
    if on_device:
        head += f", kernels {1e3 * busy:.2f} ms, of which collectives {1e3 * collectives:.2f} ms"
    head += "\n"
    # By CPU time first: a step paced by the CPU queueing kernels shows CPU time well above its
    # kernels' time. Then, on a GPU, the kernels that took the GPU's time.
    tables = [events.table(sort_by="cpu_time_total", row_limit=25, max_name_column_width=48)]
    if on_device:
        tables.append(events.table(sort_by="self_device_time_total", row_limit=30))
    path.write_text(head + "\n".join(tables) + "\n")
    print(head.strip(), file=sys.stderr)


def draws_apart(device: torch.device, accelerator) -> bool:
    """Whether each process's random generator (the one its forward pass draws from) ended in a
    state of its own. Processes seeded alike and drawing alike end in one state: their draws were
    shared. Read from the generators' states, so nothing is drawn."""
    state = torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()
    digest = int.from_bytes(hashlib.sha256(state.numpy().tobytes()).digest()[:7], "little")
    every = accelerator.gather(torch.tensor([digest], device=device)).tolist()
    return len(set(every)) == len(every)


def replicas_in_sync(policy: torch.nn.Module, accelerator) -> bool:
    """Whether every process ended with the same weights (DDP averaged their gradients)."""
    with torch.no_grad():
        digest = torch.stack([p.double().sum() for p in policy.parameters()]).sum().reshape(1)
        every = accelerator.gather(digest)
    return bool(torch.allclose(every, every[0].expand_as(every), rtol=1e-6, atol=1e-8))
