"""Data sets, augmentation and evaluation protocols (see README.md in this folder)."""
from bench.data.build import (EvalData, TrainData, build_calibration, build_eval,
                              build_train)
from bench.data.evaluate import evaluate, evaluate_together
from bench.data.locate import resolve_data_dir
from bench.data.spec import DataSpec, eval_sizes, in_channels, num_classes, protocol_label

__all__ = ["DataSpec", "EvalData", "TrainData", "build_calibration", "build_eval", "build_train",
           "eval_sizes", "evaluate", "evaluate_together", "in_channels", "num_classes",
           "protocol_label", "resolve_data_dir"]
