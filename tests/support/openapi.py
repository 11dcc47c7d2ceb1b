"""Validate HTTP requests and answers against an OpenAPI 3.1 description (JSON Schema 2020-12).

Used by the stand-in MAS: every request the bot sends and every answer the stand-in gives is
checked against MAS's published description (docs/mas-admin-api-spec.json), with `$ref`s
resolved into its components. Formats are checked by our own checkers, so that a check does not
silently pass because an optional jsonschema dependency is missing.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_URI = "urn:openapi:description"

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())

    @checker.checks("date-time", raises=ValueError)
    def date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not _RFC3339.match(value):
            raise ValueError("not RFC 3339")
        text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
        text = re.sub(r"\.(\d+)", lambda m: "." + (m.group(1) + "000000")[:6], text)
        datetime.fromisoformat(text)
        return True

    @checker.checks("uri")
    def uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return bool(parts.scheme) and " " not in value

    @checker.checks("ip", raises=ValueError)
    def ip(value: object) -> bool:
        if isinstance(value, str):
            ipaddress.ip_address(value)
        return True

    @checker.checks("email")
    def email(value: object) -> bool:
        if not isinstance(value, str):
            return True
        local, at, domain = value.rpartition("@")
        return bool(at and local and domain) and not any(c.isspace() for c in value) and "@" not in domain

    for name, bits in (("uint", 64), ("uint8", 8), ("uint32", 32)):
        def unsigned(value: object, bits: int = bits) -> bool:
            if isinstance(value, bool) or not isinstance(value, int):
                return True
            return 0 <= value < 2**bits

        checker.checks(name)(unsigned)
    return checker


def _pointer(*parts: str | int) -> str:
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass
class Parameter:
    name: str
    location: str  # "path" | "query"
    required: bool
    schema: dict[str, Any]
    validator: Draft202012Validator
    kind: str  # "array" | "boolean" | "integer" | "string"


@dataclass
class Operation:
    method: str
    template: str
    operation_id: str
    regex: re.Pattern[str]
    names: list[str] = field(default_factory=list)
    parameters: dict[str, Parameter] = field(default_factory=dict)
    body_validator: Draft202012Validator | None = None
    body_required: bool = False
    responses: dict[int, Draft202012Validator | None] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.method} {self.template} ({self.operation_id})"


class OpenAPI:
    """The operations of one description, ready to match and validate."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        resource = Resource.from_contents({**spec, "$id": SPEC_URI}, default_specification=DRAFT202012)
        self.registry: Registry = Registry().with_resource(SPEC_URI, resource)
        self.formats = format_checker()
        self.operations: list[Operation] = []
        for template, item in spec["paths"].items():
            for method, op in item.items():
                self.operations.append(self._operation(template, method, op))
        self.error_validator = self._validator(_pointer("components", "schemas", "ErrorResponse"))

    @classmethod
    def load(cls, path: Path) -> OpenAPI:
        return cls(json.loads(path.read_text()))

    def _validator(self, pointer: str) -> Draft202012Validator:
        # A $ref into the description keeps its own relative $refs resolvable.
        return Draft202012Validator({"$ref": SPEC_URI + pointer}, registry=self.registry, format_checker=self.formats)

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in schema:
            ref = str(schema["$ref"])
            node: Any = self.spec
            for part in ref.removeprefix("#/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            schema = node
        return schema

    def _kind(self, schema: Mapping[str, Any]) -> str:
        schema = self.resolve(schema)
        kinds = schema.get("type")
        if kinds is None:
            for option in schema.get("anyOf", []) + schema.get("oneOf", []):
                kind = self._kind(option)
                if kind != "null":
                    return kind
            return "string"
        if isinstance(kinds, list):
            kinds = next((k for k in kinds if k != "null"), "string")
        return str(kinds)

    def _operation(self, template: str, method: str, op: dict[str, Any]) -> Operation:
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$"
        names = re.findall(r"\{([^}]+)\}", template)
        operation = Operation(method.upper(), template, str(op.get("operationId")), re.compile(pattern), names)
        for index, param in enumerate(op.get("parameters", [])):
            pointer = _pointer("paths", template, method, "parameters", index, "schema")
            operation.parameters[param["name"]] = Parameter(
                name=param["name"], location=param["in"], required=bool(param.get("required")),
                schema=param["schema"], validator=self._validator(pointer), kind=self._kind(param["schema"]),
            )
        body = op.get("requestBody")
        if body is not None:
            operation.body_validator = self._validator(
                _pointer("paths", template, method, "requestBody", "content", "application/json", "schema"))
            operation.body_required = bool(body.get("required", False))
        for status, response in op.get("responses", {}).items():
            content = (response.get("content") or {}).get("application/json")
            operation.responses[int(status)] = (
                self._validator(_pointer("paths", template, method, "responses", status, "content", "application/json", "schema"))
                if content else None
            )
        return operation

    # -- matching

    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation for a request (a literal segment wins over a parameter), with its decoded path parameters."""
        candidates = []
        for operation in self.operations:
            found = operation.regex.match(path) if operation.method == method else None
            if found:
                candidates.append((len(operation.names), operation, found))
        if not candidates:
            return None
        _, operation, found = min(candidates, key=lambda c: c[0])
        return operation, {name: unquote(value) for name, value in zip(operation.names, found.groups())}

    # -- requests

    def check_request(
        self, operation: Operation, path_params: Mapping[str, str], query: Sequence[tuple[str, str]],
        content_type: str, body: bytes,
    ) -> tuple[list[str], dict[str, Any], Any]:
        """Problems, typed parameters and the decoded body of one request."""
        problems: list[str] = []
        values: dict[str, Any] = {}
        for name, raw in path_params.items():
            param = operation.parameters.get(name)
            if param is None:
                problems.append(f"path parameter {name} is not described")
                continue
            problems += self._check_value(param, [raw], values)
        given: dict[str, list[str]] = {}
        for key, value in query:
            given.setdefault(key, []).append(value)
        for key in given:
            param = operation.parameters.get(key)
            if param is None or param.location != "query":
                problems.append(f"query parameter {key!r} is not described for {operation.operation_id}")
        for name, param in operation.parameters.items():
            if param.location != "query":
                continue
            if name in given:
                problems += self._check_value(param, given[name], values)
            elif param.required:
                problems.append(f"required query parameter {name!r} is missing")
        decoded: Any = None
        if body:
            if operation.body_validator is None:
                problems.append(f"{operation.operation_id} takes no request body, but one was sent")
            elif content_type.split(";")[0].strip().lower() != "application/json":
                problems.append(f"request body must be application/json, not {content_type or 'untyped'}")
            else:
                try:
                    decoded = json.loads(body)
                except ValueError as exc:
                    problems.append(f"request body is not JSON: {exc}")
                else:
                    problems += [f"request body: {e}" for e in _errors(operation.body_validator, decoded)]
        elif operation.body_required:
            problems.append(f"{operation.operation_id} requires a JSON request body")
        return problems, values, decoded

    def _check_value(self, param: Parameter, raw: list[str], into: dict[str, Any]) -> list[str]:
        label = f"{param.location} parameter {param.name!r}"
        if param.kind != "array" and len(raw) > 1:
            return [f"{label} is given {len(raw)} times"]
        try:
            value: Any = [self._convert(param, r) for r in raw] if param.kind == "array" else self._convert(param, raw[0])
        except ValueError as exc:
            return [f"{label}: {exc}"]
        problems = [f"{label}: {e}" for e in _errors(param.validator, value)]
        if not problems:
            into[param.name] = value
        return problems

    def _convert(self, param: Parameter, raw: str) -> Any:
        kind = param.kind
        if kind == "array":
            kind = self._kind(self.resolve(param.schema).get("items", {}))
        if kind == "boolean":
            if raw not in ("true", "false"):
                raise ValueError(f"{raw!r} is not true or false")
            return raw == "true"
        if kind == "integer":
            if not re.fullmatch(r"-?\d+", raw):
                raise ValueError(f"{raw!r} is not an integer")
            return int(raw)
        return raw

    # -- answers

    def check_response(self, operation: Operation, status: int, body: Any, has_body: bool) -> list[str]:
        if status in operation.responses:
            validator = operation.responses[status]
            if validator is None:
                return [f"{operation.operation_id} answers {status} without a body, but a body was given"] if has_body else []
            if not has_body:
                return [f"{operation.operation_id} {status} answer must have a JSON body"]
            return [f"{status} answer: {e}" for e in _errors(validator, body)]
        if status >= 400:
            # MAS answers every error in one shape, also with statuses a handler's description omits.
            return [f"{status} error answer: {e}" for e in _errors(self.error_validator, body)]
        return [f"{operation.operation_id} does not answer {status} (described: {sorted(operation.responses)})"]


def _errors(validator: Draft202012Validator, value: Any) -> list[str]:
    found = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in error.absolute_path)
        found.append(f"{where or '(root)'}: {error.message}")
    return found
