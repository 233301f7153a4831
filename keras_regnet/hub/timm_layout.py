"""timm's checkpoint layout (`config.json` + `model.safetensors`) as a preset.

keras-hub refuses timm RegNets ("no converter for timm models with
architecture ..."); our backbone and classifier read them through our own
converter instead, from a local folder or a `hf://timm/<model>.<tag>` handle.
"""

import os
from typing import NamedTuple

from keras_regnet.design.checks import invalid
from keras_regnet.design.zoo import ZOO
from keras_regnet.files import existing_file, read_json
from keras_regnet.models.anynet import IMAGENET_MEAN, IMAGENET_STD
from keras_regnet.weights import timm_tags
from keras_regnet.weights.timm_tags import timm_name
from keras_regnet.weights.download import fetch


# timm's architecture name -> ours.
ARCHITECTURES = {timm_name(name): name for name in ZOO}


class TimmCheckpoint(NamedTuple):
    """A timm checkpoint: our model name, its weights file, its classes and
    the input side it was trained at."""

    model: str
    weights: str
    classes: int
    image_size: int


def read(preset, download_weights=True):
    """The timm checkpoint that `preset` names, or None if it is not one.

    Args:
        preset: a folder holding timm's `config.json` (with `architecture`)
            and `model.safetensors`, or `hf://timm/<model>.<tag>`.
        download_weights: fetch a hub checkpoint's weights (else its
            `weights` is None).

    Raises:
        ValueError: a timm checkpoint of another architecture, or one with
            another input normalisation than ImageNet's mean and std.
    """
    if not isinstance(preset, (str, os.PathLike)):
        return None
    preset = os.fspath(preset)
    if preset.startswith("hf://timm/"):
        repo = preset[len("hf://"):]
        base = f"{timm_tags.HUB_URL}{repo}/resolve/main/"
        config = read_json(fetch(base + "config.json", f"{repo[5:]}.config.json", None))
        weights = (fetch(base + "model.safetensors", f"{repo[5:]}.safetensors", None)
                   if download_weights else None)
    elif os.path.isfile(os.path.join(preset, "config.json")):
        config = read_json(os.path.join(preset, "config.json"))
        if not (isinstance(config, dict) and "architecture" in config):
            return None  # a keras-hub preset
        weights = existing_file(os.path.join(preset, "model.safetensors"), "preset",
                                "a timm folder with model.safetensors")
    else:
        return None
    architecture = config.get("architecture")
    if architecture not in ARCHITECTURES:
        raise invalid("preset", preset, "a timm RegNet checkpoint (architecture one "
                                        f"of {tuple(ARCHITECTURES)})")
    cfg = config.get("pretrained_cfg", {})
    for key, expected in (("mean", IMAGENET_MEAN), ("std", IMAGENET_STD)):
        found = tuple(cfg.get(key, expected))
        if any(abs(a - b) > 1e-6 for a, b in zip(found, expected)):
            raise invalid("preset", preset, f"a timm checkpoint normalised by "
                                            f"ImageNet's {key} {expected}, not {found}")
    return TimmCheckpoint(ARCHITECTURES[architecture], weights,
                          int(config.get("num_classes", 1000)),
                          int(cfg.get("input_size", (3, 224, 224))[-1]))


class TimmLayoutPresets:
    """Mixin of our keras-hub classes: `from_preset` also reads timm's layout
    (calling the class's `from_timm(checkpoint, **kwargs)`)."""

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """keras-hub's `from_preset`; a timm folder or `hf://timm/...` handle
        (config.json and model.safetensors) loads through our converter."""
        found = read(preset, download_weights=load_weights)
        if found is None:
            return super().from_preset(preset, load_weights=load_weights, **kwargs)
        return cls.from_timm(found, **kwargs)
