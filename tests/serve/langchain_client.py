"""Drives `cairn serve` with LangChain's ChatOpenAI and OpenAIEmbeddings.

Usage: python langchain_client.py BASE_URL DECODER EMBEDDER PROMPT
Prints one JSON object; native/tests/serve.rs compares it with the CLI.
OpenAIEmbeddings needs check_embedding_ctx_length=False with any server
whose model is not OpenAI's: otherwise it sends tiktoken ids, which only
OpenAI's own tokenizer can read (cairn answers 400 naming `input`).
"""
import json
import sys

from langchain_openai import ChatOpenAI, OpenAIEmbeddings

base, decoder, embedder, prompt = sys.argv[1:5]
llm = ChatOpenAI(base_url=base + "/v1", api_key="unused", model=decoder, temperature=0,
                 max_tokens=24, max_retries=0)
out = {
    "invoke": llm.invoke(prompt).content,
    "stream": "".join(c.content for c in llm.stream(prompt)),
}
emb = OpenAIEmbeddings(base_url=base + "/v1", api_key="unused", model=embedder,
                       check_embedding_ctx_length=False, max_retries=0)
out["documents"] = emb.embed_documents(["The cat sat on the mat.", "Stocks fell."])
out["query"] = emb.embed_query("The cat sat on the mat.")
print(json.dumps(out))
