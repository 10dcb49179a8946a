"""Serving: the online prediction service, the prediction log, batch prediction, fast backends.

* ``PredictionService`` (parse, online features, validate, route, predict, fall back, log)
  behind ``create_app`` (FastAPI); ``serve`` runs it for a workspace, one SO_REUSEPORT
  socket per worker; ``RegistryDeployer`` follows ``NAME@ALIAS`` in the registry.
* ``PredictionLogWriter``: batched, durable, bounded prediction log (kill -9 bound in its
  docstring).
* ``predict_parquet``: batch prediction, Parquet in and out, streamed, locally or on Dask.
* ``compile_model``: tl2cgen / ONNX Runtime backends admitted by a parity gate.
* ``compress``: distillation and pruning with a size / latency / metric / per-slice report.

>>> from loopml import serving
>>> service = serving.PredictionService(serving.Deployment.single(serving.constant_model(0.1)))
>>> service.predict({"dataframe_records": [{"x": 1}]})["predictions"]
[0.1]
"""

from loopml.serving._app import AdminActions, create_app
from loopml.serving._backends import BACKENDS, ParityReport, compile_model, find_compiled
from loopml.serving._batch import BatchResult, predict_parquet, score_frame
from loopml.serving._compress import (
    CompressionReport,
    Variant,
    compress,
    distill,
    prune_features,
    prune_trees,
)
from loopml.serving._deploy import (
    RegistryDeployer,
    load_registered,
    parse_model_ref,
    validator_for,
)
from loopml.serving._features import online_feature_lookup
from loopml.serving._log import LogBackpressure, PredictionLogWriter
from loopml.serving._metrics import ServiceMetrics
from loopml.serving._model import RowEncoder, ServedModel, SingleRowBooster, constant_model
from loopml.serving._requests import ParsedRequest, RequestError, parse_body
from loopml.serving._server import ServeOptions, bind_socket, build_service, serve
from loopml.serving._service import Deployment, FeatureLookup, PredictionService

__all__ = [
    "BACKENDS",
    "AdminActions",
    "BatchResult",
    "CompressionReport",
    "Deployment",
    "FeatureLookup",
    "LogBackpressure",
    "ParityReport",
    "ParsedRequest",
    "PredictionLogWriter",
    "PredictionService",
    "RegistryDeployer",
    "RequestError",
    "RowEncoder",
    "ServeOptions",
    "ServedModel",
    "ServiceMetrics",
    "SingleRowBooster",
    "Variant",
    "bind_socket",
    "build_service",
    "compile_model",
    "compress",
    "constant_model",
    "create_app",
    "distill",
    "find_compiled",
    "load_registered",
    "online_feature_lookup",
    "parse_body",
    "parse_model_ref",
    "predict_parquet",
    "prune_features",
    "prune_trees",
    "score_frame",
    "serve",
    "validator_for",
]
