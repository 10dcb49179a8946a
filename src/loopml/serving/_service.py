"""The prediction service without HTTP: parse, fetch features, validate, route, predict,
fall back, log. The web app (``_app.py``) is a thin edge over it, and tests and the replay
simulator can call it in-process.

A ``Deployment`` is an immutable snapshot (models by version, routing policy, fallback,
validator). ``swap`` replaces it with one assignment, so a request that started on the old
snapshot finishes on it and the next one sees the new: a model swap fails no request.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from loopml.core import BackendError, ConfigError, DataError, ensure_utc, get_logger, new_id, utcnow
from loopml.data import RecordValidator
from loopml.experiments import ChampionPolicy, RoutingDecision, RoutingPolicy
from loopml.serving._log import PredictionLogWriter
from loopml.serving._metrics import ServiceMetrics
from loopml.serving._model import ServedModel
from loopml.serving._requests import ParsedRequest, RequestError, parse_body

__all__ = ["Deployment", "FeatureLookup", "PredictionService"]

_log = get_logger("serving")

# entity keys -> (values, statuses, event times); statuses: present | missing | outside_ttl
FeatureLookup = Callable[
    [dict[str, Any]], tuple[dict[str, Any], dict[str, str], dict[str, str | None]]
]

_HARD_PROBLEMS = {"missing_column", "wrong_type", "target_present"}


@dataclass(frozen=True)
class Deployment:
    """What serves: models by version, the routing policy, the fallback and the validator."""

    models: dict[str, ServedModel]
    policy: RoutingPolicy
    fallback: ServedModel | None = None
    validator: RecordValidator | None = None
    name: str = "model"
    aliases: dict[str, str] = field(default_factory=dict)

    @classmethod
    def single(
        cls,
        model: ServedModel,
        *,
        fallback: ServedModel | None = None,
        validator: RecordValidator | None = None,
        name: str = "model",
    ) -> Deployment:
        """One model that answers every request."""
        return cls({model.version: model}, ChampionPolicy(model.version), fallback, validator, name)


class PredictionService:
    """Everything a prediction request goes through, with metrics and the prediction log."""

    def __init__(
        self,
        deployment: Deployment,
        *,
        log_writer: PredictionLogWriter | None = None,
        feedback_writer: PredictionLogWriter | None = None,
        feature_lookup: FeatureLookup | None = None,
        latency_budget_ms: float = 50.0,
        enforce_budget: bool = True,
        max_rows: int = 10_000,
    ) -> None:
        self._deployment = deployment
        self.log_writer = log_writer
        self.feedback_writer = feedback_writer
        self.feature_lookup = feature_lookup
        self.latency_budget_ms = latency_budget_ms
        self.enforce_budget = enforce_budget
        self.max_rows = max_rows
        self.metrics = ServiceMetrics()
        self._model_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="loopml-model")
        self._shadow_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loopml-shadow")
        self._swap_lock = threading.Lock()
        self.started = time.time()
        # request ids: a random per-process prefix and a counter (os.urandom per request
        # costs tens of microseconds on a busy machine; this costs well under one)
        self._id_prefix = new_id("req")
        self._id_counter = itertools.count(1)

    def _new_request_id(self) -> str:
        return f"{self._id_prefix}-{next(self._id_counter):x}"

    # -- deployment --------------------------------------------------------------------
    @property
    def deployment(self) -> Deployment:
        return self._deployment

    def swap(self, deployment: Deployment) -> None:
        """Serve ``deployment`` from the next request on (in-flight requests finish as they are)."""
        missing = [v for v in _versions_needed(deployment) if v not in deployment.models]
        if missing:
            raise ConfigError(f"the routing policy names versions that are not loaded: {missing}")
        with self._swap_lock:
            self._deployment = deployment
        self.metrics.count("swaps")

    # -- predict -----------------------------------------------------------------------
    def predict(self, body: Any) -> dict[str, Any]:
        """Serve one request body; raises ``RequestError`` (422) for bad input."""
        start = time.perf_counter()
        deployment = self._deployment
        try:
            parsed = parse_body(body, max_rows=self.max_rows)
            statuses, event_times = self._features(parsed)
            self._validate(parsed, deployment)
        except RequestError:
            self.metrics.count("validation_failures")
            raise
        request_id = parsed.request_id or self._new_request_id()
        unit_id = parsed.unit_id or _unit(parsed) or request_id
        decision = deployment.policy.route(unit_id, request_id)
        scores, fallback_reason, version = self._score(deployment, decision, parsed, start)
        latency_ms = (time.perf_counter() - start) * 1000.0
        self._record(
            deployment,
            decision,
            parsed,
            request_id,
            unit_id,
            scores,
            version,
            fallback_reason,
            latency_ms,
            statuses,
            event_times,
        )
        response: dict[str, Any] = {
            "predictions": scores.tolist(),
            "request_id": request_id,
            "model_version": version,
            "arm": decision.arm,
            "fallback": fallback_reason is not None,
        }
        if fallback_reason is not None:
            response["fallback_reason"] = fallback_reason
        if statuses:
            response["feature_status"] = statuses
        return response

    def _features(self, parsed: ParsedRequest) -> tuple[dict[str, str], dict[str, str | None]]:
        if parsed.entities is None:
            return {}, {}
        if self.feature_lookup is None:
            raise RequestError(
                [{"field": "entities", "problem": "this service has no online features configured"}]
            )
        values, statuses, event_times = self.feature_lookup(parsed.entities)
        # a feature the store lacks (or holds past its TTL) is served as null, so the
        # model's own missing-value path is used; the status says so in the response and log
        served = {k: values.get(k) if s == "present" else None for k, s in statuses.items()}
        merged = {**served, **parsed.records[0]}
        merged.update({k: v for k, v in parsed.entities.items() if k not in merged})
        parsed.records[0] = merged
        for name, status in statuses.items():
            if status != "present":
                self.metrics.count("missing_features", feature=name, status=status)
        return statuses, event_times

    def _validate(self, parsed: ParsedRequest, deployment: Deployment) -> None:
        validator = deployment.validator
        if validator is None:
            return
        problems: list[dict[str, str]] = []
        for index, record in enumerate(parsed.records):
            for problem in validator.validate(record):
                if problem.problem in _HARD_PROBLEMS:
                    where = (
                        problem.column
                        if len(parsed.records) == 1
                        else f"rows[{index}].{problem.column}"
                    )
                    problems.append(
                        {"field": where, "problem": f"{problem.message}; {problem.fix}"}
                    )
                else:
                    self.metrics.count(
                        "data_warnings", column=problem.column, problem=problem.problem
                    )
        if problems:
            raise RequestError(problems)

    def _score(
        self, deployment: Deployment, decision: RoutingDecision, parsed: ParsedRequest, start: float
    ) -> tuple[np.ndarray, str | None, str]:
        model = deployment.models.get(decision.version)
        if model is None:
            return self._fallback(deployment, parsed, f"version {decision.version} is not loaded")
        left_ms = self.latency_budget_ms - (time.perf_counter() - start) * 1000.0
        if left_ms <= 0:
            return self._fallback(deployment, parsed, "latency budget spent before the model ran")
        try:
            if self.enforce_budget:
                future: Future[np.ndarray] = self._model_pool.submit(
                    model.predict_records, parsed.records
                )
                scores = future.result(timeout=left_ms / 1000.0)
            else:  # a fast model runs inline; an overrun is counted, not cut off
                scores = model.predict_records(parsed.records)
                if (time.perf_counter() - start) * 1000.0 > self.latency_budget_ms:
                    self.metrics.count("budget_overruns", version=decision.version)
        except FutureTimeout:
            return self._fallback(
                deployment,
                parsed,
                f"model {decision.version} ran out of its {self.latency_budget_ms:g} ms budget",
            )
        except Exception as error:  # the model failed: answer with the baseline, say so
            _log.warning("model %s failed: %s", decision.version, error)
            self.metrics.count("errors", version=decision.version)
            return self._fallback(
                deployment, parsed, f"model {decision.version} failed: {type(error).__name__}"
            )
        if not np.all(np.isfinite(scores)):
            return self._fallback(
                deployment, parsed, f"model {decision.version} returned non-finite scores"
            )
        return scores, None, decision.version

    def _fallback(
        self, deployment: Deployment, parsed: ParsedRequest, reason: str
    ) -> tuple[np.ndarray, str | None, str]:
        fallback = deployment.fallback
        self.metrics.count("fallbacks", reason=reason.split(":")[0][:60])
        if fallback is None:
            raise BackendError(  # HTTP 503: the service failed, not the client
                f"no prediction: {reason}, and no fallback model is configured",
                hint="set serve.fallback: baseline in loopml.yaml",
            )
        return fallback.predict_records(parsed.records), reason, fallback.version

    def _record(
        self,
        deployment: Deployment,
        decision: RoutingDecision,
        parsed: ParsedRequest,
        request_id: str,
        unit_id: str,
        scores: np.ndarray,
        version: str,
        fallback_reason: str | None,
        latency_ms: float,
        statuses: dict[str, str],
        event_times: dict[str, str | None],
    ) -> None:
        self.metrics.count("requests", version=version, arm=decision.arm)
        self.metrics.observe(version, latency_ms)
        if self.log_writer is not None:
            now = utcnow().isoformat()
            for index, (record, score) in enumerate(zip(parsed.records, scores, strict=True)):
                row = {
                    "request_id": request_id
                    if len(parsed.records) == 1
                    else f"{request_id}:{index}",
                    "time": now,
                    "unit_id": unit_id,
                    "model_version": version,
                    "arm": decision.arm,
                    "experiment": decision.experiment,
                    "propensity": decision.propensity,
                    "prediction": float(score) if score.ndim == 0 else json.dumps(score.tolist()),
                    "latency_ms": latency_ms,
                    "fallback": fallback_reason is not None,
                    "fallback_reason": fallback_reason,
                    "shadow": False,
                    "feature_status": json.dumps(statuses) if statuses else None,
                    "feature_times": json.dumps(event_times) if event_times else None,
                }
                row.update({f"f_{k}": v for k, v in record.items()})
                self.log_writer.write(row)
        if decision.shadow_versions:
            self._shadow_pool.submit(
                self._shadow, deployment, decision, parsed, request_id, unit_id
            )

    def _shadow(
        self,
        deployment: Deployment,
        decision: RoutingDecision,
        parsed: ParsedRequest,
        request_id: str,
        unit_id: str,
    ) -> None:
        """Score the shadow versions off the request path; log, never answer."""
        for version in decision.shadow_versions:
            model = deployment.models.get(version)
            start = time.perf_counter()
            error: str | None = None
            scores: list[float | None]
            try:
                if model is None:
                    raise KeyError(version)
                scores = [float(s) for s in model.predict_records(parsed.records)]
            except Exception as failure:
                error = type(failure).__name__
                scores = [None] * len(parsed.records)
                self.metrics.count("shadow_errors", version=version)
            latency_ms = (time.perf_counter() - start) * 1000.0
            self.metrics.count("shadow_predictions", version=version)
            if self.log_writer is None:
                continue
            now = utcnow().isoformat()
            for index, score in enumerate(scores):
                self.log_writer.write(
                    {
                        "request_id": request_id if len(scores) == 1 else f"{request_id}:{index}",
                        "time": now,
                        "unit_id": unit_id,
                        "model_version": version,
                        "arm": "shadow",
                        "experiment": decision.experiment,
                        "propensity": None,
                        "prediction": score,
                        "latency_ms": latency_ms,
                        "fallback": False,
                        "fallback_reason": error,
                        "shadow": True,
                    }
                )

    # -- feedback ----------------------------------------------------------------------
    def feedback(self, body: Any) -> dict[str, Any]:
        """Store a natural label: ``{"request_id", "label", "time"?}``."""
        if not isinstance(body, dict):
            raise RequestError(
                [{"field": "body", "problem": "must be an object with request_id and label"}]
            )
        problems = []
        request_id = body.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            problems.append({"field": "request_id", "problem": "must be a non-empty string"})
        label = body.get("label")
        if isinstance(label, bool) or not isinstance(label, int | float) or not np.isfinite(label):
            problems.append({"field": "label", "problem": "must be a finite number"})
        when = body.get("time")
        if when is not None:
            try:
                when = ensure_utc(datetime.fromisoformat(str(when))).isoformat()
            except (ValueError, DataError):
                problems.append(
                    {"field": "time", "problem": "must be an ISO 8601 time with a time zone"}
                )
        if problems:
            raise RequestError(problems)
        row = {
            "request_id": request_id,
            "label": float(label),  # type: ignore[arg-type]  # checked above
            "time": when or utcnow().isoformat(),
        }
        if self.feedback_writer is None:
            raise ConfigError("this service stores no feedback (no feedback log configured)")
        self.feedback_writer.write(row)
        self.metrics.count("feedback")
        return {"stored": True, "request_id": request_id}

    def close(self) -> None:
        """Finish shadow work and flush the logs."""
        self._shadow_pool.shutdown(wait=True)
        self._model_pool.shutdown(wait=False)
        for writer in (self.log_writer, self.feedback_writer):
            if writer is not None:
                writer.close()


def _unit(parsed: ParsedRequest) -> str | None:
    if parsed.entities:
        return ",".join(f"{k}={v}" for k, v in sorted(parsed.entities.items()))
    return None


def _versions_needed(deployment: Deployment) -> list[str]:
    policy: Any = deployment.policy
    names = [getattr(policy, attr, None) for attr in ("version", "champion", "challenger")]
    return [n for n in names if isinstance(n, str)]
