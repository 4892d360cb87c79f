"""A Python Lambda handler, unchanged from AWS."""
import platform

calls = 0  # survives between invocations of one warm instance


def handler(event, context):
    global calls
    calls += 1
    name = (event.get("queryStringParameters") or {}).get("name", "world")
    print(f"greeting {name} (call {calls} of this instance)")
    return {
        "statusCode": 200,
        "headers": {"content-type": "text/plain; charset=utf-8"},
        "body": f"Hello, {name}! (from {context.function_name}, Python {platform.python_version()})\n",
    }
