"""FastAPI app, routers, auth and the static pages (routes are thin and call services)."""
