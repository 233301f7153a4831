"""timm's weight tags of RegNets, as values of `weights`.

`keras_regnet.RegNetY160(weights="sw_in12k_ft_in1k")` downloads timm's
`model.safetensors` of `timm/regnety_160.sw_in12k_ft_in1k` from the Hugging
Face hub once into the Keras cache, converts it and builds the model at the
tag's input size, its preprocessing inside. Every tag below is an ImageNet-1k
classifier taking RGB input normalised by ImageNet's mean and std; the
figures are timm's published results (`results/results-imagenet.csv`).
"""

import dataclasses
import re
import warnings

HUB_URL = "https://huggingface.co/"


def timm_name(model):
    """timm's name of our model: `"RegNetX002"` -> `"regnetx_002"`,
    `"RegNetZ040H"` -> `"regnetz_040_h"`."""
    m = re.fullmatch(r"RegNet([A-Z])(\d+)(H?)", model)
    return f"regnet{m.group(1).lower()}_{m.group(2)}" + ("_h" if m.group(3) else "")


# Licences under which the weights may not be used commercially.
NON_COMMERCIAL = ("cc-by-nc-4.0", "seer-license")
SOURCES = {"pycls": "pycls (the paper's)", "ra3": "timm (RandAugment recipe)",
           "tv2": "torchvision (v2 recipe)", "sw": "timm (ImageNet-12k, fine-tuned)",
           "lion": "timm (ImageNet-12k, Lion, fine-tuned)", "deit": "DeiT's teacher",
           "swag": "SWAG (Instagram, weakly supervised)",
           "seer": "SEER (self-supervised on Instagram)"}


@dataclasses.dataclass(frozen=True)
class Tag:
    """One timm weight tag.

    Attributes:
        model: our model name, e.g. `"RegNetY160"`.
        tag: timm's tag, e.g. `"sw_in12k_ft_in1k"`.
        input_size: the side the weights were trained at (the default
            `input_shape` of a model built with them).
        crop: timm's center-crop fraction at that size.
        top1: ImageNet top-1 (%) in timm's published results, at `top1_size`.
        top1_size: the side of that evaluation.
        license: the weights' licence.
    """

    model: str
    tag: str
    input_size: int
    crop: float
    top1: float
    top1_size: int
    license: str = "apache-2.0"

    @property
    def repo(self):
        return f"timm/{timm_name(self.model)}.{self.tag}"

    @property
    def url(self):
        return f"{HUB_URL}{self.repo}/resolve/main/model.safetensors"

    @property
    def file_name(self):
        return f"{timm_name(self.model)}.{self.tag}.safetensors"

    @property
    def non_commercial(self):
        return self.license in NON_COMMERCIAL

    @property
    def source(self):
        return SOURCES[self.tag.split("_")[0]]


_TABLE = [
    # model, tag, input size, crop, top-1 (%), at size[, licence]
    ("RegNetX160", "pycls_in1k", 224, 0.875, 79.844, 224, "mit"),
    ("RegNetX160", "tv2_in1k", 224, 0.965, 82.574, 224, "bsd-3-clause"),
    ("RegNetX320", "pycls_in1k", 224, 0.875, 80.258, 224, "mit"),
    ("RegNetX320", "tv2_in1k", 224, 0.965, 82.824, 224, "bsd-3-clause"),
    ("RegNetY040", "pycls_in1k", 224, 0.875, 79.246, 224, "mit"),
    ("RegNetY040", "ra3_in1k", 224, 0.95, 83.048, 288),
    ("RegNetY064", "pycls_in1k", 224, 0.875, 79.734, 224, "mit"),
    ("RegNetY064", "ra3_in1k", 224, 0.95, 83.716, 288),
    ("RegNetY160", "pycls_in1k", 224, 0.875, 80.284, 224, "mit"),
    ("RegNetY160", "tv2_in1k", 224, 0.965, 82.646, 224, "bsd-3-clause"),
    ("RegNetY160", "deit_in1k", 224, 0.95, 83.704, 288),
    ("RegNetY160", "sw_in12k_ft_in1k", 224, 0.95, 86.028, 288),
    ("RegNetY160", "lion_in12k_ft_in1k", 224, 0.95, 86.004, 288),
    ("RegNetY160", "swag_lc_in1k", 224, 0.965, 83.806, 224, "cc-by-nc-4.0"),
    ("RegNetY160", "swag_ft_in1k", 384, 1.0, 86.020, 384, "cc-by-nc-4.0"),
    ("RegNetY320", "pycls_in1k", 224, 0.875, 80.796, 224, "mit"),
    ("RegNetY320", "tv2_in1k", 224, 0.965, 83.170, 224, "bsd-3-clause"),
    ("RegNetY320", "seer_ft_in1k", 384, 1.0, 83.324, 384, "seer-license"),
    ("RegNetY320", "swag_lc_in1k", 224, 0.965, 84.654, 224, "cc-by-nc-4.0"),
    ("RegNetY320", "swag_ft_in1k", 384, 1.0, 86.830, 384, "cc-by-nc-4.0"),
    ("RegNetY640", "seer_ft_in1k", 384, 1.0, 83.924, 384, "seer-license"),
    ("RegNetY1280", "seer_ft_in1k", 384, 1.0, 84.426, 384, "seer-license"),
    ("RegNetY1280", "swag_lc_in1k", 224, 0.965, 85.964, 224, "cc-by-nc-4.0"),
    ("RegNetY1280", "swag_ft_in1k", 384, 1.0, 88.228, 384, "cc-by-nc-4.0"),
    ("RegNetY2560", "seer_ft_in1k", 384, 1.0, 85.144, 384, "seer-license"),
    ("RegNetZ040", "ra3_in1k", 256, 1.0, 84.242, 320),
    ("RegNetZ040H", "ra3_in1k", 256, 1.0, 84.498, 320),
    ("RegNetV040", "ra3_in1k", 224, 0.95, 83.204, 288),
    ("RegNetV064", "ra3_in1k", 224, 0.95, 83.746, 288),
]
TAGS = {(row[0], row[1]): Tag(*row) for row in _TABLE}


def tags(model):
    """The timm weight tags of `model` (e.g. `"RegNetY160"`), best first: a
    list of dicts with `tag`, `source`, `input_size`, `crop`, `top1`,
    `top1_size`, `license`, `non_commercial` and `url`."""
    found = sorted((t for (m, _), t in TAGS.items() if m == model),
                   key=lambda t: -t.top1)
    return [{**dataclasses.asdict(t), "source": t.source,
             "non_commercial": t.non_commercial, "url": t.url} for t in found]


def find(model, tag):
    """The `Tag` of `model` named `tag`, or None."""
    return TAGS.get((model, tag))


def fetch_tag(tag):
    """Downloads a tag's file once into the Keras cache; returns its path.
    Says so first if the weights' licence forbids commercial use."""
    from keras_regnet.weights.download import fetch

    if tag.non_commercial:
        warnings.warn(f"keras_regnet: the weights {tag.repo} are under the "
                      f"{tag.license} licence: non-commercial use only.", stacklevel=3)
    return fetch(tag.url, tag.file_name, None)
