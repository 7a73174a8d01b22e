from studio.sandbox.server import Response

ROUTES = []


def error(status, message, kind):
    return Response(status, {"error": {"message": message, "type": kind}})
