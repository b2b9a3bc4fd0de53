"""Tool calling through `cairn serve` with the official `openai` client.

Usage: python openai_tools.py BASE_URL DECODER
Prints one JSON object: the calls the client received (their arguments
validated with `jsonschema` against the declared parameters), the answer
after the `role: tool` result went back, the streamed call, and the errors.
"""
import json
import sys

import jsonschema
import openai

base, decoder = sys.argv[1:3]
client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "minLength": 1, "maxLength": 40},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
CALC = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluates an arithmetic expression.",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string", "minLength": 1, "maxLength": 60}},
            "required": ["expression"],
        },
    },
}
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in (WEATHER, CALC)}
out = {}


def calls_of(message):
    rows = []
    for c in message.tool_calls or []:
        args = json.loads(c.function.arguments)
        jsonschema.validate(args, SCHEMAS[c.function.name])
        rows.append({"id": c.id, "name": c.function.name, "arguments": args})
    return rows


messages = [{"role": "user", "content": "What is the weather in Paris, in celsius?"}]
r = client.chat.completions.create(
    model=decoder, messages=messages, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False,
    temperature=0, max_tokens=120,
)
choice = r.choices[0]
out["required"] = {"finish_reason": choice.finish_reason, "calls": calls_of(choice.message),
                   "content": choice.message.content}

named = client.chat.completions.create(
    model=decoder, messages=[{"role": "user", "content": "What is 6 times 7?"}], tools=[WEATHER, CALC],
    tool_choice={"type": "function", "function": {"name": "calculator"}},
    temperature=0, max_tokens=120,
)
out["named"] = {"finish_reason": named.choices[0].finish_reason, "calls": calls_of(named.choices[0].message)}

# The round trip: the assistant's call and the tool's result go back.
call = choice.message.tool_calls[0]
messages.append({"role": "assistant", "content": None, "tool_calls": [
    {"id": call.id, "type": "function", "function": {"name": call.function.name, "arguments": call.function.arguments}}]})
messages.append({"role": "tool", "tool_call_id": call.id, "content": "18 degrees celsius and sunny"})
r2 = client.chat.completions.create(
    model=decoder, messages=messages, tools=[WEATHER, CALC], tool_choice="none", temperature=0, max_tokens=40,
)
out["after_result"] = {"finish_reason": r2.choices[0].finish_reason, "content": r2.choices[0].message.content,
                       "calls": calls_of(r2.choices[0].message)}

# Streaming: the call arrives as tool_calls deltas.
parts, finish = {}, None
for chunk in client.chat.completions.create(
    model=decoder, messages=[{"role": "user", "content": "What is 6 times 7?"}], tools=[CALC],
    tool_choice="required", temperature=0, max_tokens=120, stream=True,
):
    for c in chunk.choices:
        for d in c.delta.tool_calls or []:
            p = parts.setdefault(d.index, {"name": "", "arguments": ""})
            if d.function.name:
                p["name"] += d.function.name
            if d.function.arguments:
                p["arguments"] += d.function.arguments
        if c.finish_reason:
            finish = c.finish_reason
streamed = [{"name": p["name"], "arguments": json.loads(p["arguments"])} for _, p in sorted(parts.items())]
for s in streamed:
    jsonschema.validate(s["arguments"], SCHEMAS[s["name"]])
out["stream"] = {"finish_reason": finish, "calls": streamed}

errors = {}
for name, kwargs in {
    "unknown_choice": {"tools": [CALC], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
    "bad_schema": {"tools": [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"type": "string", "contentMediaType": "x"}}}}}]},
    "required_without_tools": {"tool_choice": "required"},
}.items():
    try:
        client.chat.completions.create(model=decoder, messages=[{"role": "user", "content": "hi"}], **kwargs)
        errors[name] = "accepted"
    except openai.BadRequestError as err:
        errors[name] = [err.status_code, err.body.get("param"), err.body.get("message")]
out["errors"] = errors
print(json.dumps(out))
