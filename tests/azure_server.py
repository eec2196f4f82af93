"""A loopback HTTP server that speaks Azure OpenAI's three wire shapes (and plain OpenAI's).

* ``POST /openai/deployments/{deployment}/chat/completions?api-version=...`` (Azure chat);
* ``POST /openai/responses?api-version=...`` (Azure Responses; the deployment is the body's
  ``model``);
* ``POST /openai/v1/chat/completions`` and ``/openai/v1/responses`` (Azure's v1 surface: an
  ``api-version`` query is refused; the deployment is the body's ``model``).
  On every Azure path, auth is an ``api-key`` header holding a known key, or
  ``Authorization: Bearer token-...`` (an Entra ID token); a key sent as a bearer is refused;
* ``POST /v1/chat/completions`` and ``/v1/responses`` (OpenAI-compatible), also under a prefix
  as a gateway serves them (``/sessions/{id}/v1/...``): any ``Authorization: Bearer``.
* Chat: ``stream: true`` answers with SSE chunks ending in ``data: [DONE]``. Responses: a
  ``Response`` object, or with ``stream: true`` the Responses API's typed events
  (``response.created`` ... ``response.completed``, no ``[DONE]``). A response created with
  ``store`` (the API's default) can be continued by ``previous_response_id``; an unknown id is
  the API's 400 ``previous_response_not_found``.
* Tool definitions plus a last user message containing "use a tool" answer with a tool call;
  a ``json_schema`` response_format (``text.format`` for Responses) answers with a JSON document
  valid for the schema.
* Like vLLM, ``return_token_ids: true`` in a chat body adds ``prompt_token_ids`` to the
  completion (the first chunk when streaming) and ``token_ids`` to each choice (each chunk's
  choice), and ``logprobs: true`` adds per-token ``logprobs`` to each choice (each chunk's).
* Faults can be scripted per request (status, headers, body, a connection reset, a delay, a
  body trickled a few bytes at a time, a stream cut or ended early, a corrupt chunk, a request
  held until the test releases it) for the reliability tests.

Every request is recorded (path, query, headers, JSON body, client port, arrival time) so tests
can assert what the SDK really sent, when, and how many connections were opened; the server also
counts the connections still open.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["AzureServer", "Fault", "RecordedRequest"]


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]
    client_port: int
    received_at: float = 0.0  # time.monotonic() when the request arrived

    @property
    def deployment(self) -> str | None:
        parts = self.path.split("/")
        if "deployments" in parts:
            return parts[parts.index("deployments") + 1]
        if self.path.startswith("/openai/"):  # Responses and v1: the body's model
            model = self.body.get("model")
            return model if isinstance(model, str) else None
        return None

    @property
    def is_responses(self) -> bool:
        return self.path.endswith("/responses")


@dataclass
class Fault:
    """A scripted answer for one request instead of the normal one."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # dict → JSON; str/bytes → raw
    reset: bool = False  # close the connection without answering
    delay: float = 0.0  # seconds before answering
    cut_stream_after: int | None = None  # stream: send N chunks, then drop the connection
    end_stream_after: int | None = None  # stream: send N chunks, then end cleanly without [DONE]
    corrupt_chunk: int | None = None  # stream: this chunk is not JSON
    content_filter_finish: bool = False  # a 200 whose finish_reason is content_filter
    length_finish: bool = False  # Responses: incomplete at max_output_tokens
    failed_response: bool = False  # Responses: status failed (a stream: response.failed)
    trickle: float = 0.0  # seconds between pieces of the body (stream: of each event)
    trickle_bytes: int = 4  # bytes per piece when trickling
    trickle_from: int = 0  # stream: events before this one are sent whole
    stall_after: int | None = None  # after this many body bytes, go silent for `stall_for` seconds
    stall_for: float = 0.0
    chunk_interval: float = 0.0  # stream: seconds between whole events
    hold: threading.Event | None = None  # answer only once the test sets it


_AZURE_CHAT = re.compile(r"/openai/deployments/[^/]+/chat/completions")
_AZURE = frozenset({"/openai/responses", "/openai/v1/chat/completions", "/openai/v1/responses"})
#: OpenAI-compatible paths, also under a gateway's prefix (rLLM's ``/sessions/{id}/v1/...``).
_OPENAI_PATH = re.compile(r"(?!/openai/)(/[^/]+)*/v1/(chat/completions|responses)")


def _error(message: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None, **fields}}


def _example_from_schema(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return _example_from_schema(schema["anyOf"][0])
    if kind == "object":
        return {k: _example_from_schema(v) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return []
    if kind == "integer":
        return 7
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "text"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        return

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and
        # delayed ACKs add ~40 ms to every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.owner.lock:
            self.server.owner.open_connections += 1

    def finish(self) -> None:
        with self.server.owner.lock:
            self.server.owner.open_connections -= 1
        with contextlib.suppress(OSError):  # the client reset the connection
            super().finish()

    def _write_slowly(self, data: bytes, fault: Fault | None) -> None:
        """Write ``data``: trickled and/or stalled part-way, as the fault asks."""
        if fault is None or not (fault.trickle or fault.stall_after is not None):
            self.wfile.write(data)
            return
        step = fault.trickle_bytes if fault.trickle else len(data)
        written = 0
        while written < len(data):
            end = written + step
            if fault.stall_after is not None and written < fault.stall_after < end:
                end = fault.stall_after
            self.wfile.write(data[written:end])
            self.wfile.flush()
            written = end
            if written == fault.stall_after:
                time.sleep(fault.stall_for)
            time.sleep(fault.trickle)

    def _send_json(
        self,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
        fault: Fault | None = None,
    ) -> None:
        data = (
            payload
            if isinstance(payload, bytes)
            else (payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
        )
        headers = dict(headers or {})
        self.send_response(status)
        if not any(key.lower() == "content-type" for key in headers):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self._write_slowly(data, fault)

    def do_POST(self) -> None:
        owner = self.server.owner
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = {}
        request = RecordedRequest(
            "POST",
            split.path,
            {k: v[0] for k, v in parse_qs(split.query).items()},
            {k.lower(): v for k, v in self.headers.items()},
            body,
            self.client_address[1],
            time.monotonic(),
        )
        with owner.lock:
            owner.requests.append(request)
            fault = owner.faults.popleft() if owner.faults else None
            owner.arrived.notify_all()
        if fault is not None and fault.hold is not None:
            fault.hold.wait(30)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.reset:
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.close_connection = True
            self.connection.close()
            return
        if fault is not None and fault.status != 200:
            self._send_json(
                fault.status, fault.body if fault.body is not None else {}, fault.headers
            )
            return
        if fault is not None and fault.body is not None:
            self._send_json(200, fault.body, fault.headers, fault)
            return
        problem = owner.check(request)
        if problem is not None:
            status, payload = problem
            self._send_json(status, payload)
            return
        if body.get("stream"):
            self._stream(request, fault)
        elif request.is_responses:
            self._send_json(200, owner.response(request, fault), None, fault)
        else:
            self._send_json(200, owner.completion(request, fault), None, fault)

    def _stream(self, request: RecordedRequest, fault: Fault | None) -> None:
        owner = self.server.owner
        if request.is_responses:
            events = [(e["type"], e) for e in owner.response_events(request, fault)]
        else:
            events = [(None, chunk) for chunk in owner.chunks(request, fault)]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(data: bytes, index: int = 0) -> None:
            slow = fault if fault is not None and index >= fault.trickle_from else None
            self._write_slowly(f"{len(data):x}\r\n".encode() + data + b"\r\n", slow)
            self.wfile.flush()

        for index, (name, chunk) in enumerate(events):
            if fault is not None and fault.cut_stream_after == index:
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault is not None and fault.end_stream_after == index:
                break
            if fault is not None and fault.chunk_interval and index:
                time.sleep(fault.chunk_interval)
            event = json.dumps(chunk).encode()
            if fault is not None and fault.corrupt_chunk == index:
                event = event[: len(event) // 2]
            prefix = f"event: {name}\n".encode() if name else b""
            send(prefix + b"data: " + event + b"\n\n", index)
        else:
            if not request.is_responses:  # the Responses API sends no [DONE]
                send(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    owner: AzureServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (resets, timeouts in the fault tests) are expected; stay quiet."""
        return


class AzureServer:
    """The loopback server; ``base_url`` is ``http://127.0.0.1:PORT``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.faults: deque[Fault] = deque()
        self.arrived = threading.Condition(self.lock)  # notified on every request
        self.open_connections = 0
        self.api_keys: set[str] = {"test-key"}
        self.deployments: set[str] | None = None  # None: any deployment exists
        self.api_versions: set[str] | None = None  # None: any api-version is supported
        self.reply = "Hello from the loopback server."
        self.stored: set[str] = set()  # ids of Responses created with store on
        self._response_ids = itertools.count(1)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> AzureServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.faults.clear()
        self.api_keys = {"test-key"}
        self.deployments = None
        self.api_versions = None
        self.stored = set()

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        """Block until ``count`` requests have arrived (for tests that need calls in flight)."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"only {len(self.requests)} of {count} requests arrived")

    def wait_for_closed_connections(self, timeout: float = 10.0) -> int:
        """Wait until clients have closed every connection; return how many are still open."""
        end = time.monotonic() + timeout
        while self.open_connections and time.monotonic() < end:
            time.sleep(0.01)
        return self.open_connections

    def add_faults(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    def connections(self) -> int:
        """Distinct client connections seen (by client port)."""
        with self.lock:
            return len({r.client_port for r in self.requests})

    # -- protocol --------------------------------------------------------------------------

    def check(self, request: RecordedRequest) -> tuple[int, dict[str, Any]] | None:
        path = request.path
        known = _OPENAI_PATH.fullmatch(path) or _AZURE_CHAT.fullmatch(path) or path in _AZURE
        if not known:
            return 404, {"error": {"code": "404", "message": "Resource not found"}}
        azure = path.startswith("/openai/")
        v1 = path.startswith("/openai/v1/")
        if v1 and "api-version" in request.query:
            return 400, _error(
                "The 'api-version' query parameter is not allowed when using the /v1 path.",
                "invalid_request_error",
            )
        if azure and not v1 and "api-version" not in request.query:
            return 404, {"error": {"code": "404", "message": "Resource not found (api-version)"}}
        versions = self.api_versions
        if (
            azure
            and not v1
            and versions is not None
            and request.query["api-version"] not in versions
        ):
            return 404, {"error": {"code": "404", "message": "Resource not found"}}
        if not self._authorised(request, azure):
            return 401, {
                "error": {
                    "code": "401",
                    "message": "Access denied due to invalid subscription key.",
                }
            }
        if azure and self.deployments is not None and request.deployment not in self.deployments:
            return 404, {
                "error": {
                    "code": "DeploymentNotFound",
                    "message": "The API deployment for this resource does not exist.",
                }
            }
        previous = request.body.get("previous_response_id")
        if request.is_responses and previous is not None and previous not in self.stored:
            return 400, _error(
                f"Previous response with id '{previous}' not found.",
                "invalid_request_error",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        return None

    def _authorised(self, request: RecordedRequest, azure: bool) -> bool:
        key = request.headers.get("api-key")
        bearer = request.headers.get("authorization", "")
        token = bearer[7:] if bearer.lower().startswith("bearer ") else None
        if azure:
            return (key in self.api_keys) or (token is not None and token.startswith("token-"))
        return token is not None

    def _last_user_text(self, request: RecordedRequest) -> str:
        body = request.body
        if request.is_responses:
            items = body.get("input")
            if isinstance(items, str):
                return items
            users = [i for i in items or () if isinstance(i, dict) and i.get("role") == "user"]
            content = users[-1].get("content") if users else ""
            if isinstance(content, list):
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
        messages = body.get("messages") or [{}]
        return str(messages[-1].get("content") or "")

    def _message(self, request: RecordedRequest) -> dict[str, Any]:
        body = request.body
        last = self._last_user_text(request)
        tools = body.get("tools") or []
        if tools and "use a tool" in last:
            tool = tools[0].get("function", tools[0])
            arguments = _example_from_schema(tool.get("parameters", {"type": "object"}))
            return {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": tool["name"], "arguments": json.dumps(arguments)},
                    }
                ],
            }
        if request.is_responses:
            response_format = (body.get("text") or {}).get("format") or {}
            schema = response_format.get("schema", {})
        else:
            response_format = body.get("response_format") or {}
            schema = (response_format.get("json_schema") or {}).get("schema", {})
        if response_format.get("type") == "json_schema":
            return {"role": "assistant", "content": json.dumps(_example_from_schema(schema))}
        if response_format.get("type") == "json_object":
            return {"role": "assistant", "content": json.dumps({"reply": self.reply})}
        return {"role": "assistant", "content": f"{self.reply} You said: {last}"}

    def completion(self, request: RecordedRequest, fault: Fault | None = None) -> dict[str, Any]:
        message = self._message(request)
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        if fault is not None and fault.content_filter_finish:
            finish, message = "content_filter", {"role": "assistant", "content": None}
        return _engine_fields(
            request.body,
            {
                "id": "chatcmpl-loopback",
                "object": "chat.completion",
                "created": 1700000000,
                "model": request.body.get("model", "unknown"),
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
            },
        )

    def chunks(self, request: RecordedRequest, fault: Fault | None = None) -> list[dict[str, Any]]:
        message = self._message(request)
        if fault is not None and fault.content_filter_finish:
            message = {"role": "assistant", "content": ""}
        base = {
            "id": "chatcmpl-loopback",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": request.body.get("model", "unknown"),
        }
        chunks: list[dict[str, Any]] = [
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "finish_reason": None,
                    }
                ],
            }
        ]
        if message.get("tool_calls"):
            call = message["tool_calls"][0]
            chunks.append(
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"tool_calls": [{"index": 0, **call}]},
                            "finish_reason": None,
                        }
                    ],
                }
            )
            finish = "tool_calls"
        else:
            text = message["content"]
            for start in range(0, len(text), 10):
                chunks.append(
                    {
                        **base,
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"content": text[start : start + 10]},
                                "finish_reason": None,
                            }
                        ],
                    }
                )
            finish = (
                "content_filter" if fault is not None and fault.content_filter_finish else "stop"
            )
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (request.body.get("stream_options") or {}).get("include_usage"):
            chunks.append(
                {
                    **base,
                    "choices": [],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
                }
            )
        for index, chunk in enumerate(chunks):
            _engine_fields(request.body, chunk, first=index == 0)
        return chunks

    # -- the Responses API ------------------------------------------------------------------

    def _response_base(self, request: RecordedRequest) -> dict[str, Any]:
        body = request.body
        response_id = f"resp_{next(self._response_ids)}"
        if body.get("store", True):
            with self.lock:
                self.stored.add(response_id)
        return {
            "id": response_id,
            "object": "response",
            "created_at": 1700000000,
            "status": "in_progress",
            "model": body.get("model", "unknown"),
            "output": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": body.get("tools") or [],
            "previous_response_id": body.get("previous_response_id"),
            "store": body.get("store", True),
            "error": None,
            "incomplete_details": None,
            "usage": None,
        }

    def _output(self, request: RecordedRequest, fault: Fault | None) -> list[dict[str, Any]]:
        message = self._message(request)
        if message.get("tool_calls"):
            function = message["tool_calls"][0]["function"]
            return [
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "call_1",
                    "name": function["name"],
                    "arguments": function["arguments"],
                    "status": "completed",
                }
            ]
        text = "" if fault is not None and fault.content_filter_finish else message["content"]
        if fault is not None and fault.length_finish:
            text = text[:12]
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        return [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
        ]

    def _finish(self, response: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
        response = {
            **response,
            "status": "completed",
            "usage": {
                "input_tokens": 5,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": 7,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 12,
            },
        }
        if fault is not None and fault.failed_response:
            error = {"code": "server_error", "message": "The model failed to answer."}
            response.update(status="failed", error=error, output=[])
        elif fault is not None and (fault.content_filter_finish or fault.length_finish):
            reason = "content_filter" if fault.content_filter_finish else "max_output_tokens"
            response.update(status="incomplete", incomplete_details={"reason": reason})
        return response

    def response(self, request: RecordedRequest, fault: Fault | None = None) -> dict[str, Any]:
        """The JSON of a (non-streamed) Response."""
        response = self._response_base(request)
        response["output"] = self._output(request, fault)
        return self._finish(response, fault)

    def response_events(
        self, request: RecordedRequest, fault: Fault | None = None
    ) -> list[dict[str, Any]]:
        """A streamed Response: its typed events, in the order the API sends them."""
        started = self._response_base(request)
        output = self._output(request, fault)
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": started},
            {"type": "response.in_progress", "response": started},
        ]
        for index, item in enumerate(output):
            events += _item_events(index, item)
        done = self._finish({**started, "output": output}, fault)
        final = {
            "completed": "response.completed",
            "incomplete": "response.incomplete",
            "failed": "response.failed",
        }[done["status"]]
        events.append({"type": final, "response": done})
        return [{**event, "sequence_number": n} for n, event in enumerate(events)]


def _item_events(index: int, item: dict[str, Any]) -> list[dict[str, Any]]:
    """The events that stream one output item (a message's text, or a function call)."""
    where = {"output_index": index, "item_id": item["id"]}
    if item["type"] == "function_call":
        arguments = item["arguments"]
        return [
            {
                "type": "response.output_item.added",
                "output_index": index,
                "item": {**item, "arguments": "", "status": "in_progress"},
            },
            *(
                {"type": "response.function_call_arguments.delta", **where, "delta": piece}
                for piece in (arguments[i : i + 10] for i in range(0, len(arguments), 10))
            ),
            {"type": "response.function_call_arguments.done", **where, "arguments": arguments},
            {"type": "response.output_item.done", "output_index": index, "item": item},
        ]
    text = item["content"][0]["text"]
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    part_at = {**where, "content_index": 0}
    return [
        {
            "type": "response.output_item.added",
            "output_index": index,
            "item": {**item, "content": [], "status": "in_progress"},
        },
        {"type": "response.content_part.added", **part_at, "part": part},
        *(
            {
                "type": "response.output_text.delta",
                **part_at,
                "delta": text[i : i + 10],
                "logprobs": [],
            }
            for i in range(0, len(text), 10)
        ),
        {"type": "response.output_text.done", **part_at, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **part_at, "part": {**part, "text": text}},
        {"type": "response.output_item.done", "output_index": index, "item": item},
    ]


#: The prompt's token ids a vLLM-like server reports (``return_token_ids``).
PROMPT_TOKEN_IDS = [101, 102, 103]


def _token_ids(text: str) -> list[int]:
    """Made-up token ids of ``text``: one per character, so a test can tell replies apart."""
    return [ord(char) for char in text]


def _engine_fields(body: dict[str, Any], payload: dict[str, Any], *, first: bool = True) -> Any:
    """Add what vLLM adds: ``prompt_token_ids``, per-choice ``token_ids`` and ``logprobs``."""
    for choice in payload["choices"]:
        part = choice.get("message") or choice.get("delta") or {}
        text = part.get("content") or ""
        if body.get("return_token_ids"):
            choice["token_ids"] = _token_ids(text)
        if body.get("logprobs"):
            tokens = [
                {"token": char, "logprob": -0.5, "bytes": list(char.encode()), "top_logprobs": []}
                for char in text
            ]
            choice["logprobs"] = {"content": tokens, "refusal": None}
    if body.get("return_token_ids") and first:
        payload["prompt_token_ids"] = PROMPT_TOKEN_IDS
    return payload
