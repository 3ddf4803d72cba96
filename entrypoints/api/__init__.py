"""The REST API: an app factory, routers, request/response schemas and problem details."""

API_PREFIX = "/api/v1"
