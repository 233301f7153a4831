import re

from setuptools import find_packages, setup

VERSION = re.search(r'__version__ = "([^"]+)"',
                    open("keras_regnet/__init__.py", encoding="utf-8").read()).group(1)

setup(
    name="keras-regnet",
    version=VERSION,
    description="RegNetX/Y for Keras 3 and a Keras Tuner search of the RegNet design space",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["keras_regnet", "keras_regnet.*", "tuner", "tuner.*"]),
    license="MIT",
    python_requires=">=3.11",
    classifiers=[
        "Development Status :: 4 - Beta",
        "Intended Audience :: Science/Research",
        "License :: OSI Approved :: MIT License",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.3",
        "keras-tuner>=1.4,<1.5",
        # Keras Tuner's TensorFlow path imports it on every trial.
        "tensorboard",
        "tensorflow-datasets",
        "numpy",
        "h5py",
        "matplotlib",
        # The bundled offline default data (handwritten digits).
        "scikit-learn",
    ],
    extras_require={
        # Reading .pth/.pyth checkpoints; the CPU build, pinned.
        "torch": ["torch==2.13.0"],
        # keras_regnet.hub: keras-hub's backbone, classifier, presets, tasks.
        "hub": ["keras-hub>=0.32"],
        # Deployment beyond TFLite (which TensorFlow has): ONNX.
        "deploy": ["tf2onnx", "onnxruntime"],
        "test": [
            "pytest",
            "pytest-xdist",
            "tf-keras",
            "jax",
            "torch==2.13.0",
            "pycls",
            "safetensors",
            # The reference of RegNetZ/V; torchvision pinned to the CPU
            # torch's release (never imported: tests stand in for it).
            "timm==1.0.31",
            "torchvision==0.28.0",
            "keras-hub>=0.32",
            "tf2onnx",
            "onnxruntime",
        ],
    },
    entry_points={"console_scripts": ["keras-regnet-tune=tuner.__main__:main"]},
)
