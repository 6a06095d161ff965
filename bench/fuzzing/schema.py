"""Schemathesis over the served OpenAPI document, as every role and as an anonymous caller."""

from __future__ import annotations

from typing import Any

from bench.fuzzing.common import Figures, random_address, token


def run_schemathesis(base: str, secret: str, examples: int, fig: Figures) -> None:
    import requests
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error, response_schema_conformance

    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    session = requests.Session()
    roles: dict[str, str | None] = {"anonymous": None,
                                    "user": token(secret, "fuzz-user", ["user"]),
                                    "service": token(secret, "fuzz-bot", ["service"]),
                                    "admin": token(secret, "fuzz-admin", ["admin"])}
    def fuzz_operation(op: Any, mode: Any, bearer: str | None, area: str) -> None:
        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def one(case: Any) -> None:
            if bearer is not None:
                case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
                case.headers["Authorization"] = f"Bearer {bearer}"
            # Many callers, as in the field: one address's rejected tokens must not lock the others out.
            case.headers = {**(case.headers or {}), "X-Forwarded-For": random_address()}
            try:
                try:
                    response = case.call(base_url=base, session=session, timeout=60)
                except requests.ConnectionError:  # the server dropped the kept-alive connection: once more
                    response = case.call(base_url=base, session=session, timeout=60)
            except Exception as exc:  # a refused request (bad header bytes) is the client's doing
                fig.record(area, 0, type(exc).__name__)
                return
            fig.record(area, response.status_code, f"{case.method} {case.formatted_path}")
            for check, kind in ((not_a_server_error, None), (response_schema_conformance, "schema")):
                try:
                    case.validate_response(response, checks=[check])
                except BaseExceptionGroup as exc:  # Schemathesis reports its failures as a group
                    if kind is not None:
                        fig.violation(kind, f"{area} {response.status_code}: {str(exc)[:200]}")

        try:
            one()
        except Unsatisfiable:  # nothing to make invalid (an operation without parameters)
            pass

    for result in schema.get_all_operations():
        op = result.ok()
        area = f"api {op.method.upper()} {op.path}"
        for bearer in roles.values():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz_operation(op, mode, bearer, area)
