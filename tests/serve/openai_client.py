"""Drives `cairn serve` with the official `openai` Python client, unchanged.

Usage: python openai_client.py BASE_URL DECODER EMBEDDER PROMPT
Prints one JSON object with what the client saw; native/tests/serve.rs
compares it with the `cairn` CLI's own output.
"""
import base64
import json
import struct
import sys

import openai

base, decoder, embedder, prompt = sys.argv[1:5]
client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
out = {"openai_version": openai.__version__}

out["models"] = sorted(m.id for m in client.models.list())

r = client.chat.completions.create(
    model=decoder,
    messages=[{"role": "user", "content": prompt}],
    temperature=0,
    max_tokens=24,
)
out["chat"] = {
    "text": r.choices[0].message.content,
    "finish_reason": r.choices[0].finish_reason,
    "usage": [r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens],
}

pieces, finish, usage = [], None, None
stream = client.chat.completions.create(
    model=decoder,
    messages=[{"role": "user", "content": prompt}],
    temperature=0,
    max_completion_tokens=24,
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    if chunk.usage is not None:
        usage = [chunk.usage.prompt_tokens, chunk.usage.completion_tokens]
    for c in chunk.choices:
        if c.delta.content:
            pieces.append(c.delta.content)
        if c.finish_reason:
            finish = c.finish_reason
out["chat_stream"] = {"text": "".join(pieces), "finish_reason": finish, "usage": usage}

e = client.embeddings.create(model=embedder, input=["The cat sat on the mat.", "Stocks fell."])
out["embeddings"] = [d.embedding for d in e.data]
b = client.embeddings.create(model=embedder, input="The cat sat on the mat.", encoding_format="base64")
raw = base64.b64decode(b.data[0].embedding)
out["embedding_b64"] = list(struct.unpack("<%df" % (len(raw) // 4), raw))
d = client.embeddings.create(model=embedder, input="The cat sat on the mat.", dimensions=128)
out["embedding_128"] = d.data[0].embedding

errors = {}
try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
except openai.NotFoundError as err:
    errors["unknown_model"] = [err.status_code, err.body.get("param") if isinstance(err.body, dict) else None]
try:
    client.chat.completions.create(model=decoder, messages=[{"role": "user", "content": "hi"}], n=2)
except openai.BadRequestError as err:
    errors["n"] = [err.status_code, err.body.get("param") if isinstance(err.body, dict) else None]
out["errors"] = errors

# The server keeps serving after the errors.
r = client.completions.create(model=decoder, prompt="The capital of France is", temperature=0, max_tokens=8)
out["completion"] = {"text": r.choices[0].text, "finish_reason": r.choices[0].finish_reason}
print(json.dumps(out))
