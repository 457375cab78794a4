"""The model zoo: one ResNet family (:mod:`.resnet`), its named variants (:mod:`.registry`),
counting (:mod:`.counting`) and weight import from GluonCV (:mod:`.gluoncv_import`)."""
from bench.models.registry import (ALIASES, ModelSpec, get_model, get_spec, list_models,
                                   model_flags, resolve_name)

__all__ = ["ALIASES", "ModelSpec", "get_model", "get_spec", "list_models", "model_flags",
           "resolve_name", "profile", "from_gluoncv"]


def __getattr__(name):
    # profile and from_gluoncv import mxnet (and gluoncv); keep `import bench.models` light.
    if name == "profile":
        from bench.models.counting import profile
        return profile
    if name == "from_gluoncv":
        from bench.models.gluoncv_import import from_gluoncv
        return from_gluoncv
    raise AttributeError(name)
