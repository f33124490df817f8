"""The API's routers, one module per part of docs/agent-api.md; `callcenter.web.app` lists them."""
