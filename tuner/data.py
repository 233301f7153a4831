"""Datasets for the search: bundled digits, a TensorFlow Datasets name, or an image folder.

`describe_dataset` is cheap and validates the name before any training;
`load_dataset` builds the cached, shuffled, prefetched `tf.data` pipelines
from the `DatasetInfo` it returned.
"""

import dataclasses
import math
import os

from keras_regnet.design.checks import invalid

DIGITS = "digits"
DIGITS_SIZE = 32
FOLDER_SIZE = 224
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
VAL_FRACTION = 0.2
# Datasets smaller than this (decoded, resized) are cached in memory.
CACHE_BYTES = 2 << 30


@dataclasses.dataclass
class DatasetInfo:
    """What the hypermodel needs before any data is loaded."""
    kind: str  # "digits", "folder" or "tfds"
    name: str
    input_shape: tuple
    classes: int


@dataclasses.dataclass
class Dataset:
    info: DatasetInfo
    train: object  # batched tf.data.Dataset of (image, label), pixels in [0, 255]
    val: object
    num_train: int
    num_val: int


def _dataset_error(name, detail=""):
    return invalid("dataset", name, f"{DIGITS!r} (bundled, offline), a folder of "
                                    "images with one sub-folder per class, or a "
                                    "TensorFlow Datasets name such as "
                                    f"'cifar10'{detail}")


# The first bytes of each image format that Keras' folder loader decodes.
_MAGIC = {".png": (b"\x89PNG\r\n\x1a\n",), ".jpg": (b"\xff\xd8\xff",),
          ".jpeg": (b"\xff\xd8\xff",), ".gif": (b"GIF87a", b"GIF89a"),
          ".bmp": (b"BM",)}


def _check_image(path):
    """Refuses a file whose content is not the image its name claims: Keras
    would otherwise fail on it in the middle of a trial."""
    ext = os.path.splitext(path)[1].lower()
    with open(path, "rb") as f:
        head = f.read(8)
    if not head.startswith(_MAGIC[ext]):
        raise invalid("dataset", path, f"a {ext[1:].upper()} image (its first bytes "
                                       f"are {head!r}); remove or replace this file")


def _folder_classes(path):
    """Class sub-folders holding images; `ValueError` if fewer than two, too
    few images to hold some out for validation, or a file that is not the
    image its name says."""
    classes, count = [], 0
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        if not entry.is_dir():
            continue
        images = [os.path.join(root, f) for root, _, files in os.walk(entry.path)
                  for f in files if f.lower().endswith(IMAGE_EXTENSIONS)]
        for image in images:
            _check_image(image)
        if images:
            classes.append(entry.name)
            count += len(images)
    if len(classes) < 2:
        raise invalid("dataset", path, "a folder with at least two sub-folders "
                      f"(one per class) of images ({', '.join(IMAGE_EXTENSIONS)}); "
                      f"found {len(classes)} class folder(s) with images")
    if int(count * VAL_FRACTION) < 1:
        raise invalid("dataset", path, f"at least {math.ceil(1 / VAL_FRACTION)} "
                                       f"images, to hold {VAL_FRACTION:.0%} out for "
                                       f"validation; found {count}")
    return classes


def describe_dataset(name, image_size=None):
    """Validates `name` and returns its `DatasetInfo` without loading images.

    Args:
        name: `"digits"`, a folder path, or a TensorFlow Datasets name.
        image_size: side of the square training images; default 32 for
            digits, the dataset's own size for TensorFlow Datasets, 224 for
            folders.
    """
    if image_size is not None and not (isinstance(image_size, int) and image_size >= 8):
        raise invalid("image_size", image_size, "an integer >= 8")
    if name == DIGITS:
        size = image_size or DIGITS_SIZE
        return DatasetInfo("digits", name, (size, size, 1), 10)
    if os.path.isdir(name):
        size = image_size or FOLDER_SIZE
        return DatasetInfo("folder", name, (size, size, 3), len(_folder_classes(name)))
    if os.sep in name or (os.altsep and os.altsep in name) or os.path.exists(name):
        raise _dataset_error(name, "; this path is not an existing folder")
    import tensorflow_datasets as tfds

    if name.split(":")[0] not in tfds.list_builders():
        raise _dataset_error(name, "; no such TensorFlow Datasets name")
    info = tfds.builder(name).info
    image, label = _tfds_keys(info, name)
    shape = info.features[image].shape
    size = image_size or shape[0]
    if size is None:
        raise invalid("image_size", image_size,
                     f"a value: {name} has images of varying size")
    return DatasetInfo("tfds", name, (size, size, shape[-1] or 3),
                       info.features[label].num_classes)


def _tfds_keys(info, name):
    keys = info.supervised_keys
    if not keys or len(keys) != 2 or len(info.features[keys[0]].shape) != 3:
        raise _dataset_error(name, "; it has no (image, label) supervised keys")
    return keys


def load_dataset(info, batch_size=32, seed=0):
    """Loads a dataset as batched, cached, prefetched `tf.data` pipelines.

    The validation split is the dataset's own (`validation`, else `test`),
    otherwise a fixed 20 % of the training data.

    Args:
        info: the dataset's `DatasetInfo`, from `describe_dataset` (which
            validated the name and fixed the image size).
        batch_size: images per batch.
        seed: the training pipeline's shuffle seed.
    """
    loader = {"digits": _load_digits, "folder": _load_folder, "tfds": _load_tfds}
    train, val, num_train, num_val = loader[info.kind](info)
    return Dataset(info, _pipeline(train, num_train, info, batch_size, seed, True),
                   _pipeline(val, num_val, info, batch_size, seed, False),
                   num_train, num_val)


def _resize(info):
    import tensorflow as tf

    size = info.input_shape[:2]

    def resize(image, label):
        image = tf.image.resize(tf.cast(image, "float32"), size)
        return image, label
    return resize


def _pipeline(ds, count, info, batch_size, seed, training):
    import tensorflow as tf

    ds = ds.map(_resize(info), num_parallel_calls=tf.data.AUTOTUNE)
    if count * 4 * math.prod(info.input_shape) <= CACHE_BYTES:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(min(count, 10000), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _load_digits(info):
    """scikit-learn's 1797 handwritten 8x8 digits, pixels scaled to [0, 255]."""
    import tensorflow as tf
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images[..., None] * (255.0 / 16.0)).astype("float32")
    # A fixed split, so that resumed runs and workers see the same data.
    x_train, x_val, y_train, y_val = train_test_split(
        images, digits.target.astype("int32"), test_size=VAL_FRACTION,
        stratify=digits.target, random_state=0)
    return (tf.data.Dataset.from_tensor_slices((x_train, y_train)),
            tf.data.Dataset.from_tensor_slices((x_val, y_val)),
            len(x_train), len(x_val))


def _load_folder(info):
    import keras

    train, val = keras.utils.image_dataset_from_directory(
        info.name, labels="inferred", label_mode="int", batch_size=None,
        image_size=info.input_shape[:2], shuffle=True, seed=0,
        validation_split=VAL_FRACTION, subset="both", verbose=False)
    return train, val, int(train.cardinality()), int(val.cardinality())


def _load_tfds(info):
    import tensorflow_datasets as tfds

    builder = tfds.builder(info.name)
    builder.download_and_prepare()
    splits = builder.info.splits
    keys = _tfds_keys(builder.info, info.name)
    if "train" not in splits:
        raise _dataset_error(info.name, "; it has no 'train' split")
    val_split = next((s for s in ("validation", "test") if s in splits), None)
    if val_split is None:
        cut = f"{round(100 * (1 - VAL_FRACTION))}%"
        train_split, val_split = f"train[:{cut}]", f"train[{cut}:]"
    else:
        train_split = "train"

    def load(split):
        ds = builder.as_dataset(split=split, shuffle_files=False)
        return ds.map(lambda ex: (ex[keys[0]], ex[keys[1]]))

    return (load(train_split), load(val_split),
            splits[train_split].num_examples, splits[val_split].num_examples)
