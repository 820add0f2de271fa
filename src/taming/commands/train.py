"""`taming train`: the original `main.py` command line on Lightning 2.

    taming train -b configs/vqgan/folder_vqgan.yaml -t data.params.train.params.root_or_list=imgs/
    taming train -r logs/2024-01-01T12-00-00_folder_vqgan            # resume
    taming train -b cfg.yaml --devices 2 --strategy ddp               # 2 processes (CPU or GPU)

Flags of the original: `-b/--base` (several YAMLs, merged left to right), `-t/--train`
(default on here: `-t False` only evaluates), `-r/--resume` (run folder or checkpoint),
`-n/--name`, `-s/--seed` (23), `-p/--project` (accepted; unused, as in the original),
`-f/--postfix`, `-d/--debug` (post-mortem debugger; the run is moved to `logs/debug_runs/`),
`--no-test`, `-l/--logdir` (`logs`). Trainer options: `--devices`, `--accelerator`,
`--strategy`, `--precision`, `--num_nodes`, `--max_steps`, `--max_epochs`,
`--accumulate_grad_batches`, `--gpus` (PL 1.x style, e.g. `0,`), `--resume_from_checkpoint`;
any other Trainer argument as a dotlist override `lightning.trainer.<arg>=<value>`.
Own photos: `--data DIR` (seeded train/validation split), `--val-data DIR`, `--first-stage RUN`
(see `taming.commands.train_data`). Remaining `key.sub=value` arguments override the config.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from taming.commands import train_data

logger = logging.getLogger(__name__)

_TRUE = {"yes", "true", "t", "y", "1"}
_FALSE = {"no", "false", "f", "n", "0"}


def str2bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"boolean value expected, got '{v}'")


def _is_override(token: str) -> bool:
    return "=" in token and not token.startswith("-")


class _BaseAction(argparse.Action):
    """`-b a.yaml b.yaml key=value ...`: config files; `key=value` tokens are overrides."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001
        base = list(getattr(namespace, self.dest) or [])
        extra = list(getattr(namespace, "extra_overrides", None) or [])
        for v in values:
            (extra if _is_override(v) else base).append(v)
        setattr(namespace, self.dest, base)
        namespace.extra_overrides = extra


class _BoolAction(argparse.Action):
    """`-t`, `-t True`, `-t False`; a `key=value` token after the flag is an override."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001
        if values is None:
            setattr(namespace, self.dest, True)
            return
        if _is_override(values):
            setattr(namespace, self.dest, True)
            extra = list(getattr(namespace, "extra_overrides", None) or [])
            namespace.extra_overrides = [*extra, values]
            return
        try:
            setattr(namespace, self.dest, str2bool(values))
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentError(self, str(e)) from None


TRAINER_FLAGS: dict[str, tuple[Any, str]] = {
    "devices": (str, "devices per node: 2, 0,1 (ids), auto, -1 (all)"),
    "accelerator": (str, "cpu, gpu, cuda, mps, auto (default)"),
    "strategy": (str, "ddp, ddp_spawn, fsdp, deepspeed, auto (DDP when > 1 device)"),
    "precision": (str, "32-true (default), bf16-mixed, 16-mixed, ..."),
    "num_nodes": (int, "nodes (multi-node: run the command on every node)"),
    "max_steps": (int, "stop after this many generator steps (batches)"),
    "max_epochs": (int, "stop after this many epochs"),
    "accumulate_grad_batches": (int, "batches per optimizer step (scales the learning rate)"),
    "gpus": (str, "PL 1.x style: '0,' = GPU 0, '0,1' = two GPUs, 2 = two GPUs"),
    "resume_from_checkpoint": (str, "continue from this checkpoint in a new run folder"),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a VQGAN or a transformer from YAML configs (original main.py flags)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-b",
        "--base",
        nargs="*",
        metavar="base_config.yaml",
        default=[],
        action=_BaseAction,
        help="config files, merged left to right; later ones override",
    )
    p.add_argument(
        "-t",
        "--train",
        action=_BoolAction,
        nargs="?",
        default=True,
        help="train (default); -t False only evaluates",
    )
    p.add_argument(
        "--no-test",
        action=_BoolAction,
        nargs="?",
        default=False,
        help="skip the test split after training",
    )
    p.add_argument("-r", "--resume", default="", help="resume from a run folder or checkpoint")
    p.add_argument("-n", "--name", default="", help="run name (log folder suffix)")
    p.add_argument("-p", "--project", default=None, help="accepted for compatibility; unused")
    p.add_argument(
        "-d",
        "--debug",
        action=_BoolAction,
        nargs="?",
        default=False,
        help="post-mortem debugging; the run goes to <logdir>/debug_runs/",
    )
    p.add_argument("-s", "--seed", type=int, default=23, help="random seed")
    p.add_argument("-f", "--postfix", default="", help="postfix of the run folder name")
    p.add_argument("-l", "--logdir", default="logs", help="where run folders are created")
    p.add_argument(
        "--save_every",
        type=int,
        default=None,
        metavar="N",
        help="write checkpoints/last.ckpt every N steps (default 500)",
    )
    p.add_argument(
        "--allow-extra-keys",
        action="store_true",
        help="accept unknown keys in the config's fixed sections (your own sections)",
    )
    p.add_argument(
        "--skip-nonfinite",
        type=int,
        default=0,
        metavar="N",
        help="skip batches with a NaN/Inf loss or gradient (at most N, then stop); default: "
        "stop at the first",
    )
    g = p.add_argument_group("trainer options (override lightning.trainer)")
    for flag, (typ, text) in TRAINER_FLAGS.items():
        g.add_argument(f"--{flag}", type=typ, default=None, help=text)
    train_data.add_arguments(p)  # --data, --val-data, --first-stage
    p.add_argument(
        "overrides", nargs="*", metavar="key.sub=value", help="config overrides (OmegaConf dotlist)"
    )
    p.set_defaults(func=run, _parser=p)


def _split_overrides(args: argparse.Namespace) -> list[str]:
    overrides = list(getattr(args, "extra_overrides", None) or [])
    for item in args.overrides:
        if "=" not in item:
            args._parser.error(f"unrecognised argument '{item}' (overrides are key.sub=value)")
        overrides.append(item)
    return overrides


def run(args: argparse.Namespace) -> int:
    from taming.train.run import TrainOptions, run_training

    opts = TrainOptions(
        base=list(args.base or []),
        overrides=[
            *train_data.overrides_from_flags(
                list(args.base or []), args.data, args.val_data, args.first_stage
            ),
            *_split_overrides(args),
        ],
        train=args.train,
        test=not args.no_test,
        resume=args.resume or None,
        resume_from_checkpoint=args.resume_from_checkpoint,
        name=args.name,
        postfix=args.postfix,
        seed=args.seed,
        logdir=args.logdir,
        debug=args.debug,
        project=args.project,
        trainer={k: getattr(args, k) for k in TRAINER_FLAGS if k != "resume_from_checkpoint"},
        save_every=args.save_every,
        allow_extra_keys=args.allow_extra_keys,
        skip_nonfinite=args.skip_nonfinite,
    )
    result = run_training(opts)
    if result.trainer is not None and result.trainer.is_global_zero:
        print(f"run folder: {result.logdir}")
        if result.checkpoint is not None:
            print(f"checkpoint: {result.checkpoint} (generator step {result.step_count})")
    return 0
