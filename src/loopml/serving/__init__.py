"""Serving: the online prediction service, the prediction log, batch prediction.

>>> from loopml import serving
>>> service = serving.PredictionService(serving.Deployment.single(serving.constant_model(0.1)))
>>> service.predict({"dataframe_records": [{"x": 1}]})["predictions"]
[0.1]
"""

from loopml.serving._app import AdminActions, create_app
from loopml.serving._log import LogBackpressure, PredictionLogWriter
from loopml.serving._metrics import ServiceMetrics
from loopml.serving._model import RowEncoder, ServedModel, constant_model
from loopml.serving._requests import ParsedRequest, RequestError, parse_body
from loopml.serving._service import Deployment, FeatureLookup, PredictionService

__all__ = [
    "AdminActions",
    "Deployment",
    "FeatureLookup",
    "LogBackpressure",
    "ParsedRequest",
    "PredictionLogWriter",
    "PredictionService",
    "RequestError",
    "RowEncoder",
    "ServedModel",
    "ServiceMetrics",
    "constant_model",
    "create_app",
    "parse_body",
]
