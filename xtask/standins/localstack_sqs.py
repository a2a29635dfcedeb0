"""LocalStack with SQS only, on loopback: the webhook queue's stand-in (started by xtask).

LocalStack's twisted gateway listens on every interface whatever GATEWAY_LISTEN says (its
`runtime/server/twisted.py` leaves `interface` unset, with a TODO), which would expose an
unauthenticated queue to the network. This binds its IPv4 listeners to loopback, then runs
LocalStack's own entry point. Everything else is set by xtask in the environment.
"""

import runpy

from twisted.internet import endpoints


class _LoopbackEndpoint(endpoints.TCP4ServerEndpoint):
    def __init__(self, reactor, port, backlog=50, interface="127.0.0.1"):
        super().__init__(reactor, port, backlog, interface)


endpoints.TCP4ServerEndpoint = _LoopbackEndpoint
runpy.run_module("localstack.runtime.main", run_name="__main__", alter_sys=True)
