"""uvicorn's HTTP protocol with TCP_NODELAY set on every connection, in every server process.

asyncio sets TCP_NODELAY only on sockets it recognises as TCP; a listening socket that uvicorn hands
to its worker processes (``mfrec serve --processes N``) comes back without its protocol number, so
the accepted connections keep Nagle's algorithm: a response written in two parts (headers, body)
then waits for the client's delayed ACK, about 40 ms on Linux, on every request. Setting the option
on each connection removes that wait. Measured on the test suite's 200-movie run, one client: median
56 ms -> 4 ms a request with 2 processes, and 12 ms -> 3.5 ms with one (its connections waited too).
"""

from __future__ import annotations

import socket

try:  # the protocol uvicorn's "auto" would pick
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base


class NoDelayProtocol(_Base):
    """uvicorn's HTTP/1.1 protocol; each new connection gets TCP_NODELAY."""

    def connection_made(self, transport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # not a TCP socket after all: nothing to change
                pass
        super().connection_made(transport)
