"""Installs the `osmn_tf` library; the command-line tools stay in `tools/`."""
import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent


def _requirements(name, skip=("requirements.txt",)):
    """Reads a pip requirements file, following its `-r` includes except `skip`."""
    found = []
    for line in (HERE / name).read_text().splitlines():
        line = line.strip()
        if line.startswith("-r "):
            included = line[3:].strip()
            if included not in skip:
                found += _requirements(included, skip)
        elif line and not line.startswith("#"):
            found.append(line)
    return found


setup(
    name="osmn_tf",
    version="0.1.0",
    description="OSMN (Efficient Video Object Segmentation via Network Modulation, CVPR 2018) in TensorFlow 2 / Keras 3",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["osmn_tf", "osmn_tf.*"]),
    python_requires=">=3.10",
    install_requires=_requirements("requirements.txt"),
    extras_require={
        "test": _requirements("requirements-test.txt"),
        "export": _requirements("requirements-export.txt"),
        "serving": _requirements("requirements-serving.txt"),
        # The INT8 per-frame network (OpenVINO + NNCF); int8-study: every route tools/benchmark_int8.py compares.
        "int8": _requirements("requirements-int8.txt"),
        "int8-study": _requirements("requirements-int8-study.txt"),
        # The release's dense-CRF post-processing.
        "crf": _requirements("requirements-crf.txt"),
        # A video corpus on Apache Beam (osmn_tf.beam, tools/segment.py --runner).
        "beam": _requirements("requirements-beam.txt"),
        # The CUDA libraries TensorFlow's GPU kernels load (Linux).
        "gpu": ["tensorflow[and-cuda]==2.21.*"],
    },
    license="Apache-2.0",
)
