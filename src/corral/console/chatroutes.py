"""The test chat with an Agent lives here: `/agents/{namespace}/{name}/chat`.

The Agent detail page links to it; `app.create_app` includes this router. (Filled in by the
chat work: the page and its stream through the API server's service proxy.)
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
