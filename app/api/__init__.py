"""The read and act API (CONTRACT.md section 5) and the events API (section 3), on flask-smorest.

- base.py      the blueprint, parser and Api classes (contract-shaped errors, 400 not 422)
- accounts.py, tasks.py, events.py, health.py   the endpoints
- auth.py      bearer tokens: service tokens and personal ones, scoped like the admin
- schemas.py   the marshmallow schemas the OpenAPI document is written from

`init_app(app)` registers them all and documents the spec route.
"""

from __future__ import annotations

from flask import Flask

from app.api.base import ERROR_RESPONSES, TriageApi
from app.api.schemas import ErrorSchema


def init_app(app: Flask) -> None:
    from app.api import accounts, events, health, tasks
    from app.extensions import csrf

    app.config.setdefault("API_TITLE", "Triage")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    api = TriageApi(
        app,
        spec_kwargs={
            "info": {
                "description": "Customer health in, playbooks and tasks out. "
                "Every /api/v1 endpoint takes `Authorization: Bearer <api token>`: a service "
                "token (API_TOKENS) sees everything; a personal token (`flask users token EMAIL`) "
                "sees only what its person sees in the admin. POST /events takes service "
                "tokens only."
            },
            "security": [{"bearerAuth": []}],
        },
    )
    _register_components(api)
    for blueprint in (accounts.blp, tasks.blp, events.blp):
        csrf.exempt(blueprint)  # authenticated by token, not by session cookie
        api.register_blueprint(blueprint)
    api.register_blueprint(health.blp)
    _document_spec_route(app, api)
    app.extensions["triage_api"] = api


def _register_components(api: TriageApi) -> None:
    from app.api.schemas import AcceptedSchema
    from app.intake.event_validation import EventSchema

    components = api.spec.components
    components.schema("Event", schema=EventSchema)
    components.schema("Accepted", schema=AcceptedSchema)
    components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    # ErrorSchema is already the "Error" schema: smorest registered it as ERROR_SCHEMA.
    for name, description, headers in ERROR_RESPONSES.values():
        response = {"description": description, "content": {"application/json": {"schema": ErrorSchema}}}
        if headers:
            response["headers"] = headers
        components.response(name, response)


def _document_spec_route(app: Flask, api: TriageApi) -> None:
    from flask import request

    from app.api.auth import require_caller

    @app.before_request
    def _spec_needs_token():
        # CONTRACT section 5: everything under /api/v1 takes the bearer token, the document too
        # (a personal token as well: it describes the API its person may call).
        if request.endpoint == "api-docs.openapi_json":
            require_caller()

    # smorest serves the document but does not list its own route in it.
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == "api-docs.openapi_json")
    api.spec.path(
        rule=rule,
        operations={
            "get": {
                "summary": "This OpenAPI 3 document",
                "tags": ["Meta"],
                "responses": {
                    "200": {
                        "description": "OpenAPI document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                },
            }
        },
    )
    api.spec.tag({"name": "Meta", "description": "About the API itself"})
