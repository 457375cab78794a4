"""Data sets, augmentation and evaluation protocols (see README.md in this folder)."""
from bench.data.build import EvalData, TrainData, build_eval, build_train
from bench.data.evaluate import evaluate
from bench.data.locate import resolve_data_dir
from bench.data.spec import DataSpec, in_channels, num_classes

__all__ = ["DataSpec", "EvalData", "TrainData", "build_eval", "build_train", "evaluate",
           "in_channels", "num_classes", "resolve_data_dir"]
