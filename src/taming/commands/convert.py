"""`taming convert`: other layouts -> a taming folder (`config.yaml` + `model.safetensors`).

    taming convert logs/2020-11-09T13-33-36_faceshq_vqgan out/faceshq      # taming run folder
    taming convert vq-f8/model.ckpt out/vq-f8 --config vq-f8/config.yaml    # latent-diffusion
    taming convert hf/vqmodel out/vq                                       # diffusers VQModel
    taming convert vq_ds16_c2i.pt out/llamagen --arch VQ-16 codebook_size=16384
    taming convert dall_e/ out/dalle                                       # encoder/decoder.pkl
    taming convert model.ckpt out.safetensors                              # tensors only

The family (`--from taming|ldm|diffusers|llamagen|dalle`) is detected from the files where it
can be. The converted weights are loaded strictly into the taming model before anything is
written; the command prints which keys were mapped, dropped and missing, and a source key it
cannot place is an error. `taming.load(DST)` then gives the model. Outputs hold only tensors
(and YAML), so loading them never runs pickled code; they get the umask's permissions.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

FAMILIES = ("taming", "ldm", "diffusers", "llamagen", "dalle")


def _add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="family", choices=FAMILIES, help="source family")
    p.add_argument("-c", "--config", help="config of the checkpoint (taming / latent-diffusion)")
    p.add_argument("--arch", help="LlamaGen architecture: VQ-8 or VQ-16")
    p.add_argument("--prefix", default="", help="tensors-only output: keep keys under PREFIX")
    p.add_argument("--unsafe", action="store_true", help="allow pickles that may run code")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a checkpoint (taming, latent-diffusion, diffusers, LlamaGen, DALL-E)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", help="run folder, .ckpt/.pt file, diffusers folder or dall_e folder")
    p.add_argument("dst", help="output folder (config.yaml + model.safetensors) or .safetensors")
    # REMAINDER: `key=value` overrides may come before or after the options
    p.add_argument(
        "overrides",
        nargs=argparse.REMAINDER,
        metavar="key=value",
        help="LlamaGen ModelArgs overrides (lists as [a,b,c])",
    )
    _add_options(p)
    p.set_defaults(func=run)


def _split_overrides(args: argparse.Namespace) -> None:
    """Options given after SRC DST land in `overrides` (REMAINDER): parse them out."""
    from taming.config import ConfigError

    opts = argparse.ArgumentParser(prog="taming convert", add_help=False)
    _add_options(opts)
    ns, extras = opts.parse_known_args(list(args.overrides or []))
    for key, value in vars(ns).items():
        if value not in (None, False, ""):
            setattr(args, key, value)
    bad = [e for e in extras if e.startswith("-") or "=" not in e]
    if bad:
        raise ConfigError(f"unrecognized arguments: {' '.join(bad)}")
    args.overrides = extras


def _config_and_ckpt(args: argparse.Namespace) -> tuple[Any, Path | None]:
    """Model config (`{target, params}`) and checkpoint of a taming/ldm source."""
    from taming.config import ConfigError, load_config
    from taming.loading import find_run_files

    src = Path(args.src)
    if src.is_dir():
        configs, ckpt = find_run_files(src)
    else:
        ckpt = src
        if args.config:
            configs = [Path(args.config)]
        else:
            near = [src.parent / "config.yaml", src.parent.parent / "config.yaml"]
            configs = [p for p in near if p.is_file()][:1]
            if not configs:
                raise ConfigError(f"{src}: no config.yaml beside it; pass --config CONFIG")
    if args.config and src.is_dir():
        configs = [Path(args.config)]
    cfg = load_config(configs)
    model_cfg = cfg.get("model", cfg)
    if "target" not in model_cfg:
        raise ConfigError(f"{configs[0]}: no 'model.target' in the config")
    return model_cfg, ckpt


def detect_family(args: argparse.Namespace) -> str:
    """The source family of `args.src` (see the module docstring)."""
    from taming.config import ConfigError

    if args.family:
        return args.family
    src = Path(args.src)
    if src.is_dir():
        if (src / "encoder.pkl").is_file() and (src / "decoder.pkl").is_file():
            return "dalle"
        if (src / "config.json").is_file():
            return "diffusers"
    elif args.arch or args.overrides or src.suffix == ".pt":
        return "llamagen"
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file or folder")
    model_cfg, _ = _config_and_ckpt(args)
    if str(model_cfg["target"]).startswith("ldm."):
        return "ldm"
    if not str(model_cfg["target"]).startswith("taming."):
        raise ConfigError(f"cannot tell the family of {model_cfg['target']}; pass --from")
    return "taming"


def _convert(args: argparse.Namespace, family: str):
    from omegaconf import OmegaConf

    from taming.compat.checkpoint import (
        CheckpointError,
        read_checkpoint,
        read_pickle,
        strip_trainer_prefix,
    )
    from taming.compat.keymap import ConversionReport, Converted
    from taming.config import ConfigError
    from taming.loading import drop_nested_ckpt_paths

    src = Path(args.src)
    if args.overrides and family != "llamagen":
        raise ConfigError("key=value overrides apply to --from llamagen only")
    if family == "dalle":
        from taming.compat.dalle import convert_dalle

        return convert_dalle(src)
    if family == "diffusers":
        from safetensors.torch import load_file

        from taming.compat.diffusers_vq import convert_diffusers

        weights = src / "diffusion_pytorch_model.safetensors"
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: missing (diffusers' save_pretrained writes it)")
        cfg = json.loads((src / "config.json").read_text())
        return convert_diffusers(cfg, load_file(str(weights)), str(src))
    if family == "llamagen":
        from taming.compat.llamagen import convert_llamagen, llamagen_state_dict, parse_overrides

        content = read_pickle(src, unsafe=args.unsafe)
        if not isinstance(content, dict):
            raise CheckpointError(f"{src}: expected a dict, found {type(content).__name__}")
        sd = llamagen_state_dict(content, str(src))
        return convert_llamagen(sd, args.arch, parse_overrides(args.overrides), str(src))
    model_cfg, ckpt = _config_and_ckpt(args)
    if ckpt is None:
        raise FileNotFoundError(f"{src}: no checkpoint found in the folder")
    sd = strip_trainer_prefix(read_checkpoint(ckpt, unsafe=args.unsafe)["state_dict"])
    if family == "ldm":
        from taming.compat.ldm import convert_ldm

        return convert_ldm(OmegaConf.to_container(model_cfg, resolve=True), sd, str(ckpt))
    model_cfg = OmegaConf.create(OmegaConf.to_container(model_cfg, resolve=True))
    drop_nested_ckpt_paths(model_cfg.get("params"))
    config = OmegaConf.to_container(model_cfg)
    config.pop("base_learning_rate", None)
    return Converted(config, sd, ConversionReport())


def _tensors_only(args: argparse.Namespace) -> int:
    """The historical output: the (filtered) state dict of a .ckpt as one .safetensors file."""
    from taming.compat.checkpoint import filter_state_dict, read_checkpoint
    from taming.compat.safetensors_io import save_safetensors

    content = read_checkpoint(args.src, unsafe=args.unsafe)
    sd = filter_state_dict(content["state_dict"], prefix=args.prefix)
    if not sd:
        raise FileNotFoundError(f"{args.src}: no keys under prefix '{args.prefix}'")
    if args.config:
        import taming
        from taming.loading import load_model_state

        load_model_state(taming.load(args.config), sd, source=args.src)
    save_safetensors(sd, args.dst)
    print(f"wrote {len(sd)} tensors to {args.dst}")
    return 0


def run(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from taming.compat.checkpoint import load_state_dict_strict
    from taming.compat.safetensors_io import save_safetensors
    from taming.config import instantiate_from_config
    from taming.loading import load_model_state

    _split_overrides(args)
    family = detect_family(args)
    dst = Path(args.dst)
    if dst.suffix == ".safetensors" and family == "taming" and Path(args.src).is_file():
        return _tensors_only(args)
    converted = _convert(args, family)
    model = instantiate_from_config(converted.config, where="converted config")
    if family == "taming":
        load_model_state(model, converted.state_dict, source=args.src)
    else:
        load_state_dict_strict(model, converted.state_dict, source=args.src)
    own = model.state_dict()
    report = converted.report
    if family == "taming":
        report.mapped = [(k, k) for k in converted.state_dict if k in own]
        report.dropped = [k for k in converted.state_dict if k not in own]
    report.missing = [k for k in own if k not in converted.state_dict]
    print(f"{family} -> {converted.config['target']}")
    print(report.summary())
    if dst.suffix == ".safetensors":
        save_safetensors(own, dst)
        print(f"wrote {len(own)} tensors to {dst}")
        return 0
    dst.mkdir(parents=True, exist_ok=True)
    save_safetensors(own, dst / "model.safetensors", metadata={"source": str(args.src)})
    cfg_path = dst / "config.yaml"
    OmegaConf.save(OmegaConf.create({"model": converted.config}), cfg_path)
    print(f"wrote {cfg_path} and {dst / 'model.safetensors'} ({len(own)} tensors)")
    return 0
