"""keras_regnet.hub: RegNet as a keras-hub citizen (issue 22).

Presets load through keras-hub's own `from_preset` in a fresh process with
our keras.applications-style model's outputs; keras-hub's RetinaNet and
DeepLabV3 train, save and reload on a RegNet backbone; timm's checkpoint
layout loads through our converter with timm's logits.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_regnet
from conftest import random_images, randomize_bn, run_python
from test_family_timm import _randomize, hub, timm  # noqa: F401 - fixtures

import keras_hub  # the hub extra (in the test extra)
import keras_regnet.hub as regnet_hub

TINY = keras_regnet.AnyNetSpec(depths=(1, 1, 1, 1), widths=(16, 32, 48, 64),
                               group_widths=8)

FRESH_PROCESS = """
import sys
import numpy as np
import keras_hub
import keras_regnet.hub  # registers the classes keras-hub finds
preset, x, out = sys.argv[1:]
x = np.load(x)
classifier = keras_hub.models.ImageClassifier.from_preset(preset)
backbone = keras_hub.models.Backbone.from_preset(preset)
np.savez(out, logits=classifier.predict(x, verbose=0),
         features=backbone.predict(x / 255.0, verbose=0),
         classes=[type(classifier).__name__, type(backbone).__name__],
         levels=sorted(backbone.pyramid_outputs))
"""


@pytest.mark.parametrize("name", ["RegNetY002"])
def test_a_preset_loads_through_keras_hub_in_a_fresh_process(tmp_path, name):
    keras.utils.set_random_seed(0)
    model = getattr(keras_regnet, name)(weights=None, classes=10, input_shape=(None, None, 3),
                                        classifier_activation=None)
    randomize_bn(model)
    weights = str(tmp_path / "w.weights.h5")
    model.save_weights(weights)
    preset = str(tmp_path / "preset")
    regnet_hub.save_preset(name, preset, weights=weights, classes=10)
    assert {"config.json", "task.json", "model.weights.h5",
            "preprocessor.json"} <= set(os.listdir(preset))

    x = random_images(2, (96, 96, 3))
    np.save(tmp_path / "x.npy", x)
    script = tmp_path / "load.py"
    script.write_text(FRESH_PROCESS)
    run_python([str(script), preset, str(tmp_path / "x.npy"), str(tmp_path / "out.npz")])
    out = np.load(tmp_path / "out.npz")
    assert list(out["classes"]) == ["RegNetImageClassifier", "RegNetBackbone"]
    assert list(out["levels"]) == ["P1", "P2", "P3", "P4", "P5"]
    # The preprocessor resizes to the weights' 224 px, as the reference does.
    resized = keras.ops.convert_to_numpy(keras.layers.Resizing(224, 224)(x))
    np.testing.assert_allclose(out["logits"], model.predict(resized, verbose=0),
                               rtol=1e-5, atol=1e-5)
    pre_pool = keras.Model(model.inputs, model.get_layer("avg_pool").input)
    np.testing.assert_allclose(out["features"], pre_pool.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)


def test_the_preset_command(tmp_path):
    keras.utils.set_random_seed(1)
    model = keras_regnet.RegNetX002(weights=None, classifier_activation=None)
    weights = str(tmp_path / "w.weights.h5")
    model.save_weights(weights)

    def command(*args):
        return subprocess.run([sys.executable, "-m", "keras_regnet.hub.preset", *args],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)

    done = command("RegNetX002", "out", "--weights", weights)
    assert done.returncode == 0, done.stderr
    assert "keras-hub preset of RegNetX002" in done.stdout
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["registered_name"] == "keras_regnet>RegNetBackbone"
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("a user's")
    for args, needle in ((("RegNetX003", "x"), "Invalid `model`: 'RegNetX003'"),
                         (("RegNetX002", "theirs"), "that keras_regnet did not write")):
        refused = command(*args)
        assert refused.returncode == 2, refused.stderr
        assert needle in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert (tmp_path / "theirs" / "notes.txt").read_text() == "a user's"
    with pytest.raises(ValueError, match="Invalid `weights`: 'nope.h5'"):
        regnet_hub.save_preset("RegNetX002", str(tmp_path / "y"), weights="nope.h5")
    assert not (tmp_path / "y").exists()


def test_backbone_config_and_pyramid():
    spec = keras_regnet.design.regnet_spec(depth=13, w0=24, wa=36.44, wm=2.49,
                                           group_width=8)
    backbone = regnet_hub.RegNetBackbone(spec, image_shape=(64, 64, 3))
    assert backbone.count_params() == keras_regnet.RegNetX002(
        weights=None, include_top=False, input_shape=(64, 64, 3)).count_params()
    shapes = {k: tuple(v.shape[1:]) for k, v in backbone.pyramid_outputs.items()}
    assert shapes == {"P1": (32, 32, 32), "P2": (16, 16, 24), "P3": (8, 8, 56),
                      "P4": (4, 4, 152), "P5": (2, 2, 368)}
    clone = regnet_hub.RegNetBackbone.from_config(backbone.get_config())
    assert clone.get_config() == backbone.get_config()
    assert regnet_hub.RegNetBackbone("RegNetV040").get_config()["spec"] == "RegNetV040"
    with pytest.raises(ValueError, match="Invalid `spec`: 'ResNet50'"):
        regnet_hub.RegNetBackbone("ResNet50")
    with pytest.raises(ValueError, match="Invalid `padding`: 'valid'"):
        regnet_hub.RegNetBackbone(TINY, padding="valid")


def _boxes(n, size, classes, rng):
    """Images with 2 filled rectangles each, their boxes (yxyx) and labels."""
    x = rng.uniform(0, 64, (n, size, size, 3)).astype("float32")
    boxes = np.zeros((n, 2, 4), "float32")
    labels = rng.integers(0, classes, (n, 2)).astype("int32")
    for i in range(n):
        for j in range(2):
            y0, x0 = rng.integers(0, size // 2, 2)
            h, w = rng.integers(size // 3, size // 2, 2)
            boxes[i, j] = [y0, x0, y0 + h, x0 + w]
            x[i, y0:y0 + h, x0:x0 + w, labels[i, j]] = 255
    return x, boxes, labels


def test_retinanet_on_a_regnet_trains_and_reloads(tmp_path):
    keras.utils.set_random_seed(0)
    encoder = regnet_hub.RegNetBackbone(TINY, image_shape=(64, 64, 3))
    backbone = keras_hub.models.RetinaNetBackbone(
        image_encoder=encoder, min_level=3, max_level=5, use_p5=False,
        image_shape=(64, 64, 3))
    detector = keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone, num_classes=3, bounding_box_format="yxyx")
    x, boxes, labels = _boxes(16, 64, 3, np.random.default_rng(0))
    detector.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = detector.fit(x, {"boxes": boxes, "labels": labels}, batch_size=8,
                           epochs=3, verbose=0).history["loss"]
    assert np.isfinite(history).all() and history[-1] < history[0]
    path = str(tmp_path / "detector.keras")
    detector.save(path)
    reloaded = keras.saving.load_model(path)
    for key, value in detector(x[:2]).items():
        np.testing.assert_allclose(np.asarray(reloaded(x[:2])[key]), np.asarray(value),
                                   rtol=1e-5, atol=1e-5)
    found = detector.predict(x[:2], verbose=0)
    assert found["boxes"].shape == (2, 100, 4)


def test_deeplab_v3_on_a_regnet_trains_and_reloads(tmp_path):
    keras.utils.set_random_seed(0)
    encoder = regnet_hub.RegNetBackbone(TINY, image_shape=(64, 64, 3))
    backbone = keras_hub.models.DeepLabV3Backbone(
        image_encoder=encoder, spatial_pyramid_pooling_key="P5", upsampling_size=8,
        dilation_rates=[1, 2, 3], low_level_feature_key="P2", image_shape=(64, 64, 3))
    segmenter = keras_hub.models.DeepLabV3ImageSegmenter(backbone=backbone, num_classes=3)
    x, boxes, labels = _boxes(16, 64, 3, np.random.default_rng(1))
    masks = np.zeros((16, 64, 64, 1), "int32")
    for i, (b, c) in enumerate(zip(boxes.astype(int), labels)):
        for (y0, x0, y1, x1), k in zip(b, c):
            masks[i, y0:y1, x0:x1] = k
    segmenter.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = segmenter.fit(x, masks, batch_size=8, epochs=3, verbose=0).history["loss"]
    assert history[-1] < history[0]
    path = str(tmp_path / "segmenter.keras")
    segmenter.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded(x[:2]).shape == (2, 64, 64, 3)
    np.testing.assert_allclose(np.asarray(reloaded(x[:2])), np.asarray(segmenter(x[:2])),
                               rtol=1e-5, atol=1e-5)


def _timm_folder(timm, folder, architecture, seed):
    """A checkpoint folder as timm writes it: config.json + model.safetensors."""
    import torch
    from timm.models import _hub

    torch.manual_seed(seed)
    reference = timm.create_model(architecture, pretrained=False).eval()
    _randomize(reference, torch)
    _hub.save_for_hf(reference, str(folder), safe_serialization=True)
    return reference


def _timm_logits(reference, x):
    import torch

    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    with torch.no_grad():
        return reference(torch.from_numpy(
            ((x / 255 - mean) / std).astype("float32").transpose(0, 3, 1, 2))).numpy()


def test_a_timm_folder_loads_through_our_converter(timm, tmp_path):
    folder = tmp_path / "regnety_002"
    reference = _timm_folder(timm, folder, "regnety_002", 0)
    assert json.loads((folder / "config.json").read_text())["architecture"] == "regnety_002"
    x = random_images(2, (224, 224, 3))
    classifier = regnet_hub.RegNetImageClassifier.from_preset(str(folder))
    np.testing.assert_allclose(classifier.predict(x, verbose=0), _timm_logits(reference, x),
                               rtol=1e-4, atol=1e-4)
    backbone = regnet_hub.RegNetBackbone.from_preset(str(folder))
    assert backbone.padding == "symmetric"
    # keras-hub itself refuses the folder.
    with pytest.raises(ValueError, match="no converter for timm models"):
        keras_hub.models.ImageClassifier.from_preset(str(folder))


def test_an_hf_timm_handle_downloads_through_our_converter(timm, hub):
    root, _ = hub
    folder = root / "timm" / "regnetz_005.test" / "resolve" / "main"
    reference = _timm_folder(timm, folder, "regnetz_005", 1)
    x = random_images(2, (224, 224, 3))
    classifier = regnet_hub.RegNetImageClassifier.from_preset("hf://timm/regnetz_005.test")
    np.testing.assert_allclose(classifier.predict(x, verbose=0), _timm_logits(reference, x),
                               rtol=1e-4, atol=1e-4)
    config = json.loads((folder / "config.json").read_text())
    config["architecture"] = "resnet50"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="a timm RegNet checkpoint"):
        regnet_hub.RegNetImageClassifier.from_preset(str(folder))


def test_importing_keras_regnet_loads_no_keras_hub():
    code = "import keras_regnet, sys; keras_regnet.RegNetX002; print('keras_hub' in sys.modules)"
    assert run_python(["-c", code]).stdout.strip() == "False"
