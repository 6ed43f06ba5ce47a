#!/usr/bin/env python3
"""Drive one full MCP session with the official Python SDK client and print what was observed.

Usage:
    session.py --server everything [--prefix P] -- CMD ARGS...
    session.py --server filesystem --dir DIR [--prefix P] -- CMD ARGS...

The client is `mcp.ClientSession` over `mcp.client.stdio.stdio_client`: the SDK does the
protocol (and fails on anything it rejects), while a tap on the transport records the raw
JSON of every response, so fields the SDK's models do not know are compared too.

Prints ONE canonical JSON document (sorted keys) on stdout. Everything nondeterministic
(times of day, dates, the temp dir's path, JSON-RPC ids, progress tokens) is normalized,
so two direct runs print the same bytes.

--prefix P is gateway mode: every tool and prompt name the script calls gets P prepended,
list results keep only the tools and prompts whose names start with P and print them with
P stripped, so the document equals a direct run's. serverInfo is the gateway's own there,
so it is left out of the document in gateway mode.

Exits 2 with a message on stderr on any unexpected protocol error or timeout.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

warnings.simplefilter("ignore")  # deprecation notices for logging/setLevel and friends

# Seconds one request may take before the session fails, and the whole session.
REQUEST_TIMEOUT = 60.0
SESSION_TIMEOUT = 110.0

SAMPLING_REPLY = "Four. (fixed reply from session.py)"
SAMPLING_MODEL = "session-py-fixed-model"
ELICITATION_CONTENT = {
    "name": "Ada Lovelace",
    "check": True,
    "email": "ada@example.com",
    "integer": 7,
    "number": 2.5,
}
EVERYTHING_ROOT = {"uri": "file:///srv/session-py-root", "name": "session.py fixed root"}


class ProtocolFailure(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------------------------

_PATTERNS = [
    # ISO 8601 date-times: 2026-11-24T06:41:23.123Z, 2026-11-24T06:41:23+00:00
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"), "<DATETIME>"),
    # JavaScript Date#toString: Tue Nov 24 2026 06:41:23 GMT+0000 (Coordinated Universal Time)
    (
        re.compile(r"[A-Z][a-z]{2} [A-Z][a-z]{2} \d{2} \d{4} \d{2}:\d{2}:\d{2} GMT[+-]\d{4}(?: \([^)]*\))?"),
        "<DATETIME>",
    ),
    # Date#toLocaleTimeString: 6:41:23 AM, 06:41:23
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:\s?[AP]M)?\b"), "<TIME>"),
]


class Normalizer:
    def __init__(self, paths: list[str]):
        # Longest first, so a path's realpath and the path itself both map.
        self.paths = sorted({p for p in paths if p}, key=len, reverse=True)

    def text(self, s: str) -> str:
        for p in self.paths:
            s = s.replace(p, "<DIR>")
        for pattern, repl in _PATTERNS:
            s = pattern.sub(repl, s)
        return s

    def value(self, v: Any, key: str | None = None) -> Any:
        if isinstance(v, dict):
            out = {}
            for k, item in v.items():
                if k == "blob" and isinstance(item, str):
                    decoded = _utf8_blob(item)
                    if decoded is not None:
                        # A text blob with a timestamp inside: compare its normalized text.
                        out["blob(utf-8, normalized)"] = self.text(decoded)
                        continue
                out[k] = self.value(item, k)
            return out
        if isinstance(v, list):
            return [self.value(item) for item in v]
        if isinstance(v, str):
            return self.text(v)
        return v


def _utf8_blob(b64: str) -> str | None:
    try:
        raw = base64.b64decode(b64, validate=True)
    except ValueError:
        return None
    if raw[:2] == b"\x1f\x8b":  # gzip: binary, deterministic
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.isprintable() and any(ord(c) < 9 for c in text):
        return None
    return text


# ---------------------------------------------------------------------------------------------
# Transport tap: records raw JSON-RPC traffic from the server
# ---------------------------------------------------------------------------------------------


class Tap:
    def __init__(self) -> None:
        self.responses: list[dict[str, Any]] = []  # raw response envelopes, in arrival order
        self.server_requests: list[dict[str, Any]] = []  # raw server->client requests
        self.notifications: list[dict[str, Any]] = []  # raw notifications
        self.bad_lines: list[str] = []

    async def pump(self, source, sink) -> None:
        async with sink:
            async for item in source:
                if isinstance(item, Exception):
                    self.bad_lines.append(repr(item))
                else:
                    raw = item.message.model_dump(by_alias=True, mode="json", exclude_unset=True)
                    if "method" in raw and "id" in raw:
                        self.server_requests.append(raw)
                    elif "method" in raw:
                        self.notifications.append(raw)
                    else:
                        self.responses.append(raw)
                try:
                    await sink.send(item)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return


# ---------------------------------------------------------------------------------------------
# The session
# ---------------------------------------------------------------------------------------------


class Runner:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.prefix: str = args.prefix or ""
        self.tap = Tap()
        self.session: ClientSession | None = None
        self.progress: dict[str, list[dict[str, Any]]] = {}
        self.steps: list[dict[str, Any]] = []
        paths = []
        if args.dir:
            paths = [args.dir, os.path.realpath(args.dir)]
        self.norm = Normalizer(paths)

    # -- client callbacks ------------------------------------------------------------------

    async def on_sampling(self, context, params: types.CreateMessageRequestParams):
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=SAMPLING_REPLY),
            model=SAMPLING_MODEL,
            stop_reason="endTurn",
        )

    async def on_elicitation(self, context, params: types.ElicitRequestParams):
        return types.ElicitResult(action="accept", content=dict(ELICITATION_CONTENT))

    async def on_list_roots(self, context):
        if self.args.server == "filesystem":
            root = {"uri": Path(self.args.dir).resolve().as_uri(), "name": "session.py temp dir"}
        else:
            root = EVERYTHING_ROOT
        return types.ListRootsResult(roots=[types.Root(uri=root["uri"], name=root["name"])])

    # -- request helpers -------------------------------------------------------------------

    def _take_response(self, what: str) -> dict[str, Any]:
        """The raw response of the request that just completed (requests are sequential)."""
        got = self.tap.responses
        if len(got) != 1:
            raise ProtocolFailure(f"{what}: expected exactly one response, saw {len(got)}: {got!r}")
        self.tap.responses = []
        return got[0]

    async def request(self, what: str, coro, allow_error: bool = False) -> dict[str, Any]:
        """Await an SDK call; return the raw `result` (or `{"error": {"code": ...}}` when allowed)."""
        self.tap.responses = []
        try:
            await coro
        except MCPError as e:
            if not allow_error:
                raise ProtocolFailure(f"{what}: server answered with error {e.code}: {e.message}") from e
            self._take_response(what)
            return {"error": {"code": e.code}}
        raw = self._take_response(what)
        if "result" not in raw:
            raise ProtocolFailure(f"{what}: response without result: {raw!r}")
        result = dict(raw["result"])
        if result.get("_meta") == {}:
            del result["_meta"]
        return result

    def record(self, step: str, result: Any) -> None:
        self.steps.append({"step": step, "result": self.norm.value(result)})

    def name(self, n: str) -> str:
        return self.prefix + n

    async def list_all(self, what: str, fn, key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        pages = 0
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor is not None else None
            result = await self.request(f"{what} (page {pages + 1})", fn(params=params))
            items.extend(result.get(key, []))
            pages += 1
            cursor = result.get("nextCursor")
            if cursor is None:
                return items
            if pages > 100:
                raise ProtocolFailure(f"{what}: more than 100 pages")

    def strip_prefixed(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.prefix:
            return items
        out = []
        for item in items:
            n = item.get("name", "")
            if n.startswith(self.prefix):
                item = dict(item)
                item["name"] = n[len(self.prefix) :]
                out.append(item)
        return out

    async def call(self, step: str, tool: str, arguments: dict[str, Any] | None = None, **kw) -> None:
        assert self.session is not None
        result = await self.request(
            f"tools/call {tool}",
            self.session.call_tool(self.name(tool), arguments or {}, read_timeout_seconds=REQUEST_TIMEOUT, **kw),
        )
        self.record(step, result)

    # -- scripts ---------------------------------------------------------------------------

    async def common_start(self) -> dict[str, Any]:
        s = self.session
        assert s is not None
        self.tap.responses = []
        try:
            await s.initialize()
        except MCPError as e:
            raise ProtocolFailure(f"initialize: error {e.code}: {e.message}") from e
        init = self._take_response("initialize")["result"]
        doc: dict[str, Any] = {
            "protocolVersion": init.get("protocolVersion"),
            "capabilities": init.get("capabilities"),
        }
        if not self.prefix:
            doc["serverInfo"] = {"name": (init.get("serverInfo") or {}).get("name")}
        self.record("ping", await self.request("ping", s.send_ping()))
        return doc

    async def run_everything(self) -> dict[str, Any]:
        s = self.session
        assert s is not None
        init = await self.common_start()
        self.record("logging/setLevel info", await self.request("logging/setLevel", s.set_logging_level("info")))

        tools = self.strip_prefixed(await self.list_all("tools/list", s.list_tools, "tools"))
        resources = await self.list_all("resources/list", s.list_resources, "resources")
        templates = await self.list_all(
            "resources/templates/list", s.list_resource_templates, "resourceTemplates"
        )
        prompts = self.strip_prefixed(await self.list_all("prompts/list", s.list_prompts, "prompts"))

        await self.call("echo", "echo", {"message": "hello from session.py"})
        big = "".join(f"line {i}: ünïcödé ✓ \"quoted\" \\ tab\t{'x' * 50}\n" for i in range(2000))
        await self.call("echo (large, unicode, escapes)", "echo", {"message": big})
        await self.call("get-sum", "get-sum", {"a": 2, "b": 40})
        await self.call("get-annotated-message", "get-annotated-message", {"messageType": "success", "includeImage": True})
        await self.call("get-tiny-image", "get-tiny-image")
        await self.call("get-structured-content", "get-structured-content", {"location": "Chicago"})
        await self.call("get-resource-links", "get-resource-links", {"count": 2})
        await self.call("get-resource-reference", "get-resource-reference", {"resourceType": "Blob", "resourceId": 3})

        progress: list[dict[str, Any]] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append({"progress": value, "total": total, "message": message})

        await self.call(
            "trigger-long-running-operation",
            "trigger-long-running-operation",
            {"duration": 1, "steps": 4},
            progress_callback=on_progress,
        )
        self.progress["trigger-long-running-operation"] = progress

        await self.call("trigger-sampling-request", "trigger-sampling-request", {"prompt": "What is 2+2?", "maxTokens": 20})
        await self.call("trigger-elicitation-request", "trigger-elicitation-request")
        await self.call("get-roots-list", "get-roots-list")
        data_uri = "data:text/plain;base64," + base64.b64encode(b"gzip me, deterministically\n" * 20).decode()
        await self.call(
            "gzip-file-as-resource",
            "gzip-file-as-resource",
            {"name": "session.txt.gz", "data": data_uri, "outputType": "resource"},
        )
        unknown = await self.request(
            "tools/call no-such-tool",
            s.call_tool(self.name("no-such-tool"), {}),
            allow_error=True,
        )
        # The server reports an unknown tool as a tool error; the watchdog refuses a name that was
        # never listed (a hidden tool could answer) with a JSON-RPC error. Either is a refusal.
        self.record("tools/call unknown tool", {"refused": "error" in unknown or unknown.get("isError") is True})

        for uri in (
            "demo://resource/static/document/features.md",
            "demo://resource/dynamic/text/1",
            "demo://resource/dynamic/blob/2",
        ):
            self.record(f"resources/read {uri}", await self.request(f"resources/read {uri}", s.read_resource(uri)))

        for prompt, arguments in (
            ("simple-prompt", None),
            ("args-prompt", {"city": "Portland", "state": "OR"}),
            ("completable-prompt", {"department": "Engineering", "name": "Alice"}),
            ("resource-prompt", {"resourceType": "Text", "resourceId": "2"}),
        ):
            self.record(
                f"prompts/get {prompt}",
                await self.request(f"prompts/get {prompt}", s.get_prompt(self.name(prompt), arguments)),
            )

        prompt_ref = types.PromptReference(type="ref/prompt", name=self.name("completable-prompt"))
        self.record(
            "completion/complete prompt department",
            await self.request("completion/complete", s.complete(prompt_ref, {"name": "department", "value": "S"})),
        )
        self.record(
            "completion/complete prompt name with context",
            await self.request(
                "completion/complete",
                s.complete(prompt_ref, {"name": "name", "value": "A"}, context_arguments={"department": "Engineering"}),
            ),
        )
        template_ref = types.ResourceTemplateReference(
            type="ref/resource", uri="demo://resource/dynamic/text/{resourceId}"
        )
        self.record(
            "completion/complete resource template",
            await self.request("completion/complete", s.complete(template_ref, {"name": "resourceId", "value": "7"})),
        )
        self.record("ping (end)", await self.request("ping", s.send_ping()))

        return {
            "initialize": init,
            "tools": tools,
            "resources": resources,
            "resourceTemplates": templates,
            "prompts": prompts,
        }

    async def run_filesystem(self) -> dict[str, Any]:
        s = self.session
        assert s is not None
        d = Path(self.args.dir).resolve()
        init = await self.common_start()
        tools = self.strip_prefixed(await self.list_all("tools/list", s.list_tools, "tools"))

        await self.call("list_directory", "list_directory", {"path": str(d)})
        await self.call("read_text_file", "read_text_file", {"path": str(d / "seed.txt")})
        await self.call("read_text_file head", "read_text_file", {"path": str(d / "seed.txt"), "head": 2})
        await self.call(
            "write_file", "write_file", {"path": str(d / "written.txt"), "content": "written by session.py\nüñí\n"}
        )
        await self.call("read_text_file written", "read_text_file", {"path": str(d / "written.txt")})
        await self.call("get_file_info", "get_file_info", {"path": str(d / "seed.txt")})
        await self.call("list_directory after write", "list_directory", {"path": str(d)})
        await self.call("list_allowed_directories", "list_allowed_directories")
        # Outside the allowed directory: a tool error (isError), not a protocol error.
        await self.call("read_text_file outside", "read_text_file", {"path": "/etc/hostname"})
        self.record("ping (end)", await self.request("ping", s.send_ping()))
        return {"initialize": init, "tools": tools}

    # -- driver ----------------------------------------------------------------------------

    def prepare_dir(self) -> None:
        d = Path(self.args.dir)
        if not d.is_dir():
            raise ProtocolFailure(f"--dir {d} is not a directory")
        (d / "seed.txt").write_text("first line\nsecond line\nthird line\n", encoding="utf-8")
        (d / "written.txt").unlink(missing_ok=True)
        # Fixed times so get_file_info's output does not depend on when the test ran
        # (birthtime cannot be set; the normalizer masks all dates anyway).
        os.utime(d / "seed.txt", (1_000_000_000, 1_000_000_000))

    async def run(self) -> dict[str, Any]:
        cmd = self.args.command
        params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=dict(os.environ))
        if self.args.server == "filesystem":
            self.prepare_dir()
        with anyio.fail_after(SESSION_TIMEOUT):
            async with stdio_client(params) as (read, write):
                tap_send, tap_recv = anyio.create_memory_object_stream(0)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self.tap.pump, read, tap_send)
                    async with ClientSession(
                        tap_recv,
                        write,
                        read_timeout_seconds=REQUEST_TIMEOUT,
                        sampling_callback=self.on_sampling,
                        elicitation_callback=self.on_elicitation,
                        list_roots_callback=self.on_list_roots,
                    ) as session:
                        self.session = session
                        if self.args.server == "everything":
                            lists = await self.run_everything()
                        else:
                            lists = await self.run_filesystem()
                        # Let late notifications (logging after roots sync) arrive.
                        await anyio.sleep(0.5)
                    tg.cancel_scope.cancel()
        if self.tap.bad_lines:
            raise ProtocolFailure(f"unparseable lines from the server: {self.tap.bad_lines!r}")
        return self.document(lists)

    def document(self, lists: dict[str, Any]) -> dict[str, Any]:
        server_requests: dict[str, list[Any]] = {}
        for req in self.tap.server_requests:
            params = dict(req.get("params") or {})
            params.pop("_meta", None)
            server_requests.setdefault(req["method"], [])
            if params not in server_requests[req["method"]]:
                server_requests[req["method"]].append(params)
        notifications: dict[str, list[Any]] = {}
        for note in self.tap.notifications:
            method = note["method"]
            if method == "notifications/progress":
                continue  # recorded per call through the SDK's progress callback
            params = dict(note.get("params") or {})
            params.pop("_meta", None)
            bucket = notifications.setdefault(method, [])
            if params not in bucket:  # distinct only: counts depend on timing
                bucket.append(params)
        for bucket in notifications.values():
            bucket.sort(key=lambda p: json.dumps(p, sort_keys=True))
        doc = dict(lists)
        doc["server"] = self.args.server
        doc["calls"] = self.steps
        doc["progress"] = self.progress
        doc["serverRequests"] = server_requests
        doc["notifications"] = notifications
        return self.norm.value(doc)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", choices=["everything", "filesystem"], required=True)
    p.add_argument("--prefix", default="", help="gateway mode: namespace prefix of this server's tools/prompts")
    p.add_argument("--dir", help="filesystem: the directory the server was given (its contents are reset)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS... : the MCP server to run")
    args = p.parse_args(argv)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    if not args.command:
        p.error("missing the server command after --")
    if args.server == "filesystem" and not args.dir:
        p.error("--server filesystem needs --dir")
    return args


def _leaves(e: BaseException) -> list[BaseException]:
    """The real errors inside (nested) exception groups that anyio's task groups raise."""
    subs = getattr(e, "exceptions", None)
    if not subs:
        return [e]
    return [leaf for sub in subs for leaf in _leaves(sub)]


def main() -> int:
    args = parse_args(sys.argv[1:])
    try:
        doc = anyio.run(Runner(args).run)
    except BaseException as group:  # noqa: BLE001 - report anything, unwrapped
        if isinstance(group, (KeyboardInterrupt, SystemExit)):
            raise
        for e in _leaves(group):
            if isinstance(e, ProtocolFailure):
                print(f"session.py: protocol failure: {e}", file=sys.stderr)
            elif isinstance(e, TimeoutError):
                print(f"session.py: the session did not finish within {SESSION_TIMEOUT:.0f} s", file=sys.stderr)
            else:
                print(f"session.py: session failed: {type(e).__name__}: {e}", file=sys.stderr)
            if os.environ.get("SESSION_PY_DEBUG"):
                import traceback

                traceback.print_exception(e)
        return 2
    json.dump(doc, sys.stdout, sort_keys=True, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
