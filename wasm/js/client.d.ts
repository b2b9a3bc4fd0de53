// Types of client.js: cairn in the browser, driven from the page while the
// models run in a Web Worker.

/** Largest file `addFile` accepts by default (bytes). */
export const MAX_FILE_BYTES: number;

/** Which compute backend to use. */
export type Backend = 'auto' | 'cpu' | 'webgpu';

/** Download progress of a model's files. */
export interface LoadProgress {
  /** URL of the file being read (absent in the final "building" report). */
  file?: string;
  /** Bytes read so far over all of the model's files. */
  loaded?: number;
  /** Bytes expected over the files seen so far (0 when the server sends no length). */
  total?: number;
  /** Whether the file came from the browser's cache. */
  cached?: boolean;
  /** A stage name, e.g. `'building the model'`. */
  stage?: string;
}

/** Decoding options (transformers' names in camelCase). */
export interface GenerationOptions {
  maxNewTokens?: number;
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  noRepeatNgramSize?: number;
  numBeams?: number;
  lengthPenalty?: number;
  earlyStopping?: boolean;
  stop?: string[];
  eosTokenIds?: number[];
  seed?: number;
  /** Hold the output to this JSON Schema (the subset `cairn generate --json-schema` takes). Text prompts only. */
  jsonSchema?: object;
  /** Hold the output to this regular expression (matched against the whole output). Text prompts only. */
  regex?: string;
  /** The output is exactly one of these strings. Text prompts only. */
  choice?: string[];
}

/** Retrieval options. */
export interface SearchOptions {
  /** `'hybrid'` (BM25 + dense, reciprocal rank fusion; default), `'bm25'` or `'dense'`. */
  method?: 'hybrid' | 'bm25' | 'dense';
  /** Passages returned (5). */
  k?: number;
  /** Candidates per retriever before fusion (20). */
  candidates?: number;
  /** MMR diversification λ (off by default). */
  mmrLambda?: number;
  /** Collections to search (all by default). */
  collections?: string[];
  /** RRF weights `[bm25, dense]`. */
  weights?: [number, number];
}

/** Options of `ask`. */
export interface AskOptions extends SearchOptions, GenerationOptions {
  /** Below this best question–passage cosine the answer is "I don't know" (0.35). */
  minCosine?: number;
  /** Source text in the prompt: the matched chunk (default, best for small models) or its whole passage. */
  context?: "matched" | "passage";
  /** "generate" (default): the decoder writes a cited answer; "quote": the source sentences closest to the question, verbatim with their numbers (no decoder). */
  answer?: "generate" | "quote";
}

/** A retrieved passage. */
export interface Passage {
  /** 1-based number, as cited (`[n]`). */
  n: number;
  collection: string;
  source: string;
  page: number | null;
  headings: string[];
  /** The context passage. */
  text: string;
  /** The smaller chunk that matched the query. */
  matched: string;
  score: number;
  cosine: number;
  bm25: number;
}

/** A grounded answer. */
export interface Answer {
  text: string;
  /** The passages in the prompt, numbered from 1. */
  sources: Passage[];
  /** Numbers of the sources the answer cites. */
  cited: number[];
  /** False when the documents did not support an answer ("I don't know"). */
  grounded: boolean;
  promptTokens: number;
  /** Tokens generated (0 when the model was not asked). */
  generatedTokens: number;
}

/** A finished generation. */
export interface Generation {
  text: string;
  tokenIds: number[];
  promptTokens: number;
  finishReason: 'eos' | 'stop' | 'length' | 'cancelled';
}

/** An indexed file. */
export interface IndexedFile {
  collection: string;
  source: string;
  pages: number;
  chunks: number;
}

/** What `addFile` did. */
export interface Added {
  source: string;
  collection: string;
  /** False when the same content was already indexed. */
  indexed: boolean;
  pages: number;
  parents: number;
  children: number;
}

/** A tool the page runs for the agent. */
export interface AgentTool {
  description?: string;
  /** JSON Schema of the arguments (an object schema). */
  parameters?: object;
  /** Runs the tool on schema-valid arguments; a throw becomes an error observation. */
  run(args: any): string | object | Promise<string | object>;
}

/** One step of an agent's transcript. */
export interface AgentStep {
  index: number;
  thought: string;
  action:
    | { kind: 'call'; name: string; arguments: any }
    | { kind: 'answer'; text: string }
    | { kind: 'invalid'; error: string };
  observation: string | null;
  error: boolean;
  raw: string;
}

/** What an agent run resolves to. */
export interface AgentOutcome {
  answer: string | null;
  stop: 'answered' | 'step_cap';
  steps: AgentStep[];
}

/** Options of `agent`. */
export interface AgentOptions extends GenerationOptions {
  tools?: Record<string, AgentTool | 'calculator'>;
  maxSteps?: number;
  maxStepTokens?: number;
  toolTimeoutMs?: number;
  examples?: boolean;
  constrained?: boolean;
  onStep?: (step: AgentStep) => void;
}

/** Text pieces as they are generated; awaitable for the final result. */
export interface TextStream<R> extends AsyncIterable<string>, PromiseLike<R> {
  readonly result: Promise<R>;
}

/** An embedder's files as bytes. */
export interface EmbedderFiles {
  config: Uint8Array;
  weights: Uint8Array;
  tokenizer: Uint8Array;
  pooling?: Uint8Array;
  sentenceBert?: Uint8Array;
}

/** Options of `Cairn.create`. */
export interface CreateOptions {
  backend?: Backend;
  /** URL of worker.js (default: beside client.js). */
  workerUrl?: string | URL;
  /** URL of cairn_wasm_bg.wasm (default: beside cairn_wasm.js). */
  wasmUrl?: string | URL;
}

/** Options of the model loaders. */
export interface LoadOptions {
  onProgress?: (p: LoadProgress) => void;
  /** Cancels the download. */
  signal?: AbortSignal;
  /** Overrides the engine's backend for this model. */
  backend?: Backend;
}

/** A cairn engine running in a Web Worker. */
export class Cairn {
  static create(options?: CreateOptions): Promise<Cairn>;
  /** The requested backend. */
  readonly backend: Backend;
  /** cairn's version. */
  readonly version: string;
  /** Whether the browser offers a WebGPU adapter. */
  readonly webgpu: boolean;
  /** A folder URL (config.json, model.safetensors, tokenizer.json, optional pooling files), or the files' bytes. */
  loadEmbedder(source: string | URL | EmbedderFiles, options?: LoadOptions & { name?: string }): Promise<{ backend: string; dim: number }>;
  /** A GGUF file's URL or bytes. */
  loadGenerator(source: string | URL | Uint8Array | ArrayBuffer, options?: LoadOptions): Promise<{ backend: string; contextLength: number }>;
  /** A LoRA adapter in PEFT's layout (folder URL or bytes), applied unmerged; `null` removes it. */
  loadAdapter(source: string | URL | { config: Uint8Array; weights: Uint8Array } | null, options?: Omit<LoadOptions, 'backend'>): Promise<{ active: boolean }>;
  addFile(
    file: Blob & { name: string } | { name: string; bytes: ArrayBuffer | Uint8Array },
    options?: { collection?: string; onProgress?: (p: { done: number; total: number }) => void; maxBytes?: number },
  ): Promise<Added>;
  removeFile(name: string, collection?: string): Promise<boolean>;
  files(): Promise<IndexedFile[]>;
  search(query: string, options?: SearchOptions): Promise<Passage[]>;
  embed(texts: string[], normalize?: boolean): Promise<Float32Array>;
  ask(question: string, options?: AskOptions): TextStream<Answer>;
  generate(prompt: string | Uint32Array | number[], options?: GenerationOptions): TextStream<Generation>;
  chat(messages: { role: string; content: string }[], options?: GenerationOptions): TextStream<Generation>;
  /** A ReAct agent with tools the page runs (or the built-in `'calculator'`). */
  agent(task: string, options?: AgentOptions): TextStream<AgentOutcome>;
  exportIndex(): Promise<Uint8Array>;
  importIndex(bytes: Uint8Array | ArrayBuffer): Promise<IndexedFile[]>;
  terminate(): void;
}
