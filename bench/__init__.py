"""resnet-bench: reproduce the ResNet family's published results with MXNet Gluon.

The package holds the models (:mod:`bench.models`), the ``bench`` command (:mod:`bench.cli`)
and the errors shown to the user (:mod:`bench.errors`). Importing it stays light: MXNet is
imported only where it is needed, through :func:`bench._mxnet.require_mxnet`, so that a machine
without MXNet still gets a one-line explanation instead of a traceback.
"""

__version__ = "0.1.0"
