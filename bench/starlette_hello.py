"""Plain Starlette hello world: the ceiling for a Python ASGI app on this machine.

Served by bench/hotpath_compare.py (configuration `starlette`) and, as the upstream a proxy
guards, by bench/gateway_bench.py:
`uvicorn starlette_hello:app --app-dir bench --loop uvloop --http httptools`.
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "world"})


app = Starlette(routes=[Route("/", hello, methods=["GET"])])
