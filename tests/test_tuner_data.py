"""The search's datasets: bundled digits, image folders, TFDS metadata (issue 4)."""

import numpy as np
import pytest
from PIL import Image

from conftest import dataset_arrays
from tuner.data import describe_dataset, load_dataset


def test_digits_are_upsampled_and_split_by_class():
    data = load_dataset(describe_dataset("digits", image_size=16), batch_size=100)
    x_val, y_val = dataset_arrays(data.val)
    x_train, y_train = dataset_arrays(data.train)
    # scikit-learn's digits: 1797 images of 10 classes, 8x8 pixels in 0..16.
    assert (data.num_train, data.num_val) == (1437, 360) == (len(x_train), len(x_val))
    assert x_val.shape[1:] == (16, 16, 1) and data.info.input_shape == (16, 16, 1)
    assert 0 <= x_val.min() and 250 < x_val.max() <= 255
    assert np.all(np.bincount(y_val, minlength=10) >= 35)  # stratified


def test_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("cat", "dog", "emu"):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)).save(
                tmp_path / label / f"{i}.png")
    (tmp_path / "notes").mkdir()  # no images: not a class
    info = describe_dataset(str(tmp_path), image_size=8)
    assert (info.kind, info.input_shape, info.classes) == ("folder", (8, 8, 3), 3)
    data = load_dataset(info, batch_size=4)
    x_train, y_train = dataset_arrays(data.train)
    x_val, y_val = dataset_arrays(data.val)
    assert len(x_train) + len(x_val) == 15 and x_train.shape[1:] == (8, 8, 3)
    assert set(np.concatenate([y_train, y_val])) == {0, 1, 2}


def test_folder_without_classes_is_rejected(tmp_path):
    (tmp_path / "only").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "only" / "a.png")
    with pytest.raises(ValueError, match="at least two sub-folders.*found 1"):
        describe_dataset(str(tmp_path))
    with pytest.raises(ValueError, match="not an existing folder"):
        describe_dataset(str(tmp_path / "missing"))


def test_tfds_metadata_without_download(monkeypatch):
    import tensorflow_datasets as tfds

    def no_download(*args, **kwargs):
        raise AssertionError("describe_dataset downloaded or prepared data")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    # CIFAR-10: 32x32 RGB images of 10 classes.
    info = describe_dataset("cifar10")
    assert (info.kind, info.input_shape, info.classes) == ("tfds", (32, 32, 3), 10)
