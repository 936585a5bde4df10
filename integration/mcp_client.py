"""Drives `depfw mcp` with the official MCP Python SDK, as an agent tool would.

Run by integration/mcp.rs with the SDK's interpreter (`mcp-python`, from
.ci/install-clients.sh):

    mcp-python integration/mcp_client.py '<json: depfw, url, token, refused_url, lockfile>'

Starts `depfw mcp --url <url>` as a stdio subprocess with the agent token in DEPFW_TOKEN,
lists the tools, meets a refusal as the agent's package manager would (a download with
the token in the Authorization header), then calls every tool and prints one JSON object
with what it saw, for the Rust test to check.
"""

import asyncio
import json
import sys
import urllib.error
import urllib.request

from mcp import Client
from mcp.client.stdio import StdioServerParameters


def refused_request_id(url: str, token: str) -> str:
    """The x-depfw-request-id of a download depfw refuses (403)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        urllib.request.urlopen(request)
    except urllib.error.HTTPError as e:
        assert e.code == 403, f"expected 403 from {url}, got {e.code}"
        return e.headers["x-depfw-request-id"]
    raise AssertionError(f"{url} was served, expected a refusal")


def structured(result) -> dict:
    assert result.content and result.content[0].type == "text", result
    # The text is the same JSON as the structured content: what a model reads.
    text = json.loads(result.content[0].text)
    assert text == result.structured_content, (text, result.structured_content)
    return {"is_error": bool(result.is_error), "value": result.structured_content}


async def main(cfg: dict) -> dict:
    params = StdioServerParameters(
        command=cfg["depfw"],
        args=["mcp", "--url", cfg["url"]],
        env={"DEPFW_TOKEN": cfg["token"]},
    )
    seen = {}
    async with Client(params, read_timeout_seconds=120) as client:
        seen["protocol_version"] = client.protocol_version
        seen["server"] = client.server_info.name if client.server_info else None
        tools = await client.list_tools()
        seen["tools"] = [t.name for t in tools.tools]
        seen["check"] = structured(
            await client.call_tool("check_packages", {"packages": cfg["packages"]})
        )
        request_id = refused_request_id(cfg["refused_url"], cfg["token"])
        seen["refused_request_id"] = request_id
        seen["explain"] = structured(
            await client.call_tool("explain_refusal", {"request_id": request_id})
        )
        seen["explain_unknown"] = structured(
            await client.call_tool("explain_refusal", {"request_id": "no-such-request"})
        )
        ask = {"package": cfg["approval"], "justification": cfg["justification"]}
        seen["approval"] = structured(await client.call_tool("request_approval", ask))
        seen["approval_again"] = structured(await client.call_tool("request_approval", ask))
        seen["audit"] = structured(
            await client.call_tool("audit_lockfile", {"path": cfg["lockfile"]})
        )
    return seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
