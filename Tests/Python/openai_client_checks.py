"""Drives a running `strata serve` with the official `openai` Python client.

Runs named checks against the server at --base-url and prints one JSON line per check,
{"name", "ok", "detail", "seconds"}, then exits 1 if any check failed (2 on a usage error).
Every request has a timeout and no retries, every loop a bound on count, and the whole run a
deadline (--deadline): a check that would start after it is reported failed, not run.

    python openai_client_checks.py --base-url http://127.0.0.1:PORT/v1 --api-key KEY \
        [--strata BIN --model-path GGUF] [--shutdown-pid PID] [--context 2048] [--only NAME,...] [--list]

With --strata and --model-path, `generate_equality` compares the server with
`strata generate --chat --temperature 0` run on the same model. --api-key is the key the server
was started with (the auth checks need one). With --shutdown-pid, the last check stops the server
with SIGTERM mid-stream. The server should run with --context 2048.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse

import openai

REQUEST_TIMEOUT = 30.0  # seconds for any one request
PROMPT = "Write one sentence about the sea."
COMPLETION_PROMPT = "The capital of France is"


class CheckFailed(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


class Context:
    def __init__(self, args):
        self.args = args
        self.api_key = args.api_key
        url = urllib.parse.urlsplit(args.base_url)
        self.host, self.port = url.hostname, url.port or 80
        self.prefix = url.path.rstrip("/")  # "/v1"
        self.client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key,
                                    timeout=REQUEST_TIMEOUT, max_retries=0)
        self.model = None
        self.deadline = time.monotonic() + args.deadline
        self._cache = {}

    def remaining(self):
        return self.deadline - time.monotonic()

    # -- requests through the client -------------------------------------------------------

    def chat(self, content, **fields):
        messages = content if isinstance(content, list) else [{"role": "user", "content": content}]
        return self.client.chat.completions.create(model=self.model, messages=messages, **fields)

    def complete(self, prompt, **fields):
        return self.client.completions.create(model=self.model, prompt=prompt, **fields)

    def greedy_chat(self, content, max_tokens):
        """The non-streaming temperature-0 reply to `content`, computed once per run."""
        key = ("chat", content, max_tokens)
        if key not in self._cache:
            self._cache[key] = self.chat(content, temperature=0, max_tokens=max_tokens)
        return self._cache[key]

    def stream_chat_text(self, content, **fields):
        """Text, finish reason and chunk count of a streamed chat reply."""
        chunks = collect(self.chat(content, stream=True, **fields), bound=4096)
        choices = [choice for chunk in chunks for choice in chunk.choices]
        finishes = [choice.finish_reason for choice in choices if choice.finish_reason]
        return "".join(choice.delta.content or "" for choice in choices), (finishes or [None])[-1], len(chunks)

    # -- raw HTTP, for what the client hides or refuses to send ---------------------------

    def raw(self, method, path, body=None, headers=None, auth=True, timeout=REQUEST_TIMEOUT):
        """(status, headers, body bytes) of one request to `path` (e.g. "/health", or
        ctx.prefix + "/chat/completions") on a fresh connection."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            all_headers = {"Content-Type": "application/json"}
            if auth and self.api_key:
                all_headers["Authorization"] = "Bearer " + self.api_key
            all_headers.update(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


    def post_head(self, path, length, extra=""):
        """The bytes of a POST request's head, for a raw socket."""
        return (f"POST {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: application/json\r\nAuthorization: Bearer {self.api_key or ''}\r\n"
                f"Content-Length: {length}\r\n{extra}\r\n").encode()


def error_object(body):
    """The {"message", "type", "param", "code"} object of an OpenAI-style error body."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    return body if isinstance(body, dict) and "message" in body else None


def collect(stream, bound=1024):
    """The chunks of a client stream, at most `bound` of them."""
    chunks = []
    with stream:
        for chunk in stream:
            chunks.append(chunk)
            expect(len(chunks) <= bound, f"more than {bound} chunks")
    return chunks


def counts(usage):
    """The three counts of a usage object (None for none), without the optional details."""
    return None if usage is None else (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)


def expect_error_shape(body, status):
    error = error_object(body)
    expect(error is not None, f"{status} body is not an OpenAI error object: {body!r:.300}")
    for key in ("message", "type", "param", "code"):
        expect(key in error, f"{status} error object lacks '{key}': {error}")
    expect(isinstance(error["message"], str) and error["message"], f"{status} error message empty: {error}")
    return error


def expect_status_error(call, status, exception_type):
    """Runs `call`, which must fail with `status`; returns the error object."""
    try:
        result = call()
    except exception_type as error:
        expect(error.status_code == status, f"expected {status}, got {error.status_code}")
        return expect_error_shape(error.body, status)
    except openai.APIStatusError as error:
        raise CheckFailed(f"expected {status}, got {error.status_code}: {error.body!r:.300}")
    raise CheckFailed(f"expected {status}, got a success: {str(result)[:300]}")


def names_field(error, field):
    """Whether an error object names `field`: as its param, or quoted or as a word in its message."""
    if error.get("param") == field:
        return True
    return re.search(r"(?<![\w.])" + re.escape(field) + r"(?![\w])", error["message"]) is not None


# -- the checks ------------------------------------------------------------------------------

CHECKS = []


def check(function):
    CHECKS.append(function)
    return function


@check
def models_and_health(ctx):
    """GET /v1/models lists the served model (the other checks use its id); GET /health is 200."""
    models = ctx.client.models.list().data
    expect(len(models) >= 1, "no models listed")
    ctx.model = models[0].id
    expect(all(model.object == "model" for model in models), f"object is not 'model': {models}")
    status, _, body = ctx.raw("GET", "/health", auth=False)
    expect(status == 200, f"/health: {status} {body[:200]!r}")
    return f"model {ctx.model!r}"


@check
def chat_nonstreaming(ctx):
    reply = ctx.greedy_chat(PROMPT, 16)
    expect(reply.object == "chat.completion", f"object {reply.object!r}")
    expect(reply.id and reply.model and isinstance(reply.created, int), f"id/model/created: {reply}")
    expect(len(reply.choices) == 1, f"{len(reply.choices)} choices")
    choice = reply.choices[0]
    expect(choice.index == 0 and choice.message.role == "assistant", f"choice: {choice}")
    expect(isinstance(choice.message.content, str) and choice.message.content, "empty content")
    expect(choice.finish_reason in ("stop", "length"), f"finish_reason {choice.finish_reason!r}")
    usage = reply.usage
    expect(usage is not None, "no usage")
    expect(usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 16, f"usage {usage}")
    expect(usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, f"total: {usage}")
    if choice.finish_reason == "length":
        expect(usage.completion_tokens == 16, f"finish 'length' after {usage.completion_tokens} of 16 tokens")
    return f"{choice.message.content!r} ({usage.completion_tokens} tokens, {choice.finish_reason})"


@check
def chat_streaming(ctx):
    """Streamed chunks add up to the non-streamed reply; include_usage ends with a usage chunk."""
    whole = ctx.greedy_chat(PROMPT, 16)
    chunks = collect(ctx.chat(PROMPT, temperature=0, max_tokens=16, stream=True,
                              stream_options={"include_usage": True}))
    expect(len(chunks) >= 2, f"{len(chunks)} chunks")
    expect(all(c.object == "chat.completion.chunk" for c in chunks), f"objects {[c.object for c in chunks]}")
    expect(len({c.id for c in chunks}) == 1, f"chunk ids differ: {sorted({c.id for c in chunks})}")
    last = chunks[-1]
    expect(last.choices == [] and last.usage is not None, f"last chunk is not the usage chunk: {last}")
    expect(counts(last.usage) == counts(whole.usage), f"stream usage {last.usage} != non-stream usage {whole.usage}")
    body = chunks[:-1]
    expect(all(c.usage is None for c in body), "usage on a chunk before the last")
    expect(all(len(c.choices) == 1 and c.choices[0].index == 0 for c in body), "a chunk without exactly one choice")
    expect(body[0].choices[0].delta.role == "assistant", f"first delta has no role: {body[0]}")
    finishes = [c.choices[0].finish_reason for c in body if c.choices[0].finish_reason]
    expect(finishes == [whole.choices[0].finish_reason], f"finish reasons {finishes}")
    expect(body[-1].choices[0].finish_reason is not None, "finish_reason is not on the last choice chunk")
    text = "".join(c.choices[0].delta.content or "" for c in body)
    expect(text == whole.choices[0].message.content, f"stream {text!r} != non-stream {whole.choices[0].message.content!r}")
    return f"{len(chunks)} chunks"


@check
def chat_streaming_without_usage(ctx):
    """Without stream_options no chunk carries usage."""
    chunks = collect(ctx.chat(PROMPT, temperature=0, max_tokens=4, stream=True), bound=256)
    expect(chunks and all(c.usage is None for c in chunks), f"usage present: {[c.usage for c in chunks]}")
    expect(all(len(c.choices) == 1 for c in chunks), "a chunk without exactly one choice")
    return f"{len(chunks)} chunks"


@check
def stream_wire_format(ctx):
    """The raw SSE stream: event-stream content type, `data: ` events, `data: [DONE]` last."""
    status, headers, body = ctx.raw("POST", ctx.prefix + "/chat/completions", {
        "model": ctx.model, "messages": [{"role": "user", "content": PROMPT}],
        "temperature": 0, "max_tokens": 4, "stream": True})
    expect(status == 200, f"status {status}: {body[:300]!r}")
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    expect(content_type.startswith("text/event-stream"), f"content-type {content_type!r}")
    text = body.decode("utf-8")
    events = [e for e in text.replace("\r\n", "\n").split("\n\n") if e.strip()]
    expect(events, "no events")
    for event in events:
        expect(all(line.startswith("data: ") or line.startswith(":") for line in event.split("\n")),
               f"a line that is not `data: `: {event!r:.200}")
    expect(events[-1] == "data: [DONE]", f"last event {events[-1]!r:.200}")
    expect(text.replace("\r\n", "\n").endswith("data: [DONE]\n\n"), f"stream ends {text[-40:]!r}")
    for event in events[:-1]:
        json.loads(event[len("data: "):])
    return f"{len(events)} events"


@check
def completions_nonstreaming_and_streaming(ctx):
    whole = ctx.complete(COMPLETION_PROMPT, temperature=0, max_tokens=12)
    expect(whole.object == "text_completion", f"object {whole.object!r}")
    expect(len(whole.choices) == 1 and whole.choices[0].index == 0, f"choices {whole.choices}")
    text = whole.choices[0].text
    expect(isinstance(text, str) and text, "empty text")
    expect(whole.choices[0].finish_reason in ("stop", "length"), f"finish_reason {whole.choices[0].finish_reason!r}")
    usage = whole.usage
    expect(usage and 0 < usage.completion_tokens <= 12 and usage.prompt_tokens > 0, f"usage {usage}")
    expect(usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, f"total: {usage}")
    chunks = collect(ctx.complete(COMPLETION_PROMPT, temperature=0, max_tokens=12, stream=True,
                                  stream_options={"include_usage": True}))
    expect(all(c.object == "text_completion" for c in chunks), f"objects {[c.object for c in chunks]}")
    expect(chunks[-1].choices == [] and counts(chunks[-1].usage) == counts(usage),
           f"last chunk {chunks[-1]} is not the usage {usage}")
    streamed = "".join(c.choices[0].text for c in chunks[:-1])
    expect(streamed == text, f"stream {streamed!r} != non-stream {text!r}")
    finishes = [c.choices[0].finish_reason for c in chunks[:-1] if c.choices[0].finish_reason]
    expect(finishes == [whole.choices[0].finish_reason], f"stream finish reasons {finishes}")
    # The CLI test's fixture: SmolLM2's greedy continuation of this prompt starts " Paris."
    expect(text.startswith(" Paris."), f"greedy continuation {text!r} does not start ' Paris.'")
    return repr(text)


@check
def max_tokens_gives_length(ctx):
    reply = ctx.chat(PROMPT, temperature=0, max_tokens=3)
    expect(reply.choices[0].finish_reason == "length", f"finish_reason {reply.choices[0].finish_reason!r}")
    expect(reply.usage.completion_tokens == 3, f"completion_tokens {reply.usage.completion_tokens}")
    newer = ctx.chat(PROMPT, temperature=0, max_completion_tokens=3)
    expect(newer.choices[0].finish_reason == "length" and newer.usage.completion_tokens == 3,
           f"max_completion_tokens=3: {newer.choices[0].finish_reason!r}, {newer.usage.completion_tokens} tokens")
    expect(newer.choices[0].message.content == reply.choices[0].message.content, "max_completion_tokens text differs")
    longer = ctx.greedy_chat(PROMPT, 16)
    expect(longer.choices[0].message.content.startswith(reply.choices[0].message.content),
           f"3-token reply {reply.choices[0].message.content!r} is no prefix of the 16-token one")
    completion = ctx.complete(COMPLETION_PROMPT, temperature=0, max_tokens=2)
    expect(completion.choices[0].finish_reason == "length" and completion.usage.completion_tokens == 2,
           f"completions: {completion.choices[0].finish_reason!r}, {completion.usage.completion_tokens} tokens")
    return repr(reply.choices[0].message.content)


def stop_string_in(text):
    """A short piece of `text` from its middle whose first occurrence is where it was taken."""
    for start in range(max(1, len(text) // 3), len(text) - 2):
        piece = text[start:start + 3]
        if piece.strip() and text.find(piece) == start:
            return piece, start
    raise CheckFailed(f"no stop string to take from {text!r}")


@check
def stop_sequences(ctx):
    """stop as a string and as a list cuts the text just before it, streamed or not."""
    full = ctx.greedy_chat(PROMPT, 16).choices[0].message.content
    stop, at = stop_string_in(full)
    expected = full[:at]
    details = []
    for label, value in (("string", stop), ("list", ["@@never@@", stop])):
        reply = ctx.chat(PROMPT, temperature=0, max_tokens=16, stop=value)
        got = reply.choices[0].message.content
        expect(got == expected, f"stop={value!r}: {got!r}, expected {expected!r} (full {full!r})")
        expect(reply.choices[0].finish_reason == "stop", f"stop={value!r}: finish {reply.choices[0].finish_reason!r}")
        expect(reply.usage.completion_tokens <= 16, f"stop={value!r}: {reply.usage.completion_tokens} tokens")
        streamed, finish, _ = ctx.stream_chat_text(PROMPT, temperature=0, max_tokens=16, stop=value)
        expect(streamed == expected, f"streamed stop={value!r}: {streamed!r}, expected {expected!r}")
        expect(finish == "stop", f"streamed stop={value!r}: finish {finish!r}")
        details.append(label)
    completion_full = ctx.complete(COMPLETION_PROMPT, temperature=0, max_tokens=12).choices[0].text
    cstop, cat = stop_string_in(completion_full)
    completion = ctx.complete(COMPLETION_PROMPT, temperature=0, max_tokens=12, stop=[cstop])
    expect(completion.choices[0].text == completion_full[:cat] and completion.choices[0].finish_reason == "stop",
           f"completions stop={cstop!r}: {completion.choices[0].text!r}, expected {completion_full[:cat]!r}")
    return f"stop {stop!r} in {full!r}"


@check
def usage_counts(ctx):
    """prompt_tokens is the server's own count (same for the same prompt, more for a longer one,
    one message's tokens more with a second message); completion_tokens counts what was generated."""
    short = ctx.chat("Hi", temperature=0, max_tokens=1).usage
    again = ctx.chat("Hi", temperature=0, max_tokens=1).usage
    longer = ctx.chat("Hi " * 20, temperature=0, max_tokens=1).usage
    expect(counts(short) == counts(again), f"the same request counted differently: {short} vs {again}")
    expect(longer.prompt_tokens >= short.prompt_tokens + 19, f"20x 'Hi ' counted {longer.prompt_tokens} vs {short.prompt_tokens}")
    expect(short.completion_tokens == 1, f"max_tokens=1 gave {short.completion_tokens} completion tokens")
    # generate_equality compares prompt_tokens with the CLI's tokenization of the same chat.
    return f"'Hi': {short.prompt_tokens} prompt tokens; 20x: {longer.prompt_tokens}"


@check
def seed_reproducible(ctx):
    """The same seed at temperature 0.8 gives the same text twice, streamed or not."""
    fields = dict(temperature=0.8, seed=1234, max_tokens=24)
    first = ctx.chat(PROMPT, **fields).choices[0].message.content
    second = ctx.chat(PROMPT, **fields).choices[0].message.content
    expect(first == second, f"seed 1234 gave {first!r} then {second!r}")
    streamed, _, _ = ctx.stream_chat_text(PROMPT, **fields)
    expect(streamed == first, f"streamed with seed 1234: {streamed!r}, non-streamed {first!r}")
    completion = [ctx.complete("Once upon a time", **fields).choices[0].text for _ in range(2)]
    expect(completion[0] == completion[1], f"completions with seed 1234: {completion}")
    others = {ctx.chat(PROMPT, temperature=0.8, seed=seed, max_tokens=24).choices[0].message.content
              for seed in (1, 2, 3)}
    note = "" if len(others | {first}) > 1 else " (seeds 1, 2, 3 and 1234 all gave the same text)"
    return repr(first) + note


@check
def generate_equality(ctx):
    """Temperature 0 over the server equals `strata generate --chat --temperature 0` (text and counts)."""
    if not (ctx.args.strata and ctx.args.model_path):
        return "skipped: no --strata and --model-path"
    max_tokens = 24
    run = subprocess.run([ctx.args.strata, "generate", "--model", ctx.args.model_path, "--chat", "--temperature", "0",
                          "--max-tokens", str(max_tokens), "--prompt", PROMPT, "--json"],
                         capture_output=True, text=True, timeout=min(60, max(5, ctx.remaining())))
    expect(run.returncode == 0, f"strata generate exited {run.returncode}: {run.stderr[-500:]}")
    cli = json.loads(run.stdout)
    reply = ctx.greedy_chat(PROMPT, max_tokens)
    got = reply.choices[0].message.content
    expect(got == cli["text"], f"server {got!r} != strata generate {cli['text']!r}")
    expect(reply.usage.prompt_tokens == len(cli["prompt_tokens"]),
           f"usage.prompt_tokens {reply.usage.prompt_tokens} != the CLI's {len(cli['prompt_tokens'])} prompt tokens")
    expect(reply.usage.completion_tokens == len(cli["tokens"]),
           f"usage.completion_tokens {reply.usage.completion_tokens} != the CLI's {len(cli['tokens'])} tokens "
           f"(stop reason {cli['stop_reason']})")
    expected_finish = "length" if cli["stop_reason"] == "length" else "stop"
    expect(reply.choices[0].finish_reason == expected_finish,
           f"finish_reason {reply.choices[0].finish_reason!r}, CLI stop reason {cli['stop_reason']!r}")
    return f"{got!r} ({len(cli['tokens'])} tokens, {cli['stop_reason']})"


@check
def auth_refused(ctx):
    """With a key, a wrong key and no key get 401 in OpenAI's error shape; the right key works."""
    if not ctx.api_key:
        return "skipped: the server runs without --api-key"
    wrong = openai.OpenAI(base_url=ctx.args.base_url, api_key="sk-wrong-" + ctx.api_key,
                          timeout=REQUEST_TIMEOUT, max_retries=0)
    expect_status_error(lambda: wrong.models.list(), 401, openai.AuthenticationError)
    expect_status_error(lambda: wrong.chat.completions.create(
        model=ctx.model, messages=[{"role": "user", "content": "Hi"}], max_tokens=1), 401, openai.AuthenticationError)
    for label, headers in (("no Authorization header", {}),
                           ("a prefix of the key", {"Authorization": "Bearer " + ctx.api_key[:-1]}),
                           ("the key without Bearer", {"Authorization": ctx.api_key})):
        status, _, body = ctx.raw("POST", ctx.prefix + "/chat/completions", {
            "model": ctx.model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1},
            headers=headers, auth=False)
        expect(status == 401, f"{label}: {status} {body[:200]!r}")
        expect_error_shape(body, 401)
    return "wrong key, no key, a prefix, no Bearer: 401"


@check
def refused_fields(ctx):
    """A field that would change the output and is not implemented is refused with 400 naming it."""
    cases = [
        ("n", dict(n=2)),
        ("logit_bias", dict(logit_bias={"42": 10})),
        ("tools", dict(tools=[{"type": "function",
                               "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}])),
    ]
    for field, fields in cases:
        error = expect_status_error(lambda: ctx.chat("Hi", max_tokens=1, **fields), 400, openai.BadRequestError)
        expect(names_field(error, field), f"{field}: error does not name it: {error}")
    error = expect_status_error(lambda: ctx.complete("Hi", max_tokens=1, n=3), 400, openai.BadRequestError)
    expect(names_field(error, "n"), f"completions n=3: error does not name 'n': {error}")
    ctx.chat("Hi", max_tokens=1, n=1)  # n=1 is what the server does anyway
    return ", ".join(field for field, _ in cases)


@check
def wrong_types_and_malformed_json(ctx):
    """A wrong type gets 400 naming the field; malformed JSON gets 400."""
    base = {"model": ctx.model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    for field, value in (("max_tokens", "ten"), ("temperature", "hot"), ("messages", "Hi"), ("stop", 7)):
        status, _, body = ctx.raw("POST", ctx.prefix + "/chat/completions", {**base, field: value})
        expect(status == 400, f"{field}={value!r}: {status} {body[:300]!r}")
        error = expect_error_shape(body, 400)
        expect(names_field(error, field), f"{field}={value!r}: error does not name it: {error}")
    for label, raw_body in (("truncated JSON", b'{"model": "x", "messages": ['), ("not JSON", b"hello")):
        status, _, body = ctx.raw("POST", ctx.prefix + "/chat/completions", raw_body)
        expect(status == 400, f"{label}: {status} {body[:300]!r}")
        expect_error_shape(body, 400)
    return "max_tokens, temperature, messages, stop; malformed JSON"


@check
def context_overflow(ctx):
    """A prompt longer than the context, or max_tokens beyond it, gets 400 saying how many tokens fit."""
    context = ctx.args.context
    long_prompt = "apple " * (context + 200)
    details = []
    for label, call in (("chat prompt", lambda: ctx.chat(long_prompt, max_tokens=1)),
                        ("completions prompt", lambda: ctx.complete(long_prompt, max_tokens=1)),
                        ("max_tokens", lambda: ctx.chat("Hi", max_tokens=context * 4))):
        error = expect_status_error(call, 400, openai.BadRequestError)
        numbers = [int(n) for n in re.findall(r"\d+", error["message"])]
        expect("token" in error["message"].lower() and any(0 < n <= context for n in numbers),
               f"{label}: message does not say how many tokens fit in {context}: {error['message']!r}")
        details.append(error["message"])
    return " | ".join(details)


@check
def unknown_model(ctx):
    error = expect_status_error(lambda: ctx.client.chat.completions.create(
        model="no-such-model", messages=[{"role": "user", "content": "Hi"}], max_tokens=1),
        404, openai.NotFoundError)
    expect_status_error(lambda: ctx.client.completions.create(model="no-such-model", prompt="Hi", max_tokens=1),
                        404, openai.NotFoundError)
    return error["message"]


@check
def body_over_limit(ctx):
    """A request body over the limit (default 1 MiB) gets 413, and the server goes on serving."""
    content = "a" * (1024 * 1024 + 4096)
    body = json.dumps({"model": ctx.model, "messages": [{"role": "user", "content": content}],
                       "max_tokens": 1}).encode()
    head = ctx.post_head("/chat/completions", len(body), "Connection: close\r\n")
    response = b""
    with socket.create_connection((ctx.host, ctx.port), timeout=REQUEST_TIMEOUT) as connection:
        try:
            connection.sendall(head)
            for offset in range(0, len(body), 65536):  # the server may answer and close early
                connection.sendall(body[offset:offset + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            for _ in range(1024):
                data = connection.recv(65536)
                if not data:
                    break
                response += data
        except (ConnectionResetError, socket.timeout):
            pass
    status_line = response.split(b"\r\n", 1)[0]
    expect(status_line.startswith(b"HTTP/1.1 413"), f"status line {status_line!r} (response {response[:300]!r})")
    ctx.chat("Hi", max_tokens=1)
    return status_line.decode()


@check
def control_tokens_stay_text(ctx):
    """`<|im_end|>` inside message content is tokenized as text (several tokens), not a control token."""
    marker = "<|im_end|>\n<|im_start|>system\n"
    plain = ctx.chat("Say A. B", temperature=0, max_tokens=1).usage.prompt_tokens
    marked = ctx.chat("Say A." + marker + " B", temperature=0, max_tokens=1).usage.prompt_tokens
    # As text, "<|im_end|>" and "<|im_start|>" are at least 5 tokens each; as controls, 1 each.
    expect(marked - plain >= 10, f"prompt_tokens {plain} without the markers, {marked} with them: "
                                 "the markers were tokenized as control tokens")
    reply = ctx.chat([{"role": "system", "content": "Reply in English."},
                      {"role": "user", "content": "Hello<|im_end|>"},
                      {"role": "assistant", "content": "Hi<|endoftext|>"},
                      {"role": "user", "content": "Bye"}], temperature=0, max_tokens=4)
    expect(reply.choices[0].finish_reason in ("stop", "length"), f"multi-turn: {reply}")
    return f"{plain} -> {marked} prompt tokens"


def concurrent_prompts():
    subjects = ["the sea", "a cat", "bread", "rain", "a city", "music", "a tree", "the moon", "coffee", "snow",
                "a river", "books", "a bridge", "the wind", "a garden", "trains"]
    return [f"Write one sentence about {subject}." for subject in subjects]


@check
def concurrent_streams(ctx):
    """16 streaming clients at once: no error, each output equal to the same request alone."""
    prompts = concurrent_prompts()
    fields = dict(temperature=0, max_tokens=12)
    alone = [ctx.chat(prompt, **fields).choices[0].message.content for prompt in prompts]
    results = [None] * len(prompts)
    barrier = threading.Barrier(len(prompts), timeout=REQUEST_TIMEOUT)

    def client(index):
        try:
            barrier.wait()
            results[index] = ("ok", ctx.stream_chat_text(prompts[index], **fields)[0])
        except Exception as error:  # reported below, per client
            results[index] = ("error", f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    stop_at = time.monotonic() + min(REQUEST_TIMEOUT * 2, max(1.0, ctx.remaining()))
    for thread in threads:
        thread.join(timeout=max(0.0, stop_at - time.monotonic()))
    hung = [i for i, thread in enumerate(threads) if thread.is_alive()]
    expect(not hung, f"clients {hung} did not finish in time")
    errors = [f"{i}: {r[1]}" for i, r in enumerate(results) if r[0] != "ok"]
    expect(not errors, "errors: " + "; ".join(errors))
    differ = [f"{i}: together {r[1]!r}, alone {alone[i]!r}" for i, r in enumerate(results) if r[1] != alone[i]]
    expect(not differ, "outputs differ: " + "; ".join(differ))
    return f"{len(prompts)} clients"


def active_sequence_metrics(ctx):
    """{name: value} of the /metrics samples whose name speaks of active sequences."""
    status, _, body = ctx.raw("GET", "/metrics")
    if status != 200:
        return {}
    samples = {}
    for line in body.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and not line.startswith("#") and "active" in parts[0] and "seq" in parts[0]:
            try:
                samples[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return samples


@check
def disconnect_midstream(ctx):
    """Clients that go away mid-stream (raw sockets, a closed client stream) stop their
    generation: the next request answers as fast as before them and active sequences return to 0."""
    story = "Tell me a long story about a dragon and a knight."
    baseline_started = time.monotonic()
    ctx.chat("Hi", temperature=0, max_tokens=4)
    baseline = time.monotonic() - baseline_started
    request = json.dumps({"model": ctx.model, "messages": [{"role": "user", "content": story}],
                          "temperature": 0, "max_tokens": 1500, "stream": True}).encode()
    head = ctx.post_head("/chat/completions", len(request))
    for attempt in range(6):  # more than the default --parallel 4: leaked sequences would queue the next
        with socket.create_connection((ctx.host, ctx.port), timeout=REQUEST_TIMEOUT) as connection:
            connection.sendall(head + request)
            received = b""
            for _ in range(256):
                data = connection.recv(4096)
                if not data:
                    break
                received += data
                if received.count(b"data: ") >= 3:
                    break
            expect(received.startswith(b"HTTP/1.1 200"), f"attempt {attempt}: {received[:300]!r}")
            expect(received.count(b"data: ") >= 3, f"attempt {attempt}: stream ended early: {received[-300:]!r}")
    with ctx.chat(story, temperature=0, max_tokens=1500, stream=True) as stream:
        for count, _ in enumerate(stream):
            if count >= 2:
                break
    started = time.monotonic()
    reply = ctx.chat("Hi", temperature=0, max_tokens=4)
    seconds = time.monotonic() - started
    expect(reply.choices[0].message.content is not None, f"follow-up reply {reply}")
    expect(seconds < max(5.0, 5 * baseline),
           f"the follow-up took {seconds:.2f} s against {baseline:.2f} s before the disconnects: "
           "the abandoned generations seem to run on")
    same = ctx.greedy_chat(PROMPT, 16).choices[0].message.content
    again = ctx.chat(PROMPT, temperature=0, max_tokens=16).choices[0].message.content
    expect(again == same, f"after the disconnects the same request gives {again!r}, before {same!r}")
    metrics = {}
    for _ in range(20):  # up to 2 s for the server to notice the last disconnect
        metrics = active_sequence_metrics(ctx)
        if not metrics or all(value == 0 for value in metrics.values()):
            break
        time.sleep(0.1)
    expect(all(value == 0 for value in metrics.values()), f"active sequences after the disconnects: {metrics}")
    note = f"; {metrics}" if metrics else "; /metrics shows no active-sequence gauge"
    return f"follow-up in {seconds:.2f} s (before: {baseline:.2f} s){note}"


@check
def shutdown_midstream(ctx):
    """SIGTERM (to --shutdown-pid) while a stream runs: the stream ends within seconds, finished or
    with an error event, and the server stops accepting within 5 s. Runs last: the server is gone after it;
    the caller checks that it exits 0."""
    if not ctx.args.shutdown_pid:
        return "skipped: no --shutdown-pid"
    chunks, outcome, signalled = 0, None, None
    try:
        with ctx.chat("Tell me a long story about a dragon and a knight.", temperature=0, max_tokens=1500,
                      stream=True) as stream:
            for _ in stream:
                chunks += 1
                if chunks == 3:
                    os.kill(ctx.args.shutdown_pid, signal.SIGTERM)
                    signalled = time.monotonic()
                expect(chunks <= 2000, "more than 2000 chunks")
        outcome = "finished"
    except openai.APIError as error:  # the error event a cancelled stream ends with
        outcome = f"ended with an error event: {error.message}"
    expect(signalled is not None, f"the stream ended after {chunks} chunks, before the signal ({outcome})")
    seconds = time.monotonic() - signalled
    expect(seconds < 10, f"the stream went on {seconds:.1f} s after SIGTERM ({outcome})")
    # The session stops first (ending the streams), then the listener: allow it a moment.
    answered = 0
    for _ in range(50):
        try:
            ctx.raw("GET", "/health", auth=False, timeout=5)
        except OSError:
            break
        answered += 1
        time.sleep(0.1)
    closed = time.monotonic() - signalled
    expect(answered < 50, f"the server still answers /health {closed:.1f} s after SIGTERM")
    return f"stream {outcome} {seconds:.2f} s after SIGTERM, {chunks} chunks; port closed after {closed:.2f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=False)
    parser.add_argument("--api-key", default="")
    parser.add_argument("--strata", help="the strata binary, for generate_equality")
    parser.add_argument("--model-path", help="the model file the server runs, for generate_equality")
    parser.add_argument("--shutdown-pid", type=int,
                        help="the server's process id: shutdown_midstream sends it SIGTERM mid-stream, last")
    parser.add_argument("--context", type=int, default=2048, help="the server's --context")
    parser.add_argument("--deadline", type=float, default=150, help="seconds for the whole run")
    parser.add_argument("--only", help="comma-separated check names (models_and_health always runs first)")
    parser.add_argument("--list", action="store_true", help="print the check names and exit")
    args = parser.parse_args()
    names = [function.__name__ for function in CHECKS]
    if args.list:
        print("\n".join(names))
        return 0
    if not args.base_url:
        parser.error("--base-url is required")
    selected = names
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in names]
        if unknown:
            parser.error(f"unknown checks {unknown}; known: {names}")
        selected = [name for name in names if name == "models_and_health" or name in wanted]
    ctx = Context(args)
    failures = 0
    for function in CHECKS:
        if function.__name__ not in selected:
            continue
        started = time.monotonic()
        if ctx.remaining() <= 0:
            ok, detail = False, f"not run: the {args.deadline:.0f} s deadline passed"
        elif ctx.model is None and function.__name__ != "models_and_health":
            ok, detail = False, "not run: models_and_health found no model"
        else:
            try:
                detail, ok = function(ctx), True
            except CheckFailed as error:
                ok, detail = False, str(error)
            except openai.APIStatusError as error:
                ok, detail = False, f"{type(error).__name__} {error.status_code}: {error.body!r:.500}"
            except Exception as error:
                ok, detail = False, f"{type(error).__name__}: {error} | {traceback.format_exc(limit=3)[-600:]}"
        failures += not ok
        print(json.dumps({"name": function.__name__, "ok": ok, "detail": detail,
                          "seconds": round(time.monotonic() - started, 2)}), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
